//! Measuring each backend over the same packets.

use std::hint::black_box;
use std::time::Instant;

use super::{BackendId, BenchOptions, EngineMode, Measured, Spread};
use crate::backends::host::testrun::{test_run_live, RunFlags, XdpCtx};
use crate::backends::host::{HostBackend, HostSession, SessionOutcome};
use crate::backends::rbpf::{self, RbpfHelpers, XdpProgram};
use crate::engine::{self, Engine, EngineConfig, PacketIn};
use crate::isa::encode_le;
use crate::program::{Object, Program};

/// Runs `round` once to warm up, then `rounds` times; each call returns
/// (nanoseconds, packets) and the figure is their ratio.
fn rounds(
    opts: &BenchOptions,
    mut round: impl FnMut() -> Result<(f64, usize), String>,
) -> Result<(Spread, usize), String> {
    round()?;
    let mut per_packet = Vec::with_capacity(opts.rounds);
    let mut packets = 0;
    for _ in 0..opts.rounds.max(1) {
        let (ns, n) = round()?;
        if n == 0 {
            return Err("no packet could be run".into());
        }
        packets = n;
        per_packet.push(ns / n as f64);
    }
    Ok((Spread::of(&per_packet).expect("at least one round"), packets))
}

fn measured(spread: Spread, packets: usize, note: Option<String>) -> Measured {
    Measured {
        packets,
        packets_per_s: if spread.median > 0.0 { 1e9 / spread.median } else { f64::INFINITY },
        ns_per_packet: spread,
        insns_per_packet: None,
        ns_per_insn: None,
        vs_kernel_in_kernel: None,
        note,
    }
}

fn input(data: &[u8]) -> PacketIn<'_> {
    PacketIn { data, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 }
}

fn new_engine(obj: &Object, program: &Program, mode: EngineMode) -> Result<Engine, String> {
    let jit = mode == EngineMode::Jit;
    // Programs that call the conntrack kfuncs get an empty table with the
    // host kernel's `struct nf_conn` layout, as `diff` and `replay` do.
    let conntrack = crate::conntrackfile::setup_for(obj, None, None)
        .map_err(|e| format!("'{}' calls the conntrack kfuncs: {e:#}", program.name))?;
    let e = Engine::new(
        obj,
        Some(&program.name),
        EngineConfig { jit, conntrack, ..Default::default() },
    )
    .map_err(|e| format!("the engine cannot run '{}': {e}", program.name))?;
    if let crate::engine::ExecMode::Fallback { reason } = e.exec_mode() {
        return Err(format!(
            "the JIT cannot compile '{}' ({reason}); the interpreter row measures it",
            program.name
        ));
    }
    Ok(e)
}

/// The engine, returning also the mean instructions per packet.
pub fn engine(
    obj: &Object,
    program: &Program,
    mode: EngineMode,
    packets: &[Vec<u8>],
    opts: &BenchOptions,
) -> Result<(Measured, f64), String> {
    let mut e = new_engine(obj, program, mode)?;
    // As replay runs it: the packets in one batch (the run state built once,
    // a few words of result per packet), the frame laid out per packet and
    // not copied back out (the diff's comparisons need it; throughput does
    // not).
    let inputs: Vec<PacketIn> = packets.iter().map(|p| input(p)).collect();
    let mut out = engine::Batch::new();
    let (spread, n) = rounds(opts, || {
        let t = Instant::now();
        e.run_batch(&inputs, &mut out);
        black_box(&out);
        Ok((t.elapsed().as_nanos() as f64, packets.len()))
    })?;
    let ipp = engine_insns(obj, program, packets).unwrap_or(0.0);
    let note = "one batch per round, frame laid out per packet, output not copied back (as replay)"
        .to_string();
    Ok((measured(spread, n, Some(note)), ipp))
}

/// Mean instructions per packet in the engine (fresh maps, one pass).
pub fn engine_insns(obj: &Object, program: &Program, packets: &[Vec<u8>]) -> Option<f64> {
    let mut e = Engine::new(obj, Some(&program.name), EngineConfig::default()).ok()?;
    let total: u64 = packets.iter().map(|p| e.run_xdp(&input(p)).insns).sum();
    Some(total as f64 / packets.len().max(1) as f64)
}

/// How many of `packets` the program leaves changed (different bytes or a
/// different length after the run, in the engine, maps fresh, one pass).
/// The kernel's in-kernel row repeats each sampled packet on the frame the
/// previous repeat left (net/bpf/test_run.c: `bpf_test_run` runs the
/// program `repeat` times on one `xdp_buff` and lays nothing out again in
/// between), so for such a program it times other work than one run per
/// packet: a second `bpf_xdp_adjust_head(-4)` on an already grown frame, a
/// truncation of an already truncated one.
pub fn frames_changed(obj: &Object, program: &Program, packets: &[Vec<u8>]) -> Option<usize> {
    let mut e = Engine::new(obj, Some(&program.name), EngineConfig::default()).ok()?;
    e.set_keep_output(true);
    let changed = packets
        .iter()
        .filter(|p| {
            let r = e.run_xdp(&input(p));
            matches!(r.outcome, engine::Outcome::Exit { .. }) && r.output != **p
        })
        .count();
    Some(changed)
}

