//! `xdpqual qualify`: the CI gate. Runs the configuration's units
//! (program x capture x cell, program x offload profile) on every backend
//! available here, or one shard of them, and writes `report.json`,
//! `junit.xml` and `summary.md` under `results/<run-id>/`.

pub mod build;
pub mod config;
pub mod expect;
pub mod init;
pub mod merge;
pub mod perf;
pub mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::backends::{engine::run_packet, PacketSource};
use crate::capture::CaptureReader;
use crate::diff::{self, BackendKind, DiffOptions};
use crate::engine::{Engine, EngineConfig, NoTrace};
use crate::history::History;
use crate::loader::load_target;
use crate::mapfile::{self, MapInit};
use crate::program::{Object, Program};
use crate::report::perf::PerfSample;
use crate::report::{
    Check, OffloadResult, Outcome, PacketDetail, Report, RunInfo, ShardInfo, UnitTiming,
};
use config::{Config, ProgramConfig, ProgramSource};

/// Per-packet details kept per unit (all are counted).
const MAX_PACKET_DETAILS: usize = 50;

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub quiet: bool,
    pub shard: Option<plan::Shard>,
    /// Read for unit costs and the perf baseline; written by the caller.
    pub history: Option<PathBuf>,
    /// Baseline name for the regression budget.
    pub baseline: String,
    /// Where `source` programs are compiled.
    pub build_dir: PathBuf,
    pub run_id: String,
    /// This run will be recorded in the history and, when the history has
    /// no baseline of that name yet, become it ([`adopt_first_baseline`]):
    /// its regression gates then pass as the reference, not skip.
    pub becomes_baseline_if_none: bool,
}

/// After a recorded run: when the history has no baseline `name`, make
/// `run_id` it. Returns the one line to tell the user, or `None` when a
/// baseline already existed.
pub fn adopt_first_baseline(history: &Path, name: &str, run_id: &str) -> Result<Option<String>> {
    let mut h = History::open(history)?;
    if h.baseline(name)?.is_some() {
        return Ok(None);
    }
    let id = h.set_baseline(name, run_id)?;
    Ok(Some(format!(
        "first run: no baseline '{name}' in {} yet, so this run ({id}) is now baseline '{name}'; later runs are compared with it (`xdpqual baseline set RUN` picks another)",
        history.display()
    )))
}

/// A run id: seconds since the epoch and the process id, sortable.
pub fn new_run_id() -> String {
    format!("{}-{}", now_unix(), std::process::id())
}

