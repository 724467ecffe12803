//! The verdict diff: the same packets through several backends, compared
//! packet by packet (verdict, redirect target, output bytes) and, at the
//! end, map by map.
//!
//! The host kernel is the reference. Packets whose result depends on a
//! value the engine cannot know (time, random numbers) are classed
//! `nondeterministic` when backends disagree on them, never `mismatch`; a
//! program that calls no such helper must agree exactly.

pub mod divergence;
pub mod hexdiff;
pub mod kernel_defects;
pub mod live;
pub mod pair;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::backends::host::{HostBackend, HostSession, RunFlags, SessionOutcome, XdpCtx};
use crate::backends::nic::{NicBackend, NicOpen};
use crate::backends::{engine::run_packet, PacketResult, PacketSource};
use crate::capture::{flow, CaptureReader};
use crate::engine::helpers::ids::NONDETERMINISTIC;
use crate::engine::{Engine, EngineConfig, Recorder};
use crate::program::{MapType, Object, Program};
use crate::replay::mapfile::{self, MapInit};
use crate::verdict::{Verdict, XdpAction};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Vm,
    Rbpf,
    Host,
    /// The emulated datapath of an offload profile (`nic:PROFILE`).
    Nic(String),
    /// A real interface (`live:IFACE[:MODE]`, see [`crate::backends::live`]).
    Live(crate::backends::live::LiveSpec),
}

