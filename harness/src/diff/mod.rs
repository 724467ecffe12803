//! The verdict diff: the same packets through several backends, compared
//! packet by packet (verdict, redirect target, output bytes) and, at the
//! end, map by map.
//!
//! The host kernel is the reference. Packets whose result depends on a
//! value the engine cannot know (time, random numbers) are classed
//! `nondeterministic` when backends disagree on them, never `mismatch`; a
//! program that calls no such helper must agree exactly.

pub mod divergence;
pub mod kernel_defects;
pub mod live;

/// Moved to [`crate::compare::hexdiff`]; kept here for existing callers.
pub use crate::compare::hexdiff;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::backends::engine::EngineBackend;
use crate::backends::host::XdpCtx;
use crate::backends::registry;
/// The backend names (`vm`, `host`, `nic:PROFILE`, ...), from the registry.
pub use crate::backends::registry::BackendKind;
use crate::backends::{
    Backend, Description, MapContents, MapsCompared, OpenCtx, Opened, PacketResult, PacketSource,
};
use crate::capture::{flow, CaptureReader};
use crate::compare::{self, Class, Tally};
use crate::mapfile::MapInit;
use crate::program::{Object, Program};

#[derive(Clone, Debug)]
pub struct DiffOptions {
    pub backends: Vec<BackendKind>,
    pub maps: Vec<MapInit>,
    pub rx_queue_index: u32,
    /// Stop printing details after this many mismatches (all are counted).
    pub max_reported: usize,
    /// `--fib`: the engine's forwarding table, and the namespace the host
    /// backend runs in.
    pub fib: Option<std::sync::Arc<crate::engine::fib::Fib>>,
    /// The engine's conntrack table: the target's `struct nf_conn` layout
    /// and the `--conntrack` connections ([`crate::conntrackfile`]).
    pub conntrack: Option<std::sync::Arc<crate::engine::conntrack::Setup>>,
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
    /// `agreed`, `nondeterministic` and `mismatch_count`.
    #[serde(flatten)]
    pub tally: Tally,
    pub mismatches: Vec<Mismatch>,
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
    /// Other programs of the object the engine could not prepare and left
    /// out, as a loader that loads only the program under test does: a
    /// tail call into one of them would fail. Each with why.
    pub left_out: Vec<LeftOut>,
    /// Each `live:` backend's run: how verdicts were observed, frames sent.
    pub live: Vec<live::LiveSummary>,
    /// Per-queue counters of each NIC backend.
    pub nic_counters: BTreeMap<String, Vec<crate::backends::nic::QueueCounters>>,
    /// SIGINT or SIGTERM stopped the run: the counts cover only the packets
    /// before it and prove nothing about the rest.
    pub interrupted: bool,
    /// The engine's conntrack table after the run, when the program uses
    /// one. No other backend's table is compared: the host kernel's is
    /// not read back (the diff says so in `conntrack_note`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<Vec<crate::engine::conntrack::EntryView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack_note: Option<String>,
}

/// A program of the object that the diff's engine left out.
#[derive(Clone, Debug, Serialize)]
pub struct LeftOut {
    pub program: String,
    pub reason: String,
}

impl DiffReport {
    pub fn agrees(&self) -> bool {
        self.tally.agrees(&self.map_mismatches)
    }
}

/// Pins this thread to CPU 0 so the kernel's per-CPU map slots and
/// `bpf_get_smp_processor_id` match the engine's CPU 0.
/// Best effort, as before: where CPU 0 is not allowed the run goes on.
pub fn pin_to_cpu0() {
    let _ = xdpqual_kernel::cpu::pin_to_cpu(0);
}

/// A backend in the diff, beside the engine, and for one that explains its
/// differences by rules, the rule after which its ordinary (not per-CPU)
/// maps stopped matching the engine's.
struct Running {
    backend: Box<dyn Backend>,
    about: Description,
    diverged: Option<String>,
}

/// Whether the ordinary maps of two dumps hold the same entries, map by map
/// in the object's order.
fn shared_maps_equal(a: &[MapContents], b: &[MapContents]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.percpu || x.entries == y.entries)
}

/// The backends `opts` names, without repeats, in the registry's order.
fn requested(opts: &DiffOptions) -> Vec<BackendKind> {
    let mut kinds: Vec<BackendKind> = Vec::new();
    for k in &opts.backends {
        if !kinds.contains(k) {
            kinds.push(k.clone());
        }
    }
    kinds.sort_by_key(registry::rank);
    kinds
}