/// The commit being qualified, for the history and the dashboard's x axis:
/// `XDPQUAL_COMMIT`, else CI's own variable (`GITHUB_SHA`, GitLab's
/// `CI_COMMIT_SHA`), else `git rev-parse HEAD` in the configuration's
/// folder. `None` outside a repository: a run without a commit is still a run.
pub fn source_commit(config: &Path) -> Option<String> {
    let from_env = ["XDPQUAL_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty());
    let commit = from_env.or_else(|| {
        let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "HEAD"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    })?;
    // An id, not a document: a variable set to something long is cut.
    Some(commit.chars().take(64).collect())
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Loaded {
    obj: Object,
    prog: Program,
    maps: Vec<MapInit>,
    fib: Option<std::sync::Arc<crate::engine::fib::Fib>>,
    /// An empty conntrack table with the host kernel's `struct nf_conn`
    /// layout, for programs that call the conntrack kfuncs (as `diff`
    /// gives them without `--conntrack`).
    conntrack: Option<std::sync::Arc<crate::engine::conntrack::Setup>>,
}

fn load_program(p: &ProgramConfig, build_dir: &Path) -> Result<Loaded, String> {
    let path = match &p.source {
        ProgramSource::Object(o) => o.clone(),
        ProgramSource::C { source, cflags } => {
            build::compile(source, cflags, build_dir).map_err(|e| format!("{e:#}"))?
        }
    };
    let obj = load_target(
        &path,
        &crate::loader::LoadOptions {
            prog_type: p.prog_type,
            select: p.section.clone(),
            map_sizes: p.map_sizes.iter().map(|(n, s)| (n.clone(), *s)).collect(),
            kconfig: crate::kconfig::host_kernel_config(),
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let prog = obj.program(p.section.as_deref()).cloned().ok_or_else(|| match &p.section {
        Some(s) => format!("no XDP program '{s}' in {}", path.display()),
        None => format!("no XDP program in {}", path.display()),
    })?;
    let maps = p.maps.iter().map(|(m, f)| MapInit { map: m.clone(), file: f.clone() }).collect();
    let fib = match &p.fib {
        Some(f) => Some(std::sync::Arc::new(
            crate::fibfile::FibSpec::load(f).map_err(|e| format!("{e:#}"))?.fib,
        )),
        None => None,
    };
    let conntrack =
        crate::conntrackfile::setup_for(&obj, None, None).map_err(|e| format!("{e:#}"))?;
    Ok(Loaded { obj, prog, maps, fib, conntrack })
}

fn fresh_engine(l: &Loaded) -> Result<Engine> {
    let cfg = EngineConfig {
        fib: l.fib.clone(),
        conntrack: l.conntrack.clone(),
        kernel: crate::backends::engine::host_kernel_release(),
        ..EngineConfig::default()
    };
    let mut e = Engine::new(&l.obj, Some(&l.prog.name), cfg)?;
    mapfile::apply(&mut e, &l.obj, &l.maps)?;
    Ok(e)
}

/// The whole capture in memory. Packet i arrives on ingress_ifindex
/// 1 + (i % 5), queue 0: the convention corpus/expect's oracles use, so
/// their expectations hold here.
fn read_packets(path: &Path) -> Result<Vec<PacketSource>, String> {
    let reader = CaptureReader::open(path)
        .map_err(|e| format!("opening capture {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for item in reader {
        let p = item.map_err(|e| format!("reading capture {}: {e}", path.display()))?;
        let i = out.len() as u32;
        out.push(PacketSource {
            data: p.data,
            ts_ns: p.ts_ns,
            ingress_ifindex: 1 + i % 5,
            rx_queue_index: 0,
        });
    }
    Ok(out)
}

/// What the history says before the run: unit costs and baseline perf.
#[derive(Default)]
struct Prior {
    costs: BTreeMap<String, f64>,
    baseline: Option<(String, Vec<PerfSample>)>,
    source: String,
}

fn prior(opts: &RunOptions) -> Result<Prior> {
    let Some(path) = &opts.history else {
        return Ok(Prior::default());
    };
    if !path.exists() {
        return Ok(Prior { source: path.display().to_string(), ..Default::default() });
    }
    let h = History::open(path)?;
    let baseline = match h.baseline(&opts.baseline)? {
        Some(id) => Some((id.clone(), h.perf(&id)?)),
        None => None,
    };
    Ok(Prior { costs: h.unit_costs()?, baseline, source: path.display().to_string() })
}

/// Runs every unit of the plan (or of the shard); never stops at the first
/// failure. Checks come out in plan order.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<Report> {
    let units = plan::units(cfg);
    let prior = prior(opts)?;
    let kernel =
        crate::backends::host::HostBackend::open().ok().map(|h| h.kernel_release().to_string());
    let mut report = Report::new();
    report.run = RunInfo {
        id: opts.run_id.clone(),
        created_unix: now_unix(),
        arch: std::env::consts::ARCH.into(),
        kernel: kernel.clone(),
        config: cfg.path.display().to_string(),
        shard: None,
        commit: source_commit(&cfg.path),
    };
    let selected: Vec<&plan::Unit> = match opts.shard {
        None => units.iter().collect(),
        Some(s) => {
            let (assignment, print) =
                plan::assign(&units, &prior.costs, |u| plan::estimate(cfg, u), s.count);
            let mine: Vec<&plan::Unit> =
                units.iter().filter(|u| assignment[u.index] == s.index - 1).collect();
            report.run.shard = Some(ShardInfo {
                index: s.index,
                count: s.count,
                plan: print,
                units: mine.iter().map(|u| u.index).collect(),
                total_units: units.len(),
            });
            mine
        }
    };
    let progress = progress_bar(!opts.quiet, selected.len() as u64);
    let mut loaded: BTreeMap<usize, Result<Loaded, String>> = BTreeMap::new();
    let mut r = Runner { cfg, opts, prior: &prior, kernel, host_verdicts: Default::default() };
    for u in selected {
        let p = &cfg.programs[u.program];
        if let Some(bar) = &progress {
            bar.set_message(u.key.clone());
        }
        let started = Instant::now();
        let lp = loaded.entry(u.program).or_insert_with(|| load_program(p, &opts.build_dir));
        let first = report.checks.len();
        match lp {
            Err(why) => report.checks.push(Check::new(
                &p.label(),
                &cap_label(cfg, u),
                "load",
                Outcome::Fail { reason: why.clone() },
            )),
            Ok(l) => r.unit(u, p, l, &mut report),
        }
        for c in &mut report.checks[first..] {
            c.unit = u.index;
            c.cell = u.cell.clone();
        }
        report.units.push(UnitTiming {
            unit: u.index,
            key: u.key.clone(),
            seconds: started.elapsed().as_secs_f64(),
        });
        for c in &report.checks[first..] {
            match &progress {
                Some(bar) if c.failed() => bar.println(c.line()),
                Some(_) => {}
                None if !opts.quiet => eprintln!("{}", c.line()),
                None => {}
            }
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(report)
}

fn progress_bar(enabled: bool, n: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(n);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} units, {elapsed} elapsed, ETA {eta}  {wide_msg}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    Some(bar)
}

fn cap_label(cfg: &Config, u: &plan::Unit) -> String {
    u.capture.map_or_else(|| "-".to_string(), |c| cfg.captures[c].display().to_string())
}

struct Runner<'a> {
    cfg: &'a Config,
    opts: &'a RunOptions,
    prior: &'a Prior,
    kernel: Option<String>,
    /// The host kernel verifier's verdict per program label, asked once.
    host_verdicts: std::collections::HashMap<String, crate::offload::HostVerdict>,
}

impl Runner<'_> {
    fn unit(&mut self, u: &plan::Unit, p: &ProgramConfig, l: &Loaded, report: &mut Report) {
        let label = p.label();
        let cap = cap_label(self.cfg, u);
        match (u.cell.as_str(), u.capture) {
            ("vm", Some(ci)) => self.vm(u, p, l, ci, report),
            ("host", Some(ci)) => self.against(u, p, l, ci, BackendKind::Host, report),
            ("rbpf", Some(ci)) => self.against(u, p, l, ci, BackendKind::Rbpf, report),
            (cell, Some(ci)) if cell.starts_with("kernel:") => {
                self.kernel_cell(u, p, l, ci, &cell["kernel:".len()..], report)
            }
            (cell, None) if cell.starts_with("offload:") => {
                let profile = &cell["offload:".len()..];
                let expect_ok = p.offload[profile];
                self.offload(u.index, &label, profile, expect_ok, l, report);
            }
            (cell, _) => report.checks.push(Check::new(
                &label,
                &cap,
                cell,
                Outcome::Fail { reason: format!("internal: no runner for cell '{cell}'") },
            )),
        }
    }

    /// The engine alone: expected verdicts, then performance.
    fn vm(
        &mut self,
        u: &plan::Unit,
        p: &ProgramConfig,
        l: &Loaded,
        ci: usize,
        report: &mut Report,
    ) {
        let label = p.label();
        let cap = self.cfg.captures[ci].display().to_string();
        let fail =
            |name: &str, reason: String| Check::new(&label, &cap, name, Outcome::Fail { reason });
        let packets = match read_packets(&self.cfg.captures[ci]) {
            Ok(p) => p,
            Err(e) => return report.checks.push(fail("engine replay", e)),
        };
        let mut engine = match fresh_engine(l) {
            Ok(e) => e,
            Err(e) => return report.checks.push(fail("engine replay", format!("{e:#}"))),
        };
        let results: Vec<_> =
            packets.iter().map(|pkt| run_packet(&mut engine, pkt, &mut NoTrace)).collect();
        let labels: Vec<String> = results.iter().map(|r| r.verdict.label()).collect();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for v in &labels {
            *counts.entry(v).or_default() += 1;
        }
        let counts_text =
            counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ");
        match p.expect.get(&ci) {
            None => {
                // Without an expectation, a packet the engine's sandbox
                // stopped (or could not run) is still no pass: the same rule
                // as `xdpqual replay`'s exit status.
                let mut problems: BTreeMap<String, u64> = BTreeMap::new();
                for r in &results {
                    match &r.verdict {
                        crate::verdict::Verdict::Fault { message, .. } => {
                            *problems
                                .entry(crate::replay::summary::fault_reason(message))
                                .or_default() += 1
                        }
                        crate::verdict::Verdict::Error { message } => {
                            *problems.entry(message.clone()).or_default() += 1
                        }
                        _ => {}
                    }
                }
                let outcome = if problems.is_empty() {
                    Outcome::Pass {
                        detail: format!("{} packets, no expectation: {counts_text}", labels.len()),
                    }
                } else {
                    let mut list: Vec<(String, u64)> = problems.into_iter().collect();
                    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    let list: Vec<String> =
                        list.iter().map(|(r, n)| format!("{n} \u{d7} {r}")).collect();
                    Outcome::Fail {
                        reason: format!(
                            "{} packets ({counts_text}); faults: {}",
                            labels.len(),
                            list.join("; ")
                        ),
                    }
                };
                report.checks.push(Check::new(&label, &cap, "engine replay", outcome));
            }
            Some(e) => {
                let mut j = expect::judge(e, &labels);
                if !e.outputs.is_empty() {
                    let outputs: Vec<Vec<u8>> = results.iter().map(|r| r.output.clone()).collect();
                    j.problems.extend(expect::judge_outputs(e, &outputs));
                }
                for (index, want, got) in j.packets.iter().take(MAX_PACKET_DETAILS) {
                    report.packets.push(PacketDetail {
                        unit: u.index,
                        program: label.clone(),
                        capture: cap.clone(),
                        cell: u.cell.clone(),
                        index: *index,
                        detail: format!("expected {want}, the engine returned {got}"),
                    });
                }
                let outcome = if j.problems.is_empty() {
                    Outcome::Pass {
                        detail: format!("{} packets as expected: {counts_text}", labels.len()),
                    }
                } else {
                    Outcome::Fail { reason: j.problems.join("; ") }
                };
                report.checks.push(Check::new(&label, &cap, "expected verdicts", outcome));
            }
        }
        if self.cfg.measure {
            self.perf(u, p, l, &packets, &cap, report);
        }
    }

    fn perf(
        &mut self,
        u: &plan::Unit,
        p: &ProgramConfig,
        l: &Loaded,
        packets: &[PacketSource],
        cap: &str,
        report: &mut Report,
    ) {
        let label = p.label();
        let sample = match perf::measure(&label, cap, packets, self.cfg.rounds, || fresh_engine(l))
        {
            Ok(s) => PerfSample { unit: u.index, ..s },
            Err(e) => {
                return report.checks.push(Check::new(
                    &label,
                    cap,
                    "perf",
                    Outcome::Fail { reason: format!("{e:#}") },
                ))
            }
        };
        if let Some(max) = p.budget.max_ns_per_packet {
            let name = format!("perf: at most {max} ns/packet");
            let text = format!(
                "median {:.1} ns/packet over {} rounds (reference {:.1})",
                sample.median_ns, sample.rounds, sample.ref_median_ns
            );
            let outcome = if sample.median_ns <= max {
                Outcome::Pass { detail: text }
            } else {
                Outcome::Fail { reason: text }
            };
            report.checks.push(Check::new(&label, cap, &name, outcome));
        }
        if let Some(max) = p.budget.max_regression_pct {
            let name = crate::report::perf::regression_gate_name(max, &self.opts.baseline);
            let outcome = match &self.prior.baseline {
                // The first recorded run on a history without this baseline
                // becomes it: it is the reference, 0% from itself.
                None if self.opts.becomes_baseline_if_none && !self.prior.source.is_empty() => {
                    Outcome::Pass {
                        detail: format!(
                            "first run: no baseline '{}' yet, this run becomes it (median {:.1} ns/packet, reference {:.1})",
                            self.opts.baseline, sample.median_ns, sample.ref_median_ns
                        ),
                    }
                }
                None => Outcome::Skipped {
                    reason: format!(
                        "no baseline '{}' in {}",
                        self.opts.baseline,
                        if self.prior.source.is_empty() {
                            "the history (none configured)"
                        } else {
                            &self.prior.source
                        }
                    ),
                },
                Some((id, samples)) => match samples.iter().find(|b| {
                    b.program == sample.program
                        && b.capture == sample.capture
                        && b.backend == sample.backend
                }) {
                    None => Outcome::Skipped {
                        reason: format!(
                            "baseline run {id} has no measurement of this program and capture"
                        ),
                    },
                    Some(base) => {
                        let r = crate::report::perf::judge_regression(&sample, base, max);
                        let text = format!("{:+.1}% against run {id} (normalised by the reference workload; noise allowance {:.1}%)", r.change_pct, r.noise_pct);
                        if r.regressed {
                            Outcome::Fail { reason: text }
                        } else {
                            Outcome::Pass { detail: text }
                        }
                    }
                },
            };
            report.checks.push(Check::new(&label, cap, &name, outcome));
        }
        report.perf.push(sample);
    }

    /// The engine against another backend, packet by packet.
    fn against(
        &mut self,
        u: &plan::Unit,
        p: &ProgramConfig,
        l: &Loaded,
        ci: usize,
        other: BackendKind,
        report: &mut Report,
    ) {
        let label = p.label();
        let cap = self.cfg.captures[ci].display().to_string();
        let name = match other {
            BackendKind::Host => "engine agrees with host kernel",
            _ => "engine agrees with rbpf",
        };
        let optional = p.optional.contains(&u.cell);
        let opts = DiffOptions {
            backends: vec![BackendKind::Vm, other.clone()],
            maps: l.maps.clone(),
            rx_queue_index: 0,
            max_reported: MAX_PACKET_DETAILS,
            fib: l.fib.clone(),
            conntrack: l.conntrack.clone(),
        };
        let outcome =
            match diff::run(&l.obj, &l.prog, std::slice::from_ref(&self.cfg.captures[ci]), &opts) {
                Err(e) => Outcome::Fail { reason: format!("{e:#}") },
                // A capture that could not be read to the end was not
                // compared to the end: never a pass.
                Ok(d) if !d.capture_errors.is_empty() => Outcome::Fail {
                    reason: format!(
                        "capture error after {} packets: {}",
                        d.packets,
                        d.capture_errors.join("; ")
                    ),
                },
                Ok(d) if !d.backends.contains(&other) => {
                    let why = d
                        .skipped
                        .iter()
                        .find(|s| s.backend == other)
                        .map(|s| s.reason.clone())
                        .unwrap_or_default();
                    // A verifier rejection is a failure; an unavailable backend
                    // fails too (the gate did not run), unless the
                    // configuration marks its cell optional.
                    if why.starts_with("rejected") {
                        Outcome::Fail { reason: why }
                    } else if optional {
                        Outcome::Skipped {
                            reason: format!("{why} (cell '{}' is optional)", u.cell),
                        }
                    } else {
                        Outcome::Fail { reason: could_not_run(&u.cell, &why) }
                    }
                }
                Ok(d) if d.agrees() => Outcome::Pass {
                    detail: match other {
                        BackendKind::Host => format!(
                            "{} packets agree, {} nondeterministic (kernel {})",
                            d.tally.agreed,
                            d.tally.nondeterministic,
                            self.kernel.clone().or(d.kernel.clone()).unwrap_or_default()
                        ),
                        _ => format!("{} packets agree", d.tally.agreed),
                    },
                },
                Ok(d) => {
                    for m in &d.mismatches {
                        report.packets.push(PacketDetail {
                            unit: u.index,
                            program: label.clone(),
                            capture: cap.clone(),
                            cell: u.cell.clone(),
                            index: m.index,
                            detail: m.detail.clone(),
                        });
                    }
                    let mut reason =
                        format!("{} of {} packets differ", d.tally.mismatch_count, d.packets);
                    if let Some(m) = d.mismatches.first() {
                        reason.push_str(&format!(
                            "; first: packet {}: {}",
                            m.index,
                            m.detail.lines().next().unwrap_or("")
                        ));
                    }
                    for mm in &d.map_mismatches {
                        reason.push_str(&format!("; {mm}"));
                    }
                    if p.agree_with_kernel || other != BackendKind::Host {
                        Outcome::Fail { reason }
                    } else {
                        Outcome::Pass { detail: format!("agreement not required: {reason}") }
                    }
                }
            };
        report.checks.push(Check::new(&label, &cap, name, outcome));
    }

    /// One QEMU matrix cell: the program loads in that kernel and agrees
    /// with the engine on every deterministic packet of the capture.
    fn kernel_cell(
        &mut self,
        u: &plan::Unit,
        p: &ProgramConfig,
        l: &Loaded,
        ci: usize,
        kernel: &str,
        report: &mut Report,
    ) {
        use crate::matrix::run::{CellStatus, Options};
        use crate::matrix::{self, spec};
        let label = p.label();
        let cap = self.cfg.captures[ci].display().to_string();
        let name = format!("engine agrees with kernel {kernel} (QEMU)");
        let optional = p.optional.contains(&u.cell);
        let skip_or_fail = |why: String| {
            if optional {
                Outcome::Skipped { reason: format!("{why} (cell '{}' is optional)", u.cell) }
            } else {
                Outcome::Fail { reason: could_not_run(&u.cell, &why) }
            }
        };
        let cells: Vec<_> =
            spec::default_cells().into_iter().filter(|c| c.name == kernel).collect();
        let opts = Options {
            jobs: Some(1),
            maps: l.maps.clone(),
            // As the program was loaded (load_program above).
            load: crate::loader::LoadOptions {
                prog_type: p.prog_type,
                select: p.section.clone(),
                map_sizes: p.map_sizes.iter().map(|(n, s)| (n.clone(), *s)).collect(),
                ..Default::default()
            },
            ..Options::new(cells, matrix::cache_dir())
        };
        let outcome =
            match matrix::run(&l.obj, &l.prog, std::slice::from_ref(&self.cfg.captures[ci]), &opts)
            {
                // QEMU, the musl agent or the kernel package unavailable here.
                Err(e) => skip_or_fail(format!("{e:#}")),
                Ok(r) => match r.cells.first() {
                    None => skip_or_fail("no such cell ran".into()),
                    Some(c) => match c.status {
                        CellStatus::Agrees => {
                            let a = c.agreement.as_ref();
                            Outcome::Pass {
                                detail: format!(
                                "{} packets agree, {} nondeterministic, {} explained (kernel {})",
                                a.map_or(0, |a| a.tally.agreed),
                                a.map_or(0, |a| a.tally.nondeterministic),
                                a.map_or(0, |a| a.explained),
                                c.kernel_release.clone().unwrap_or_else(|| c.kernel.clone())
                            ),
                            }
                        }
                        CellStatus::Refused => Outcome::Fail {
                            reason: format!(
                                "refused by the {kernel} verifier: {}",
                                c.error.clone().unwrap_or_default()
                            ),
                        },
                        CellStatus::Disagrees => {
                            let a = c.agreement.as_ref();
                            let first = a
                                .and_then(|a| a.mismatches.first())
                                .map(|m| format!("; first: packet {}: {}", m.index, m.detail))
                                .unwrap_or_default();
                            Outcome::Fail {
                                reason: format!(
                                    "{} packets differ{first}",
                                    a.map_or(0, |a| a.tally.mismatch_count)
                                ),
                            }
                        }
                        CellStatus::Failed => skip_or_fail(format!(
                            "cell failed: {}",
                            c.error.clone().unwrap_or_default()
                        )),
                    },
                },
            };
        report.checks.push(Check::new(&label, &cap, &name, outcome));
    }

    fn offload(
        &mut self,
        unit: usize,
        label: &str,
        profile: &str,
        expect_ok: bool,
        l: &Loaded,
        report: &mut Report,
    ) {
        let name = format!(
            "offload {profile}: expected {}",
            if expect_ok { "offloadable" } else { "not offloadable" }
        );
        let prof = match nic_model::Profile::load(profile) {
            Ok(p) => p,
            Err(e) => {
                return report.checks.push(Check::new(
                    label,
                    "-",
                    &name,
                    Outcome::Fail { reason: e.to_string() },
                ))
            }
        };
        // The host verifier's verdict does not depend on the profile: ask
        // it once per program.
        let host = self
            .host_verdicts
            .entry(label.to_string())
            .or_insert_with(|| crate::offload::host_verdict(&l.obj, &l.prog))
            .clone();
        let r = crate::offload::check(&l.obj, &l.prog, &prof, &host);
        let state = r.verdict;
        let ok = state.loads();
        let first =
            r.findings.first().map(|f| format!("{}: {}", f.rule, f.message)).unwrap_or_default();
        let findings = nic_model::plural(r.findings.len(), "finding");
        let host_note = match &host {
            crate::offload::HostVerdict::NotAsked { .. } => format!("; {}", host.line()),
            _ => String::new(),
        };
        let outcome = if ok == expect_ok {
            Outcome::Pass { detail: format!("{}, {findings}{host_note}", r.verdict_line()) }
        } else {
            Outcome::Fail {
                reason: format!("the checker says {} (first finding {first})", r.verdict_line()),
            }
        };
        let est = estimate_mpps(&prof, r.stats.reachable_insns);
        report.offload.push(OffloadResult {
            unit,
            program: label.into(),
            profile: profile.into(),
            compatible: ok,
            state: Some(state),
            reason: if state == nic_model::Offloadability::Offloadable {
                format!("{findings}{host_note}")
            } else {
                format!("{}; first finding {first}", r.verdict_line())
            },
            est_mpps: if ok { est.mpps } else { None },
            est_basis: est.basis,
            est_bound: if ok { est.bound } else { None },
        });
        report.checks.push(Check::new(label, "-", &name, outcome));
    }
}

/// The failure of a configured cell that could not run here.
fn could_not_run(cell: &str, why: &str) -> String {
    format!(
        "cell '{cell}' could not run: {why}; the configuration requires it (list it in `optional` to let it skip)"
    )
}

/// A first-order throughput estimate for an offloaded program.
pub struct FirstOrderEstimate {
    pub mpps: Option<f64>,
    /// How it was computed, naming the bound that applies.
    pub basis: String,
    /// `compute` or `line rate`; `None` without an estimate.
    pub bound: Option<String>,
}

/// Every reachable instruction runs once per packet at one instruction per
/// cycle (an upper bound on the work, so a lower bound on the rate), on
/// every core of the profile, plus the profile's fixed per-packet cycles.
/// That compute bound is capped by the line rate: the profile's
/// `line_rate_mpps`, else `line_rate_gbps` at minimum-size frames (60 B +
/// 24 B of FCS, preamble and gap on the wire, as `nic_model::perf`). The
/// basis names the bound that applies, and says when the profile has no
/// line rate. Only profiles with a clock and a core count get one.
pub fn estimate_mpps(prof: &nic_model::Profile, reachable_insns: usize) -> FirstOrderEstimate {
    let none = |basis: &str| FirstOrderEstimate { mpps: None, basis: basis.into(), bound: None };
    let Some(pm) = &prof.perf else {
        return none("the profile has no performance constants");
    };
    let (Some(clock), Some(cores)) = (&pm.clock_mhz, &pm.cores) else {
        return none("the profile has no clock or core count");
    };
    let fixed = pm.per_packet_cycles.as_ref().map_or(0.0, |c| c.value);
    let cycles = fixed + reachable_insns as f64;
    let compute = clock.value * cores.value as f64 / cycles.max(1.0);
    let compute_basis = format!(
        "{} MHz x {} cores / ({fixed} + {reachable_insns} insns) cycles = {compute:.1} Mpps",
        clock.value, cores.value
    );
    let line =
        pm.line_rate_mpps.as_ref().map(|l| (l.value, format!("{} Mpps", l.value))).or_else(|| {
            pm.line_rate_gbps.as_ref().map(|g| {
                let mpps = g.value * 1e3 / ((60.0 + 24.0) * 8.0);
                (mpps, format!("{} Gbit/s at 64 B frames = {mpps:.1} Mpps", g.value))
            })
        });
    match line {
        Some((l, what)) if l < compute => FirstOrderEstimate {
            mpps: Some(l),
            basis: format!("bound: line rate {what} (compute would allow {compute_basis})"),
            bound: Some("line rate".into()),
        },
        Some((_, what)) => FirstOrderEstimate {
            mpps: Some(compute),
            basis: format!("bound: compute, {compute_basis} (line rate {what})"),
            bound: Some("compute".into()),
        },
        None => FirstOrderEstimate {
            mpps: Some(compute),
            basis: format!(
                "bound: compute, {compute_basis}; the profile has no line rate, so nothing caps it"
            ),
            bound: Some("compute".into()),
        },
    }
}

/// Prefix of a run directory being written: `.tmp-<pid>-<dir name>` in
/// the directory that will hold it.
pub const TMP_PREFIX: &str = ".tmp-";

/// Publishes a run: `report.json`, `junit.xml` and `summary.md` are
/// written and fsynced under `.tmp-<pid>-<name>` beside `dir`; then the run
/// is recorded in `history` (one SQLite transaction, committed); then the
/// directory is renamed to `dir` and the parent fsynced. So `dir` appears
/// only complete, and a crash leaves one of: nothing; a `.tmp-` directory
/// the history does not know (removed by the next run's [`clean_stray`]);
/// or a complete `.tmp-` directory the history knows (renamed into place
/// by [`clean_stray`]). Every error names the path it was about.
pub fn publish(report: &Report, dir: &Path, history: Option<&Path>) -> Result<()> {
    use anyhow::Context as _;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .with_context(|| format!("{}: not a directory name for a run", dir.display()))?
        .to_string_lossy()
        .into_owned();
    std::fs::create_dir_all(parent)
        .with_context(|| format!("creating results directory {}", parent.display()))?;
    if dir.symlink_metadata().is_ok() {
        anyhow::bail!("{} already exists; not overwriting another run", dir.display());
    }
    let tmp = parent.join(format!("{TMP_PREFIX}{}-{name}", std::process::id()));
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let files: [(&str, Vec<u8>); 3] = [
        ("report.json", serde_json::to_vec_pretty(report)?),
        ("junit.xml", report.junit().into_bytes()),
        ("summary.md", report.markdown().into_bytes()),
    ];
    let written = (|| -> Result<()> {
        for (file, bytes) in &files {
            let p = tmp.join(file);
            write_synced(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        }
        sync_dir(&tmp).with_context(|| format!("syncing {}", tmp.display()))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Some(h) = history {
        let recorded = History::open(h)
            .map_err(anyhow::Error::from)
            .and_then(|mut h| h.record(report).map_err(anyhow::Error::from));
        if let Err(e) = recorded {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.context(format!("recording run {} in {}", report.run.id, h.display())));
        }
    }
    // From here the history has the run: a failure leaves the complete
    // `.tmp-` directory for the next run to put in place.
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()))?;
    sync_dir(parent).with_context(|| format!("syncing {}", parent.display()))
}

/// Writes the three report files into `dir` (see [`publish`]), without a
/// history.
pub fn write(report: &Report, dir: &Path) -> Result<()> {
    publish(report, dir, None)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Whether process `pid` is alive (a `.tmp-` directory of a live run, e.g.
/// a shard running beside this one, is left alone).
fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
}

/// Cleans what a killed run left in `out`: `.tmp-<pid>-<name>` directories
/// (and files) whose process is gone are removed, unless `history` records
/// the run named `<name>`, in which case the directory is complete (see
/// [`publish`]) and is renamed into place. Also removes the temporary
/// files of an interrupted atomic write (`.<file>.tmp.<pid>`). Returns one
/// line describing what was done, or `None` when there was nothing.
pub fn clean_stray(out: &Path, history: Option<&Path>) -> Result<Option<String>> {
    use anyhow::Context as _;
    let Ok(rd) = std::fs::read_dir(out) else { return Ok(None) };
    let known = |id: &str| -> Result<bool> {
        match history.filter(|h| h.exists()) {
            Some(h) => Ok(History::open(h)?.has_run(id)?),
            None => Ok(false),
        }
    };
    let mut removed = Vec::new();
    let mut completed = Vec::new();
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let fname = e.file_name().to_string_lossy().into_owned();
        let (pid, rest) = if let Some(rest) = fname.strip_prefix(TMP_PREFIX) {
            match rest.split_once('-') {
                Some((pid, name)) => (pid.parse::<u32>().ok(), Some(name.to_string())),
                None => (None, None),
            }
        } else if fname.starts_with('.') && fname.contains(".tmp.") {
            (fname.rsplit('.').next().and_then(|p| p.parse::<u32>().ok()), None)
        } else {
            continue;
        };
        if pid.is_some_and(alive) {
            continue;
        }
        let path = e.path();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if let (true, Some(name)) = (is_dir, &rest) {
            let target = out.join(name);
            if target.symlink_metadata().is_err()
                && path.join("report.json").is_file()
                && known(name)?
            {
                std::fs::rename(&path, &target).with_context(|| {
                    format!("renaming {} to {}", path.display(), target.display())
                })?;
                completed.push(name.clone());
                continue;
            }
        }
        let r = if is_dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        r.with_context(|| format!("removing {}, left by a killed run", path.display()))?;
        removed.push(fname);
    }
    if removed.is_empty() && completed.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    if !removed.is_empty() {
        parts.push(format!("removed {}", removed.join(", ")));
    }
    if !completed.is_empty() {
        parts.push(format!(
            "completed {} (recorded in the history, not yet renamed)",
            completed.join(", ")
        ));
    }
    Ok(Some(format!("cleaned up after a killed run in {}: {}", out.display(), parts.join("; "))))
}
