//! One job against the running (guest) kernel, through the host backend.

use xdpqual_isa as isa;
use xdpqual_kernel::host::{
    maps::possible_cpus, HostBackend, MapDump, RunFlags, SessionOutcome, TestRunError, XdpCtx,
};
use xdpqual_object::{LineTable, Object, Program};
use xdpqual_protocol::{hex, GuestLoad, GuestMap, GuestPacket, GuestReport, Job};

/// Lines of the verifier log kept for a refusal.
const LOG_TAIL_LINES: usize = 20;

pub(crate) fn run_job(path: &str) -> GuestReport {
    let mut report = GuestReport {
        kernel_release: String::new(),
        possible_cpus: possible_cpus().ok(),
        load: GuestLoad::Failed { message: String::new() },
        packets: Vec::new(),
        maps: Vec::new(),
        notes: Vec::new(),
        ran_without_ctx: false,
        offload: None,
        core: None,
    };
    match execute(path, &mut report) {
        Ok(()) => {}
        Err(message) => report.load = GuestLoad::Failed { message },
    }
    report
}

fn object_of(job: &Job) -> Result<Object, String> {
    let programs = job
        .programs
        .iter()
        .map(|p| {
            Ok(Program {
                name: p.name.clone(),
                section: p.section.clone(),
                frags: p.frags,
                // The job carries little-endian slots; the kernel layer
                // encodes them again in this machine's byte order.
                insns: isa::decode_le(&p.insns).map_err(|e| format!("program {}: {e}", p.name))?,
                lines: LineTable::default(),
                functions: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Object {
        path: "job".into(),
        programs,
        maps: job.maps.clone(),
        license: job.license.clone(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    })
}

fn execute(path: &str, report: &mut GuestReport) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| format!("reading the job {path}: {e}"))?;
    let mut job: Job =
        serde_json::from_slice(&text).map_err(|e| format!("parsing the job {path}: {e}"))?;
    if job.core.is_some() {
        let core = crate::core::relocate(&mut job);
        let failed = core.as_ref().err().cloned();
        report.core = Some(core);
        if let Some(e) = failed {
            return Err(e);
        }
    }
    let obj = object_of(&job)?;
    let main = obj.programs.first().ok_or("the job has no program")?;
    // The offload path first, so that a refusal of the ordinary load
    // (which returns early below) does not skip it.
    if job.offload.is_some() {
        report.offload = Some(crate::offload::run(&obj, main));
    }
    let host = HostBackend::open().map_err(|e| format!("BPF unavailable in the guest: {e}"))?;
    report.kernel_release = host.kernel_release().to_string();
    let session = match host.load(&obj, main).map_err(|e| e.to_string())? {
        SessionOutcome::Ready(s) => s,
        SessionOutcome::Rejected(r) => {
            let lines: Vec<&str> = r.rejection.log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            report.load = GuestLoad::Rejected {
                errno: r.rejection.errno.to_string(),
                first_error_line: r.rejection.first_error_line,
                insn: r.rejection.insn,
                log_tail: tail,
            };
            return Ok(());
        }
    };
    let info = session.program().info().clone();
    report.load = GuestLoad::Loaded {
        // verified_insns arrived in 5.16; older kernels leave it 0, and an
        // accepted program always has at least one verified instruction.
        verified_insns: (info.verified_insns > 0).then_some(info.verified_insns),
        xlated_len: info.xlated_prog_len,
        jited_len: info.jited_prog_len,
        rejected_others: session.rejected_others().iter().map(|r| r.program.clone()).collect(),
    };
    if info.verified_insns == 0 {
        report.notes.push("kernel does not report verified_insns (added in 5.16)".into());
    }

    let cpus = report.possible_cpus.unwrap_or(1);
    for w in &job.map_writes {
        let map = session
            .maps()
            .get(w.map)
            .ok_or_else(|| format!("map write names map {} of {}", w.map, session.maps().len()))?;
        let value = if w.per_cpu_broadcast { w.value.repeat(cpus) } else { w.value.clone() };
        map.update(&w.key, &value).map_err(|e| format!("writing map {}: {e}", map.def().name))?;
    }
    for t in &job.tail_calls {
        session.set_tail_call(&t.map, t.slot, &t.target).map_err(|e| e.to_string())?;
    }

    let ctx = XdpCtx { rx_queue_index: job.rx_queue_index, ..XdpCtx::loopback() };
    let mut flags = RunFlags::default();
    for pkt in &job.packets {
        let mut r = session.run(pkt, ctx, 1, flags);
        // Kernels before 5.12 refuse ctx_in for XDP (bpf_prog_test_run_xdp
        // returned EINVAL for any ctx); the frame then arrives on loopback
        // queue 0 anyway, the same place the ctx names.
        if !flags.without_ctx
            && matches!(&r, Err(TestRunError::Refused { errno, .. }) if errno.0 == libc::EINVAL)
        {
            let retry = session.run(pkt, ctx, 1, RunFlags { without_ctx: true });
            if retry.is_ok() {
                flags.without_ctx = true;
                report.notes.push(
                    "kernel refuses ctx_in for XDP test-run (before 5.12): ran without a context"
                        .into(),
                );
                r = retry;
            }
        }
        report.ran_without_ctx = flags.without_ctx;
        report.packets.push(match r {
            Ok(t) => GuestPacket::Ran {
                retval: t.retval,
                output: (t.data_out != *pkt).then_some(t.data_out),
                duration_ns: t.duration_ns,
            },
            Err(e) if e.is_per_packet() => GuestPacket::NotRun { reason: e.to_string() },
            Err(e) => GuestPacket::Error { message: e.to_string() },
        });
    }

    for m in session.maps() {
        let name = m.def().name.clone();
        report.maps.push(match m.dump() {
            Ok(MapDump::Plain(v)) => GuestMap {
                name,
                entries: v.iter().map(|(k, v)| (hex::hex(k), vec![hex::hex(v)])).collect(),
                unreadable: None,
            },
            Ok(MapDump::PerCpu(v)) => GuestMap {
                name,
                entries: v
                    .iter()
                    .map(|(k, vs)| (hex::hex(k), vs.iter().map(|x| hex::hex(x)).collect()))
                    .collect(),
                unreadable: None,
            },
            Ok(MapDump::NotDumpable(t)) => GuestMap {
                name,
                entries: Vec::new(),
                unreadable: Some(format!("{} maps cannot be read from user space", t.name())),
            },
            Err(e) => GuestMap { name, entries: Vec::new(), unreadable: Some(e.to_string()) },
        });
    }
    Ok(())
}