impl BackendKind {
    /// The name results are filed under (`vm`, `nic:nfp-corenic`, ...).
    pub fn label(&self) -> String {
        match self {
            BackendKind::Nic(p) => format!("nic:{p}"),
            BackendKind::Live(l) => format!("live:{}:{}", l.iface, l.mode),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "vm" | "engine" => Ok(BackendKind::Vm),
            "rbpf" => Ok(BackendKind::Rbpf),
            "host" => Ok(BackendKind::Host),
            nic if nic.starts_with("nic:") && nic.len() > 4 => Ok(BackendKind::Nic(nic[4..].to_string())),
            l if l.starts_with("live:") => l.parse().map(BackendKind::Live),
            other => Err(format!("unknown backend '{other}' (known: vm, rbpf, host, nic:PROFILE, live:IFACE[:skb|drv|hw])")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DiffOptions {
    pub backends: Vec<BackendKind>,
    pub maps: Vec<MapInit>,
    pub rx_queue_index: u32,
    /// Stop printing details after this many mismatches (all are counted).
    pub max_reported: usize,
}

/// Why a backend took no part.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub backend: BackendKind,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    pub capture: String,
    pub index: u64,
    pub flow: Option<String>,
    pub results: BTreeMap<String, PacketResult>,
    pub detail: String,
}

/// A packet a NIC backend treats differently from `vm` as named rules say.
#[derive(Clone, Debug, Serialize)]
pub struct ExplainedPacket {
    pub capture: String,
    pub index: u64,
    /// Rule IDs (`NFP-M7`, `NFP-R1`, ...), or `state after RULE` when an
    /// earlier explained packet left the NIC's maps different.
    pub rules: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct DiffReport {
    pub schema: &'static str,
    pub program: String,
    pub kernel: Option<String>,
    pub backends: Vec<BackendKind>,
    pub skipped: Vec<Skipped>,
    pub packets: u64,
    pub agreed: u64,
    pub nondeterministic: u64,
    pub mismatches: Vec<Mismatch>,
    pub mismatch_count: u64,
    pub map_mismatches: Vec<String>,
    /// Map differences in a program that reads time or random numbers:
    /// reported, not counted as mismatches.
    pub map_nondeterministic: Vec<String>,
    pub capture_errors: Vec<String>,
    /// Packets where a NIC backend differs from `vm` only as its profile's
    /// rules say it must.
    pub explained: u64,
    /// Packets explained, by rule (`NFP-R1`, `NFP-H4`, ...).
    pub explained_by: BTreeMap<String, u64>,
    pub explained_examples: Vec<Mismatch>,
    /// Every explained packet with the rules that explain it (the examples
    /// above are capped at `max_reported`; this list is not).
    pub explained_packets: Vec<ExplainedPacket>,
    /// Packets where a NIC backend differs from `vm` and no rule of its
    /// profile explains it (they are also counted in `mismatch_count`).
    pub unexplained: u64,
    /// Known kernel defects found in the host kernel's rewrite of the
    /// program (see [`kernel_defects`]); mismatches stay mismatches.
    pub kernel_defects: Vec<kernel_defects::KernelDefect>,
    /// Each `live:` backend's run: how verdicts were observed, frames sent.
    pub live: Vec<live::LiveSummary>,
    /// Per-queue counters of each NIC backend.
    pub nic_counters: BTreeMap<String, Vec<crate::backends::nic::QueueCounters>>,
    /// SIGINT or SIGTERM stopped the run: the counts cover only the packets
    /// before it and prove nothing about the rest.
    pub interrupted: bool,
}

impl DiffReport {
    pub fn agrees(&self) -> bool {
        self.mismatch_count == 0 && self.map_mismatches.is_empty()
    }
}

/// Pins this thread to CPU 0 so the kernel's per-CPU map slots and
/// `bpf_get_smp_processor_id` match the engine's CPU 0.
fn pin_to_cpu0() {
    // SAFETY: cpu_set_t is plain data; we pass its exact size and a valid
    // pointer, and sched_setaffinity(0, ...) only affects this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub(crate) fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .map(|r| r.split('-').next_back().and_then(|x| x.parse::<usize>().ok()))
                .max()
                .flatten()
        })
        .map_or(1, |m| m + 1)
}

fn host_result(
    r: Result<crate::backends::host::TestRunResult, crate::backends::host::TestRunError>,
) -> PacketResult {
    match r {
        Ok(t) => PacketResult {
            verdict: Verdict::Action { action: XdpAction::from_retval(t.retval) },
            output: t.data_out.clone(),
            events: Vec::new(),
            redirect: None,
            insns: None,
            duration_ns: Some(t.duration_ns as u64),
        },
        Err(e) if e.is_per_packet() => PacketResult {
            verdict: Verdict::NotRun { reason: e.to_string() },
            output: Vec::new(),
            events: Vec::new(),
            redirect: None,
            insns: None,
            duration_ns: None,
        },
        Err(e) => PacketResult {
            verdict: Verdict::Error { message: e.to_string() },
            output: Vec::new(),
            events: Vec::new(),
            redirect: None,
            insns: None,
            duration_ns: None,
        },
    }
}

/// Compares two results; `None` when they agree. NOT_RUN agrees with
/// NOT_RUN whatever the wording (each backend words its reason).
fn compare(a: &PacketResult, b: &PacketResult, compare_redirect: bool) -> Option<String> {
    let same_verdict = match (&a.verdict, &b.verdict) {
        (Verdict::NotRun { .. }, Verdict::NotRun { .. }) => true,
        (x, y) => x == y,
    };
    if !same_verdict {
        return Some(format!("verdict {} vs {}", a.verdict, b.verdict));
    }
    if matches!(a.verdict, Verdict::NotRun { .. }) {
        return None;
    }
    if compare_redirect && a.redirect != b.redirect {
        return Some(format!("redirect target {:?} vs {:?}", a.redirect, b.redirect));
    }
    if a.output != b.output {
        return Some("output bytes differ".into());
    }
    None
}

/// A NIC backend in the diff, and the rule after which its ordinary (not
/// per-CPU) maps stopped matching the engine's.
struct NicRun {
    label: String,
    nic: Box<NicBackend>,
    diverged: Option<String>,
}

/// Whether the ordinary maps of two engines hold the same entries (per-CPU
/// maps differ by construction: the NIC has one slot per queue).
fn shared_maps_equal(a: &Engine, b: &Engine) -> bool {
    a.maps()
        .maps
        .iter()
        .zip(&b.maps().maps)
        .all(|(x, y)| x.def.map_type.is_percpu() || x.entries() == y.entries())
}

struct Backends {
    nics: Vec<NicRun>,
    engine: Option<Engine>,
    rbpf: Option<(crate::backends::rbpf::XdpProgram, crate::backends::rbpf::RbpfHelpers)>,
    host: Option<HostSession>,
}

/// Runs the diff.
pub fn run(
    obj: &Object,
    program: &Program,
    captures: &[PathBuf],
    opts: &DiffOptions,
) -> Result<DiffReport> {
    let mut report = DiffReport {
        schema: "xdpqual.diff/1",
        program: program.name.clone(),
        ..Default::default()
    };
    pin_to_cpu0();
    let ingress = XdpCtx::loopback().ingress_ifindex;
    let mut b = Backends { nics: Vec::new(), engine: None, rbpf: None, host: None };
    // The engine always runs: it is the one being checked.
    let cfg = EngineConfig { ncpus: possible_cpus(), cpu: 0, ..Default::default() };
    let mut engine = Engine::new(obj, Some(&program.name), cfg).context("preparing the engine")?;
    for m in &opts.maps {
        mapfile::apply(&mut engine, obj, m)?;
    }
    b.engine = Some(engine);
    report.backends.push(BackendKind::Vm);
    if opts.backends.contains(&BackendKind::Rbpf) {
        let helpers = crate::backends::rbpf::RbpfHelpers::default();
        match crate::backends::rbpf::XdpProgram::prepare_bounded(&program.insns, &helpers) {
            Ok(p) => {
                b.rbpf = Some((p, helpers));
                report.backends.push(BackendKind::Rbpf);
            }
            Err(u) => {
                report.skipped.push(Skipped { backend: BackendKind::Rbpf, reason: u.to_string() })
            }
        }
    }
    if opts.backends.contains(&BackendKind::Host) {
        match HostBackend::open() {
            Err(u) => report
                .skipped
                .push(Skipped { backend: BackendKind::Host, reason: format!("unavailable: {u}") }),
            Ok(host) => {
                report.kernel = Some(host.kernel_release().to_string());
                match host.load(obj, program).context("loading into the host kernel")? {
                    SessionOutcome::Ready(s) => {
                        // Unreadable without CAP_BPF/CAP_SYS_ADMIN: then no defect can be shown.
                        if let Ok(x) = s.program().xlated() {
                            report.kernel_defects = kernel_defects::known_defects(&x);
                        }
                        apply_maps_to_host(&s, obj, opts)?;
                        match map_program_refused(&s, program, host.kernel_release()) {
                            Some(reason) => {
                                report.skipped.push(Skipped { backend: BackendKind::Host, reason })
                            }
                            None => {
                                b.host = Some(s);
                                report.backends.push(BackendKind::Host);
                            }
                        }
                    }
                    SessionOutcome::Rejected(r) => {
                        let line = r
                            .rejection
                            .insn
                            .and_then(|i| program.lines.lookup(i))
                            .map(|l| format!(" at {}:{}", l.file, l.line))
                            .unwrap_or_default();
                        let reason = match r.rejection.helper_not_offered() {
                            // The kernel's build lacks a helper the program
                            // needs: the comparison cannot run on this kernel
                            // (a gate that needs it fails as "could not run").
                            Some(helper) => format!(
                                "kernel {} does not offer {helper} to XDP programs{line}, so the program cannot load here (verifier: {})",
                                host.kernel_release(),
                                r.rejection.first_error_line.as_deref().unwrap_or_default()
                            ),
                            None => format!(
                                "rejected by verifier (kernel {}){line}: {}",
                                host.kernel_release(),
                                r.rejection
                                    .first_error_line
                                    .clone()
                                    .unwrap_or_else(|| format!("errno {}", r.rejection.errno))
                            ),
                        };
                        report.skipped.push(Skipped { backend: BackendKind::Host, reason });
                    }
                }
            }
        }
    }
    for kind in &opts.backends {
        let BackendKind::Nic(profile) = kind else { continue };
        match NicBackend::open(obj, program, profile, None)
            .with_context(|| format!("backend {}", kind.label()))?
        {
            NicOpen::Ready(mut nic) => {
                for m in &opts.maps {
                    mapfile::apply(nic.engine_mut(), obj, m)?;
                }
                b.nics.push(NicRun { label: kind.label(), nic, diverged: None });
                report.backends.push(kind.clone());
            }
            NicOpen::Rejected(r) => {
                let first = r
                    .findings
                    .iter()
                    .find(|f| f.severity.blocks())
                    .map(|f| format!("{}: {}", f.rule, f.message))
                    .unwrap_or_default();
                report.skipped.push(Skipped {
                    backend: kind.clone(),
                    reason: format!(
                        "the offload checker rejects the program for {}: {first}",
                        r.profile
                    ),
                });
            }
        }
    }
    let nondet_prog = program
        .insns
        .iter()
        .any(|i| i.code == 0x85 && i.src == 0 && NONDETERMINISTIC.contains(&i.imm));
    // Packets by (capture, index), only kept when a live backend's
    // disagreements are to be folded in afterwards.
    let with_live = opts.backends.iter().any(|k| matches!(k, BackendKind::Live(_)));
    let mut mismatched = std::collections::HashSet::new();
    let mut agreed_keys = std::collections::HashSet::new();
    'captures: for path in captures {
        let reader = CaptureReader::open(path)
            .with_context(|| format!("opening capture {}", path.display()))?;
        for item in reader {
            if crate::util::interrupt::requested() {
                report.interrupted = true;
                break 'captures;
            }
            let pkt = match item {
                Ok(p) => p,
                Err(e) => {
                    report.capture_errors.push(e.to_string());
                    break;
                }
            };
            let src = PacketSource {
                data: pkt.data,
                ts_ns: pkt.ts_ns,
                ingress_ifindex: ingress,
                rx_queue_index: opts.rx_queue_index,
            };
            let mut results: BTreeMap<String, PacketResult> = BTreeMap::new();
            let mut rec = Recorder::new(0);
            let e = run_packet(b.engine.as_mut().expect("engine"), &src, &mut rec);
            let used_nondet = rec.helpers.iter().any(|(_, id)| NONDETERMINISTIC.contains(id));
            results.insert("vm".into(), e);
            if let Some((p, h)) = &b.rbpf {
                let mut data = src.data.clone();
                // rbpf runs any frame; the kernel (and the engine) refuse
                // some before the program runs.
                let r = if let Some(reason) = crate::engine::xdp::refused(data.len()) {
                    PacketResult {
                        verdict: Verdict::NotRun { reason: reason.to_string() },
                        output: vec![],
                        events: vec![],
                        redirect: None,
                        insns: None,
                        duration_ns: None,
                    }
                } else {
                    match p.run(&mut data, src.ingress_ifindex, src.rx_queue_index, h) {
                        Ok(r0) => PacketResult {
                            verdict: Verdict::Action { action: XdpAction::from_retval(r0 as u32) },
                            output: data,
                            events: vec![],
                            redirect: None,
                            insns: None,
                            duration_ns: None,
                        },
                        Err(e) => PacketResult {
                            verdict: Verdict::Error { message: e.to_string() },
                            output: vec![],
                            events: vec![],
                            redirect: None,
                            insns: None,
                            duration_ns: None,
                        },
                    }
                };
                results.insert("rbpf".into(), r);
            }
            if let Some(h) = &b.host {
                let ctx = XdpCtx {
                    ingress_ifindex: ingress,
                    rx_queue_index: opts.rx_queue_index,
                    data_meta_len: 0,
                };
                results.insert(
                    "host".into(),
                    host_result(h.run(&src.data, ctx, 1, RunFlags::default())),
                );
            }
            let mut nic_applied: BTreeMap<String, Vec<crate::backends::nic::Applied>> =
                BTreeMap::new();
            for n in &mut b.nics {
                let r = n.nic.run(&src);
                nic_applied.insert(n.label.clone(), r.applied);
                results.insert(n.label.clone(), r.result);
            }
            report.packets += 1;
            let vm = &results["vm"];
            let mut problems = Vec::new();
            let mut explained: Vec<String> = Vec::new();
            let mut nic_unexplained = false;
            for (name, r) in &results {
                if name == "vm" {
                    continue;
                }
                if let Some(applied) = nic_applied.get(name) {
                    let n = b.nics.iter_mut().find(|n| &n.label == name).expect("nic backend");
                    let equal_maps =
                        shared_maps_equal(b.engine.as_ref().expect("engine"), n.nic.engine());
                    if let Some(why) = compare(vm, r, false) {
                        if !applied.is_empty() {
                            explained.extend(applied.iter().map(|a| a.rule.clone()));
                        } else if let (Some(rule), false) = (&n.diverged, equal_maps) {
                            explained.push(format!("state after {rule}"));
                        } else {
                            nic_unexplained = true;
                            problems.push(format!("vm vs {name}: {why}"));
                        }
                    }
                    if n.diverged.is_none() && !equal_maps {
                        n.diverged = Some(applied.first().map_or_else(
                            || "an unexplained difference".to_string(),
                            |a| a.rule.clone(),
                        ));
                    } else if equal_maps {
                        n.diverged = None;
                    }
                    continue;
                }
                // test-run does not report where a redirect went.
                if let Some(why) = compare(vm, r, false) {
                    problems.push(format!("vm vs {name}: {why}"));
                }
            }
            if problems.is_empty() && !explained.is_empty() {
                report.explained += 1;
                explained.sort();
                explained.dedup();
                for e in &explained {
                    *report.explained_by.entry(e.clone()).or_default() += 1;
                }
                report.explained_packets.push(ExplainedPacket {
                    capture: path.display().to_string(),
                    index: pkt.index,
                    rules: explained.clone(),
                });
                if report.explained_examples.len() < opts.max_reported {
                    let labels: Vec<&String> = b.nics.iter().map(|n| &n.label).collect();
                    let why: Vec<String> = nic_applied
                        .iter()
                        .flat_map(|(l, a)| {
                            a.iter().map(move |x| format!("{l}: {} {}", x.rule, x.what))
                        })
                        .collect();
                    let _ = labels;
                    report.explained_examples.push(Mismatch {
                        capture: path.display().to_string(),
                        index: pkt.index,
                        flow: flow(&src.data).map(|f| f.to_string()),
                        detail: if why.is_empty() {
                            format!("explained by {}", explained.join(", "))
                        } else {
                            why.join("; ")
                        },
                        results,
                    });
                }
            } else if problems.is_empty() {
                report.agreed += 1;
                if with_live {
                    agreed_keys.insert((path.display().to_string(), pkt.index));
                }
            } else if nondet_prog && used_nondet {
                report.nondeterministic += 1;
            } else {
                report.mismatch_count += 1;
                if nic_unexplained {
                    report.unexplained += 1;
                }
                if with_live {
                    mismatched.insert((path.display().to_string(), pkt.index));
                }
                if report.mismatches.len() < opts.max_reported {
                    let mut detail = problems.join("; ");
                    detail.push('\n');
                    for (name, r) in &results {
                        if name != "vm" && r.output != vm.output && !r.output.is_empty() {
                            detail.push_str(&hexdiff::render("vm", &vm.output, name, &r.output));
                        }
                    }
                    if results.contains_key("host") {
                        for d in &report.kernel_defects {
                            detail.push_str(&format!(
                                "kernel note: at the kernel's rewritten insn {}: {}\n",
                                d.xlated_insn, d.what
                            ));
                        }
                    }
                    let engine = b.engine.as_mut().expect("engine");
                    let branches = divergence::engine_branches(engine, obj, &src);
                    detail.push_str(&divergence::render_hint(obj, &branches));
                    report.mismatches.push(Mismatch {
                        capture: path.display().to_string(),
                        index: pkt.index,
                        flow: flow(&src.data).map(|f| f.to_string()),
                        results,
                        detail,
                    });
                }
            }
        }
    }
    if with_live && !report.interrupted {
        live::fold(obj, program, captures, opts, &mut report, &mut mismatched, &agreed_keys);
    }
    // The live backend catches SIGINT itself (to detach its program) and
    // reports the interruption as its error; that is an interrupted run,
    // not a backend that could not run.
    if report
        .skipped
        .iter()
        .any(|s| matches!(s.backend, BackendKind::Live(_)) && s.reason.starts_with("interrupted"))
    {
        report.interrupted = true;
    }
    for n in &b.nics {
        report.nic_counters.insert(n.label.clone(), n.nic.counters().to_vec());
    }
    if let (Some(e), Some(h)) = (&b.engine, &b.host) {
        let diffs = compare_maps(e, h);
        if nondet_prog {
            report.map_nondeterministic = diffs;
        } else {
            report.map_mismatches = diffs;
        }
    }
    Ok(report)
}

/// `xdp/devmap` and `xdp/cpumap` programs load (the verifier checks them
/// for their map, with expected_attach_type BPF_XDP_DEVMAP/BPF_XDP_CPUMAP),
/// but BPF_PROG_TEST_RUN refuses to run them: net/bpf/test_run.c
/// `bpf_prog_test_run_xdp` returns -EINVAL for either attach type before it
/// looks at the frame. One run of a minimal frame asks the running kernel;
/// when it refuses with EINVAL the host cannot be compared, and says why.
fn map_program_refused(
    s: &crate::backends::host::HostSession,
    program: &Program,
    kernel: &str,
) -> Option<String> {
    use crate::backends::host::testrun::TestRunError;
    use crate::loader::XdpAttach;
    let what = match XdpAttach::of_section(&program.section) {
        XdpAttach::Interface => return None,
        XdpAttach::Devmap => "a devmap program (expected_attach_type BPF_XDP_DEVMAP)",
        XdpAttach::Cpumap => "a cpumap program (expected_attach_type BPF_XDP_CPUMAP)",
    };
    // 60 bytes: a minimum Ethernet frame without FCS.
    let ctx = XdpCtx { ingress_ifindex: 1, rx_queue_index: 0, data_meta_len: 0 };
    match s.run(&[0u8; 60], ctx, 1, RunFlags::default()) {
        Err(TestRunError::Refused { errno, .. } | TestRunError::Kernel { errno })
            if errno.0 == libc::EINVAL =>
        {
            Some(format!(
                "the kernel ({kernel}) loads `{}` as {what} but BPF_PROG_TEST_RUN refuses to run \
                 it (EINVAL: test-run does not run devmap or cpumap programs, net/bpf/test_run.c \
                 bpf_prog_test_run_xdp), so the host cannot be compared",
                program.section
            ))
        }
        _ => None,
    }
}

pub(crate) fn apply_maps_to_host(s: &HostSession, obj: &Object, opts: &DiffOptions) -> Result<()> {
    // Build a scratch engine to parse the map files the same way, then copy
    // its entries into the kernel maps.
    if opts.maps.is_empty() {
        return Ok(());
    }
    // As many CPUs as the kernel's per-CPU values have (one per possible
    // CPU), so a single value in a map file fills every CPU, as it does in
    // the engine, and a per-CPU list keeps its order.
    let cfg = EngineConfig { ncpus: possible_cpus(), ..EngineConfig::default() };
    let mut scratch = Engine::new(obj, None, cfg)?;
    let before: Vec<_> = scratch.maps().maps.iter().map(|m| m.entries()).collect();
    for m in &opts.maps {
        mapfile::apply(&mut scratch, obj, m)?;
    }
    for (i, m) in scratch.maps().maps.iter().enumerate() {
        if m.def.map_type == MapType::ProgArray {
            let names: Vec<&str> = scratch.program_names().collect();
            for e in m.entries() {
                let slot = u32::from_le_bytes(e.key[..4].try_into().expect("4"));
                let target = u32::from_le_bytes(e.values[0][..4].try_into().expect("4")) as usize;
                s.set_tail_call(&m.def.name, slot, names[target])
                    .with_context(|| format!("filling PROG_ARRAY {}", m.def.name))?;
            }
            continue;
        }
        let after = m.entries();
        if after == before[i] {
            continue;
        }
        let km = s.map_named(&m.def.name).with_context(|| format!("kernel map {}", m.def.name))?;
        for e in after {
            let mut v = Vec::new();
            if m.def.map_type.is_percpu() {
                for cpu in &e.values {
                    let mut c = cpu.clone();
                    c.resize((c.len() + 7) & !7, 0);
                    v.extend(c);
                }
            } else {
                v = e.values[0].clone();
            }
            km.update(&e.key, &v).with_context(|| format!("updating kernel map {}", m.def.name))?;
        }
    }
    Ok(())
}

pub(crate) fn compare_maps(e: &Engine, h: &HostSession) -> Vec<String> {
    use crate::backends::host::MapDump;
    let mut out = Vec::new();
    for m in &e.maps().maps {
        if matches!(
            m.def.map_type,
            MapType::Ringbuf | MapType::PerfEventArray | MapType::Xskmap | MapType::ProgArray
        ) {
            continue;
        }
        let Some(km) = h.map_named(&m.def.name) else { continue };
        let ours: Vec<(Vec<u8>, Vec<Vec<u8>>)> =
            m.entries().into_iter().map(|x| (x.key, x.values)).collect();
        let theirs: Vec<(Vec<u8>, Vec<Vec<u8>>)> = match km.dump() {
            Ok(MapDump::Plain(v)) => v.into_iter().map(|(k, v)| (k, vec![v])).collect(),
            Ok(MapDump::PerCpu(v)) => v,
            Ok(_) => continue,
            Err(err) => {
                out.push(format!("map {}: cannot dump kernel map: {err}", m.def.name));
                continue;
            }
        };
        let mut theirs = theirs;
        theirs.sort();
        if ours != theirs {
            let only_ours = ours.iter().filter(|x| !theirs.contains(x)).count();
            let only_theirs = theirs.iter().filter(|x| !ours.contains(x)).count();
            out.push(format!(
                "map {}: {} entries in the engine, {} in the kernel; {only_ours} engine entries differ or are missing in the kernel, {only_theirs} the other way",
                m.def.name,
                ours.len(),
                theirs.len()
            ));
        }
    }
    out
}