/// Runs the diff. With a FIB and the host backend, the whole run (every
/// backend's packets) happens on a thread inside a namespace built from the
/// FIB ([`crate::backends::fib_netns`]); when that namespace cannot be
/// built, the host is skipped with the reason.
pub fn run(
    obj: &Object,
    program: &Program,
    captures: &[PathBuf],
    opts: &DiffOptions,
) -> Result<DiffReport> {
    let Some(fib) = &opts.fib else { return run_here(obj, program, captures, opts, None) };
    if !requested(opts).contains(&BackendKind::Host) {
        return run_here(obj, program, captures, opts, None);
    }
    match crate::backends::fib_netns::FibNamespace::create(fib) {
        Ok(ns) => {
            let r = xdpqual_kernel::net::in_netns(Some(&ns.path()), || {
                run_here(obj, program, captures, opts, None)
            })
            .map_err(|e| anyhow::anyhow!("entering namespace {}: {e}", ns.name))?;
            drop(ns);
            r
        }
        Err(e) => {
            let mut without = opts.clone();
            without.backends.retain(|b| *b != BackendKind::Host);
            let skip = Skipped {
                backend: BackendKind::Host,
                reason: format!("the --fib namespace could not be built: {e:#}"),
            };
            run_here(obj, program, captures, &without, Some(skip))
        }
    }
}