/// rbpf's interpreter or JIT, run in a sandboxed child process
/// (`backends::rbpf::sandbox`): rbpf's JIT checks no bounds and a program
/// can tell it from the interpreter, so it never runs in this process; the
/// interpreter runs there too, so that a program that loops (rbpf has no
/// instruction budget) is stopped by the child's timeout. Times are taken
/// inside the child; the JIT's verdicts are only counted against the
/// interpreter's, never reported.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub fn rbpf(
    program: &Program,
    packets: &[Vec<u8>],
    opts: &BenchOptions,
    jit: bool,
) -> Result<Measured, String> {
    use crate::backends::rbpf::sandbox::{self, Ctx, Job, Timed};
    let none = RbpfHelpers::default();
    XdpProgram::prepare(&program.insns, &none).map_err(|u| u.to_string())?;
    if jit {
        rbpf::check(&program.insns, rbpf::Engine::Jit, &[]).map_err(|u| u.to_string())?;
    }
    let bytes = encode_le(&rbpf::rewrite_xdp_ctx(&program.insns).map_err(|u| u.to_string())?);
    // rbpf's XDP path needs an Ethernet header to be meaningful; shorter
    // frames are left out as the diff does.
    let usable: Vec<&[u8]> =
        packets.iter().filter(|p| p.len() >= 14).map(|p| p.as_slice()).collect();
    if usable.is_empty() {
        return Err("no packet could be run (every frame is shorter than 14 bytes)".into());
    }
    let rounds = opts.rounds.max(1);
    let job = Job {
        bytecode: &bytes,
        ctx: Ctx::Xdp { ingress_ifindex: 1, rx_queue_index: 0 },
        inputs: &usable,
        jit,
        timed: if jit { Timed::Jit } else { Timed::Interpreter },
        rounds,
        timeout: sandbox::default_timeout(usable.len(), rounds),
    };
    let report = sandbox::run(&job).map_err(|e| e.to_string())?;
    let failed = report.interpreter.iter().filter(|v| v.is_none()).count();
    let mut notes = Vec::new();
    if failed > 0 || usable.len() < packets.len() {
        notes.push(format!(
            "{} frames shorter than 14 bytes left out; {failed} runs ended in an rbpf error",
            packets.len() - usable.len()
        ));
    }
    let n = if jit {
        let gated = report.gated();
        let bad = report.mismatches();
        if bad > 0 {
            return Err(format!(
                "rbpf's JIT disagreed with its interpreter on {bad} of {gated} packets \
                 (its values are withheld: they may be host addresses)"
            ));
        }
        notes.push("JIT run in a sandboxed child process (seccomp), timed there".into());
        gated
    } else {
        usable.len()
    };
    if n == 0 {
        return Err("no packet could be run".into());
    }
    let per_packet: Vec<f64> = report.rounds_ns.iter().map(|ns| *ns as f64 / n as f64).collect();
    let spread = Spread::of(&per_packet).ok_or("the child reported no rounds")?;
    Ok(measured(spread, n, (!notes.is_empty()).then(|| notes.join("; "))))
}

/// rbpf's rows need the x86_64 Linux sandbox.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub fn rbpf(_: &Program, _: &[Vec<u8>], _: &BenchOptions, _: bool) -> Result<Measured, String> {
    Err("rbpf rows run only on x86_64 Linux (their sandbox)".into())
}

/// The host kernel rows, sharing one loaded program.
///
/// A `BPF_PROG_TEST_RUN` with `repeat > 1` installs the program in the XDP
/// dispatcher for the call and removes it afterwards
/// (net/bpf/test_run.c, bpf_prog_test_run_xdp -> bpf_prog_change_xdp ->
/// kernel/bpf/dispatcher.c, which waits for an RCU grace period on each
/// change), so such a call costs milliseconds of wall time whatever it
/// measures. The in-kernel and live rows therefore run a stride sample of
/// the packets with a large `repeat`; the kernel's own timer excludes the
/// grace periods from their figures.
pub struct HostRows {
    backend: HostBackend,
    session: HostSession,
}

impl HostRows {
    pub fn open(obj: &Object, program: &Program) -> Result<HostRows, String> {
        let backend = HostBackend::open().map_err(|u| format!("host kernel unavailable: {u}"))?;
        let session = match backend
            .load(obj, program)
            .map_err(|e| format!("loading into the host kernel: {e}"))?
        {
            SessionOutcome::Ready(s) => s,
            SessionOutcome::Rejected(r) => {
                return Err(format!(
                    "the kernel's verifier rejected the program: {}",
                    r.rejection
                        .first_error_line
                        .clone()
                        .unwrap_or_else(|| format!("errno {}", r.rejection.errno))
                ))
            }
        };
        Ok(HostRows { backend, session })
    }

    pub fn kernel_release(&self) -> &str {
        self.backend.kernel_release()
    }