fn run_here(
    obj: &Object,
    program: &Program,
    captures: &[PathBuf],
    opts: &DiffOptions,
    skipped: Option<Skipped>,
) -> Result<DiffReport> {
    let mut report = DiffReport {
        schema: "xdpqual.diff/1",
        program: program.name.clone(),
        ..Default::default()
    };
    report.skipped.extend(skipped);
    pin_to_cpu0();
    let ingress = XdpCtx::loopback().ingress_ifindex;
    let ctx = OpenCtx {
        obj,
        program,
        maps: &opts.maps,
        fib: opts.fib.clone(),
        conntrack: opts.conntrack.clone(),
    };
    // The engine always runs: it is the one being checked.
    let mut engine = EngineBackend::open(&ctx)?;
    report.left_out = engine
        .engine
        .refused_programs()
        .iter()
        .map(|(program, reason)| LeftOut { program: program.clone(), reason: reason.clone() })
        .collect();
    report.backends.push(BackendKind::Vm);
    let mut others: Vec<Running> = Vec::new();
    let mut with_live = false;
    for kind in requested(opts) {
        match registry::open(&kind, &ctx)? {
            Opened::Reference => {}
            Opened::WholeRun => with_live = true,
            Opened::Skipped { reason, kernel } => {
                report.kernel = report.kernel.take().or(kernel);
                report.skipped.push(Skipped { backend: kind, reason });
            }
            Opened::Ready(backend) => {
                let about = backend.describe();
                report.kernel = report.kernel.take().or(about.kernel.clone());
                if let Some(x) = &about.xlated {
                    report.kernel_defects = kernel_defects::known_defects(x);
                }
                report.backends.push(kind);
                others.push(Running { backend, about, diverged: None });
            }
        }
    }
    let nondet_prog = compare::calls_nondeterministic_helper(&program.insns);
    // Packets by (capture, index), only kept when a live backend's
    // disagreements are to be folded in afterwards.
    let mut mismatched = std::collections::HashSet::new();
    let mut agreed_keys = std::collections::HashSet::new();
    let bar = crate::util::progress::packets("diff");
    'captures: for path in captures {
        let reader = CaptureReader::open(path)
            .with_context(|| format!("opening capture {}", path.display()))?;
        bar.set_message(path.display().to_string());
        for item in reader {
            if xdpqual_kernel::signal::interrupted() {
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
            let (vm, used_nondet) = engine.run_recorded(&src);
            // The engine's maps after this packet, for backends that track
            // theirs packet by packet.
            let mut vm_maps = None;
            let mut problems = Vec::new();
            let mut explained: Vec<String> = Vec::new();
            // What each rule-explaining backend's rules did, by label.
            let mut rule_notes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            let mut rules_unexplained = false;
            report.packets += 1;
            bar.inc(1);
            for o in &mut others {
                let ran = o.backend.run(&src);
                let name = &o.about.label;
                let difference = compare::packet_difference(&vm, &ran.result, false);
                match &ran.rules {
                    None => {
                        if let Some(why) = difference {
                            problems.push(format!("vm vs {name}: {why}"));
                        }
                    }
                    Some(applied) => {
                        rule_notes.entry(name).or_default().extend(
                            applied.iter().map(|x| format!("{name}: {} {}", x.rule, x.what)),
                        );
                        let equal_maps = o.about.maps != MapsCompared::PerPacket
                            || shared_maps_equal(
                                vm_maps.get_or_insert_with(|| engine.dump_maps()),
                                &o.backend.dump_maps(),
                            );
                        if let Some(why) = difference {
                            if !applied.is_empty() {
                                explained.extend(applied.iter().map(|a| a.rule.clone()));
                            } else if let (Some(rule), false) = (&o.diverged, equal_maps) {
                                explained.push(format!("state after {rule}"));
                            } else {
                                rules_unexplained = true;
                                problems.push(format!("vm vs {name}: {why}"));
                            }
                        }
                        if o.diverged.is_none() && !equal_maps {
                            o.diverged = Some(applied.first().map_or_else(
                                || "an unexplained difference".to_string(),
                                |a| a.rule.clone(),
                            ));
                        } else if equal_maps {
                            o.diverged = None;
                        }
                    }
                }
                results.insert(name.clone(), ran.result);
            }
            let key = (path.display().to_string(), pkt.index);
            if problems.is_empty() && !explained.is_empty() {
                report.explained += 1;
                explained.sort();
                explained.dedup();
                for e in &explained {
                    *report.explained_by.entry(e.clone()).or_default() += 1;
                }
                report.explained_packets.push(ExplainedPacket {
                    capture: key.0.clone(),
                    index: pkt.index,
                    rules: explained.clone(),
                });
                if report.explained_examples.len() < opts.max_reported {
                    results.insert("vm".into(), vm);
                    report.explained_examples.push(Mismatch {
                        capture: key.0,
                        index: pkt.index,
                        flow: flow(&src.data).map(|f| f.to_string()),
                        detail: if rule_notes.values().all(Vec::is_empty) {
                            format!("explained by {}", explained.join(", "))
                        } else {
                            rule_notes.into_values().flatten().collect::<Vec<_>>().join("; ")
                        },
                        results,
                    });
                }
                continue;
            }
            let problem = (!problems.is_empty()).then_some(());
            match report.tally.record(&problem, nondet_prog, used_nondet) {
                Class::Agreed => {
                    if with_live {
                        agreed_keys.insert(key);
                    }
                }
                Class::Nondeterministic => {}
                Class::Mismatch => {
                    if rules_unexplained {
                        report.unexplained += 1;
                    }
                    if with_live {
                        mismatched.insert(key.clone());
                    }
                    if report.mismatches.len() < opts.max_reported {
                        let mut detail = problems.join("; ");
                        detail.push('\n');
                        for (name, r) in &results {
                            if r.output != vm.output && !r.output.is_empty() {
                                detail
                                    .push_str(&hexdiff::render("vm", &vm.output, name, &r.output));
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
                        let branches = divergence::engine_branches(&mut engine.engine, obj, &src);
                        detail.push_str(&divergence::render_hint(obj, &branches));
                        results.insert("vm".into(), vm);
                        report.mismatches.push(Mismatch {
                            capture: key.0,
                            index: pkt.index,
                            flow: flow(&src.data).map(|f| f.to_string()),
                            results,
                            detail,
                        });
                    }
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
    report.conntrack = engine.engine.conntrack_entries();
    if report.conntrack.is_some() && report.backends.len() > 1 {
        report.conntrack_note = Some(
            "conntrack table: only the engine's is reported; the other backends' tables are not \
             read back, so they are not compared (their effects on verdicts, packets and maps are). \
             The host's table is this network namespace's and keeps connections between runs: \
             run under `unshare -n` so that it starts empty, as the engine's does"
                .into(),
        );
    }
    for o in others {
        if o.about.maps == MapsCompared::AtEnd {
            let diffs =
                compare::compare_maps(&engine.engine, &o.about.maps_side, &o.backend.dump_maps());
            if nondet_prog {
                report.map_nondeterministic.extend(diffs);
            } else {
                report.map_mismatches.extend(diffs);
            }
        }
        if let Some(counters) = o.backend.release().queue_counters {
            report.nic_counters.insert(o.about.label, counters);
        }
    }
    Ok(report)
}