    pub fn measure(
        &self,
        row: BackendId,
        packets: &[Vec<u8>],
        opts: &BenchOptions,
    ) -> Result<Measured, String> {
        let ctx = XdpCtx::loopback();
        // Frames the kernel refuses as frames (too short, too long) are
        // left out of every kernel row; anything else is a failure.
        let mut usable = Vec::with_capacity(packets.len());
        for p in packets {
            match self.session.run(p, ctx, 1, RunFlags::default()) {
                Ok(_) => usable.push(p.as_slice()),
                Err(e) if e.is_per_packet() => {}
                Err(e) => return Err(format!("BPF_PROG_TEST_RUN: {e}")),
            }
        }
        let left_out = packets.len() - usable.len();
        let stride = usable.len().div_ceil(opts.kernel_sample.max(1)).max(1);
        let sample: Vec<&[u8]> = usable.iter().step_by(stride).copied().collect();
        let sampled = format!(
            "{} of the {} packets (every {}), {} runs per call",
            sample.len(),
            usable.len(),
            crate::util::ordinal(stride),
            opts.repeat.max(1)
        );
        let note = |extra: &str| {
            let mut parts = Vec::new();
            if left_out > 0 {
                parts.push(format!("{left_out} frames the kernel refuses as frames left out"));
            }
            if !extra.is_empty() {
                parts.push(extra.to_string());
            }
            (!parts.is_empty()).then(|| parts.join("; "))
        };
        let run = |p: &[u8], repeat: u32| {
            self.session
                .run(p, ctx, repeat, RunFlags::default())
                .map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))
        };
        let (spread, n) = match row {
            BackendId::KernelSyscall => rounds(opts, || {
                let t = Instant::now();
                for p in &usable {
                    black_box(run(p, 1)?);
                }
                Ok((t.elapsed().as_nanos() as f64, usable.len()))
            })?,
            BackendId::KernelReported => rounds(opts, || {
                let mut ns = 0u64;
                for p in &usable {
                    ns += u64::from(run(p, 1)?.duration_ns);
                }
                Ok((ns as f64, usable.len()))
            })?,
            BackendId::KernelInKernel => rounds(opts, || {
                let mut ns = 0f64;
                for p in &sample {
                    ns += f64::from(run(p, opts.repeat.max(1))?.duration_ns);
                }
                Ok((ns, sample.len()))
            })?,
            BackendId::KernelLive => {
                let prog = self.session.program();
                let r = rounds(opts, || {
                    let mut ns = 0f64;
                    for p in &sample {
                        let r = test_run_live(prog, p, ctx, opts.repeat.max(1), 0)
                            .map_err(|e| format!("live frames: {e}"))?;
                        ns += f64::from(r.duration_ns);
                    }
                    Ok((ns, sample.len()))
                })?;
                let extra = format!(
                    "{sampled}; frames continue through loopback's datapath after the program"
                );
                return Ok(measured(r.0, r.1, note(&extra)));
            }
            other => return Err(format!("{} is not a kernel row", other.name())),
        };
        let extra = match row {
            BackendId::KernelInKernel => format!("kernel's average; {sampled}"),
            BackendId::KernelReported => "kernel-reported duration of single runs".to_string(),
            _ => "one BPF_PROG_TEST_RUN per packet, user-space clock".to_string(),
        };
        Ok(measured(spread, n, note(&extra)))
    }
}

/// The NIC model's throughput estimate for the default offload profile
/// (`nfp-corenic`), expressed as ns/packet of the whole NIC. It is a model,
/// not a measurement: one "round", and the note says so.
pub fn nic_model(
    obj: &Object,
    program: &Program,
    packets: &[Vec<u8>],
    profile: &str,
) -> Result<Measured, String> {
    use crate::backends::nic::{estimate_frames, NicBackend, NicOpen};
    let nic =
        NicBackend::open(obj, program, profile, None).map_err(|e| format!("NIC model: {e:#}"))?;
    let mut nic = match nic {
        NicOpen::Ready(n) => n,
        NicOpen::Rejected(report) => {
            let first = report
                .findings
                .iter()
                .find(|f| f.severity.blocks())
                .map(|f| format!("{:?}: {}", f.rule, f.message))
                .unwrap_or_default();
            return Err(format!(
                "not offloadable to {profile} ({first}); see `xdpqual offload-check`"
            ));
        }
    };
    let e = estimate_frames(&mut nic, packets.iter().cloned())
        .map_err(|e| format!("NIC model: {e}"))?;
    if e.mpps <= 0.0 {
        return Err("NIC model: the estimate is zero packets/s".into());
    }
    let ns = 1e3 / e.mpps;
    let spread = Spread { median: ns, p10: ns, p90: ns, rounds: 1 };
    Ok(measured(
        spread,
        packets.len(),
        Some(format!("estimate on {profile}: {:.2} Mpps, {:.0} cycles/packet, bound by {:?} (a model, not a measurement)", e.mpps, e.total_cycles, e.bottleneck)),
    ))
}
