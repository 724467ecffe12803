//! `xdpqual bench`: what one packet costs on each backend, measured in one
//! run so the figures are comparable.
//!
//! Every backend runs the same packets (the first `packets` of a capture,
//! held in memory so the capture reader is not measured) for `rounds`
//! rounds after one warm-up round. A round's figure is its nanoseconds per
//! packet; a row reports the median and the 10th/90th percentiles over
//! rounds, packets per second at the median, and — using the engine's
//! instruction count, the one count every backend shares — instructions per
//! packet and nanoseconds per instruction. The headline is each row's
//! median against the kernel's in-kernel figure (`BPF_PROG_TEST_RUN` with
//! `repeat`, which the kernel times itself) from the same run.
//!
//! Rows ([`BackendId`]):
//! - `engine-interp` and `engine-jit`: our interpreter and Cranelift JIT
//!   ([`EngineMode`]; a program the JIT cannot compile skips its row);
//! - `rbpf-interp`, `rbpf-jit`: rbpf, where the program is eligible;
//! - `kernel-syscall`: `BPF_PROG_TEST_RUN` once per packet, what a replay
//!   on the host costs, timed from user space around the call;
//! - `kernel-reported`: the same calls, the kernel's own duration;
//! - `kernel-in-kernel`: `repeat` runs per call, the kernel's average;
//! - `kernel-live`: `BPF_F_TEST_XDP_LIVE_FRAMES`, frames going on through
//!   the real datapath afterwards (so XDP_PASS frames enter loopback's
//!   stack and XDP_TX frames are sent on it);
//! - `nic-model`: the NIC model's estimate.
//!
//! Every bench also runs the built-in floor program (`r0 = XDP_PASS; exit`,
//! [`builtin`]) on the same rows and packets, and records it as `floor`:
//! what each backend costs per run before a program does any work.
//!
//! Rows that cannot run say why. No figure is asserted anywhere: timings
//! are reported, never tested.

pub mod builtin;
pub mod measure;
pub mod render;
pub mod stats;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::capture::CaptureReader;
use crate::program::{Object, Program};
pub use stats::Spread;

/// How the engine executes a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineMode {
    Interp,
    Jit,
}

/// One row of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendId {
    Engine(EngineMode),
    RbpfInterp,
    RbpfJit,
    KernelSyscall,
    KernelReported,
    KernelInKernel,
    KernelLive,
    NicModel,
}

impl PartialOrd for EngineMode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for EngineMode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}

impl BackendId {
    pub const ALL: [BackendId; 9] = [
        BackendId::Engine(EngineMode::Interp),
        BackendId::Engine(EngineMode::Jit),
        BackendId::RbpfInterp,
        BackendId::RbpfJit,
        BackendId::KernelSyscall,
        BackendId::KernelReported,
        BackendId::KernelInKernel,
        BackendId::KernelLive,
        BackendId::NicModel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendId::Engine(EngineMode::Interp) => "engine-interp",
            BackendId::Engine(EngineMode::Jit) => "engine-jit",
            BackendId::RbpfInterp => "rbpf-interp",
            BackendId::RbpfJit => "rbpf-jit",
            BackendId::KernelSyscall => "kernel-syscall",
            BackendId::KernelReported => "kernel-reported",
            BackendId::KernelInKernel => "kernel-in-kernel",
            BackendId::KernelLive => "kernel-live",
            BackendId::NicModel => "nic-model",
        }
    }

    /// Parses a row name, or a group: `engine`, `rbpf`, `kernel`.
    pub fn parse_list(s: &str) -> Result<Vec<BackendId>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let matched: Vec<BackendId> = BackendId::ALL
                .into_iter()
                .filter(|b| b.name() == part || b.name().split('-').next() == Some(part))
                .collect();
            if matched.is_empty() {
                let known: Vec<&str> = BackendId::ALL.iter().map(|b| b.name()).collect();
                return Err(format!(
                    "unknown backend '{part}' (known: {}, or a group: engine, rbpf, kernel, nic)",
                    known.join(", ")
                ));
            }
            for m in matched {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The rows `--backends` selects, and the offload profile of the NIC row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub rows: Vec<BackendId>,
    /// `nic:PROFILE`; `None` leaves the default ([`DEFAULT_NIC_PROFILE`]).
    pub nic_profile: Option<String>,
}

/// The NIC row's profile when none is named.
pub const DEFAULT_NIC_PROFILE: &str = "nfp-corenic";

impl Selection {
    /// Parses `--backends`: the row names and groups of [`BackendId::parse_list`],
    /// and the backend specs `diff` takes, so one list works for both: `vm`
    /// (the engine rows), `host` (the kernel rows), `rbpf`, and
    /// `nic:PROFILE` (the NIC model's row on that profile). `live:IFACE:MODE`
    /// is refused with the reason: bench times live frames through the
    /// kernel's test-run (`kernel-live`) and attaches to no interface.
    pub fn parse(s: &str) -> Result<Selection, String> {
        let mut names = Vec::new();
        let mut nic_profile: Option<String> = None;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(profile) = part.strip_prefix("nic:") {
                if profile.is_empty() {
                    return Err("'nic:' names no offload profile (nic:PROFILE)".into());
                }
                match &nic_profile {
                    Some(p) if p != profile => {
                        return Err(format!(
                            "one NIC profile per bench run ('{p}' and '{profile}'); run bench once per profile"
                        ))
                    }
                    _ => nic_profile = Some(profile.to_string()),
                }
                names.push("nic-model");
            } else if part.starts_with("live:") {
                return Err(format!(
                    "'{part}': bench does not attach to interfaces; it times live frames through the kernel's test-run (row kernel-live)"
                ));
            } else {
                names.push(match part {
                    "vm" => "engine",
                    "host" => "kernel",
                    other => other,
                });
            }
        }
        Ok(Selection { rows: BackendId::parse_list(&names.join(","))?, nic_profile })
    }
}

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Row", 3)?;
        st.serialize_field("backend", self.backend.name())?;
        match &self.outcome {
            Outcome::Measured(m) => st.serialize_field("measured", m)?,
            Outcome::Skipped(r) => st.serialize_field("skipped", r)?,
        }
        st.end()
    }
}

/// Bench settings.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub backends: Vec<BackendId>,
    /// Measured rounds (after one warm-up round).
    pub rounds: usize,
    /// Runs per `BPF_PROG_TEST_RUN` call for the in-kernel and live rows.
    pub repeat: u32,
    /// Packets (an even stride through the set) for the in-kernel and live
    /// rows: each of their calls costs two RCU grace periods (see
    /// [`measure::HostRows`]), so they cannot take every packet.
    pub kernel_sample: usize,
    /// Packets taken from the start of the capture.
    pub packets: usize,
    /// The offload profile of the NIC model's row.
    pub nic_profile: String,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            backends: BackendId::ALL.to_vec(),
            rounds: 10,
            repeat: 10_000,
            packets: 10_000,
            kernel_sample: 32,
            nic_profile: DEFAULT_NIC_PROFILE.to_string(),
        }
    }
}

/// One backend's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// Packets per round (a backend may refuse some frames; see `note`).
    pub packets: usize,
    pub ns_per_packet: Spread,
    /// At the median.
    pub packets_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insns_per_packet: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_per_insn: Option<f64>,
    /// Median ns/packet over the kernel's in-kernel median, same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_kernel_in_kernel: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Measured(Measured),
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct Row {
    pub backend: BackendId,
    pub outcome: Outcome,
}

/// The whole bench, as written to `results/bench-<timestamp>-<program>.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub schema: &'static str,
    pub program: String,
    pub object: String,
    pub capture: String,
    pub packets: usize,
    pub rounds: usize,
    pub repeat: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    pub host: String,
    pub rows: Vec<Row>,
    /// The same rows for the built-in floor program ([`builtin::FLOOR`]),
    /// same packets, same run; empty when the program measured is the
    /// floor itself.
    pub floor: Vec<Row>,
}

/// Reads the first `limit` packets of a capture into memory.
pub fn load_packets(path: &Path, limit: usize) -> Result<Vec<Vec<u8>>> {
    let reader =
        CaptureReader::open(path).with_context(|| format!("opening capture {}", path.display()))?;
    let mut out = Vec::new();
    for item in reader.take(limit) {
        out.push(item.with_context(|| format!("reading capture {}", path.display()))?.data);
    }
    if out.is_empty() {
        anyhow::bail!("capture {} holds no packets to measure with", path.display());
    }
    Ok(out)
}

/// Runs every selected row over `packets`, then the same rows for the
/// built-in floor program.
pub fn run(
    obj: &Object,
    program: &Program,
    capture: &Path,
    packets: &[Vec<u8>],
    opts: &BenchOptions,
) -> Result<BenchReport> {
    let (rows, kernel) = rows_for(obj, program, packets, opts);
    let floor = if obj.path.to_str() == Some("builtin:floor") {
        Vec::new()
    } else {
        let fobj = builtin::object("floor").map_err(|e| anyhow::anyhow!(e))?;
        rows_for(&fobj, &fobj.programs[0], packets, opts).0
    };
    Ok(BenchReport {
        schema: "xdpqual.bench/2",
        program: program.name.clone(),
        object: obj.path.display().to_string(),
        capture: capture.display().to_string(),
        packets: packets.len(),
        rounds: opts.rounds,
        repeat: opts.repeat,
        kernel,
        host: host_description(),
        rows,
        floor,
    })
}

/// Every selected row for one program, and the kernel's release when the
/// host kernel could load it.
fn rows_for(
    obj: &Object,
    program: &Program,
    packets: &[Vec<u8>],
    opts: &BenchOptions,
) -> (Vec<Row>, Option<String>) {
    let mut rows = Vec::new();
    let mut insns_per_packet = None;
    let mut kernel = None;
    let wants_host = opts.backends.iter().any(|b| {
        matches!(
            b,
            BackendId::KernelSyscall
                | BackendId::KernelReported
                | BackendId::KernelInKernel
                | BackendId::KernelLive
        )
    });
    let host = if wants_host {
        measure::HostRows::open(obj, program)
    } else {
        Err("no kernel row was asked for".to_string())
    };
    if let Ok(h) = &host {
        kernel = Some(h.kernel_release().to_string());
    }
    let bar = crate::util::progress::steps("bench rows", opts.backends.len() as u64);
    for &b in &opts.backends {
        bar.set_message(format!("{}: {}", program.name, b.name()));
        let outcome = match b {
            BackendId::Engine(mode) => {
                measure::engine(obj, program, mode, packets, opts).map(|(m, ipp)| {
                    insns_per_packet = Some(ipp);
                    m
                })
            }
            BackendId::RbpfInterp => measure::rbpf(program, packets, opts, false),
            BackendId::RbpfJit => measure::rbpf(program, packets, opts, true),
            BackendId::KernelSyscall
            | BackendId::KernelReported
            | BackendId::KernelInKernel
            | BackendId::KernelLive => match &host {
                Ok(h) => h.measure(b, packets, opts),
                Err(why) => Err(why.clone()),
            },
            BackendId::NicModel => measure::nic_model(obj, program, packets, &opts.nic_profile),
        };
        rows.push(Row {
            backend: b,
            outcome: outcome.map_or_else(Outcome::Skipped, Outcome::Measured),
        });
        bar.inc(1);
    }
    drop(bar);
    // Engine-interp counts instructions even when its row was not asked for.
    if insns_per_packet.is_none() {
        insns_per_packet = measure::engine_insns(obj, program, packets);
    }
    // A program that changes frames makes the in-kernel row time other
    // work (`measure::frames_changed`): it says so, and no row is given a
    // ratio to it.
    let changed = rows
        .iter()
        .any(|r| {
            r.backend == BackendId::KernelInKernel && matches!(r.outcome, Outcome::Measured(_))
        })
        .then(|| measure::frames_changed(obj, program, packets))
        .flatten()
        .filter(|&n| n > 0);
    if let Some(n) = changed {
        for r in &mut rows {
            if let (BackendId::KernelInKernel, Outcome::Measured(m)) = (&r.backend, &mut r.outcome)
            {
                let why = format!(
                    "not a reference: the program changes {n} of the {} frames, and the kernel repeats each run on the frame the previous run left (net/bpf/test_run.c), so this times other work than one run per packet",
                    packets.len()
                );
                m.note = Some(match m.note.take() {
                    Some(old) => format!("{old}; {why}"),
                    None => why,
                });
            }
        }
    }
    let kernel_median = rows.iter().find_map(|r| match (&r.backend, &r.outcome) {
        (BackendId::KernelInKernel, Outcome::Measured(m)) if changed.is_none() => {
            Some(m.ns_per_packet.median)
        }
        _ => None,
    });
    for r in &mut rows {
        // The engine's count is not what the kernel repeated then.
        if changed.is_some() && r.backend == BackendId::KernelInKernel {
            continue;
        }
        if let Outcome::Measured(m) = &mut r.outcome {
            m.insns_per_packet = insns_per_packet;
            m.ns_per_insn =
                insns_per_packet.filter(|i| *i > 0.0).map(|i| m.ns_per_packet.median / i);
            m.vs_kernel_in_kernel =
                kernel_median.filter(|k| *k > 0.0).map(|k| m.ns_per_packet.median / k);
        }
    }
    (rows, kernel)
}

fn host_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

/// `bench-<UTC timestamp>-<program>.json` under `dir`, with `-2`, `-3`, ...
/// added when that name is taken: a bench of several programs finishes
/// within one second, and no run may overwrite another's results.
pub fn result_path(dir: &Path, now: std::time::SystemTime, program: &str) -> PathBuf {
    let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Keep the name a plain file name whatever the program is called.
    let tag: String = program
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .take(64)
        .collect();
    let base = format!("bench-{}-{tag}", utc_stamp(secs));
    let mut path = dir.join(format!("{base}.json"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{base}-{n}.json"));
        n += 1;
    }
    path
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch (civil-from-days, Howard
/// Hinnant's algorithm for the proleptic Gregorian calendar).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        // 2000-02-29 12:34:56 UTC = 951827696 (a leap day).
        assert_eq!(utc_stamp(951_827_696), "20000229T123456Z");
    }

    #[test]
    fn result_paths_never_collide() {
        let dir = std::env::temp_dir().join(format!("xdpqual-bench-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_827_696);
        let first = result_path(&dir, t, "xdp/fw 1");
        assert_eq!(first.file_name().unwrap(), "bench-20000229T123456Z-xdp_fw_1.json");
        std::fs::write(&first, b"{}").unwrap();
        let second = result_path(&dir, t, "xdp/fw 1");
        assert_eq!(second.file_name().unwrap(), "bench-20000229T123456Z-xdp_fw_1-2.json");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn backend_lists() {
        assert_eq!(
            BackendId::parse_list("rbpf").unwrap(),
            vec![BackendId::RbpfInterp, BackendId::RbpfJit]
        );
        assert_eq!(
            BackendId::parse_list("kernel-in-kernel,engine-interp").unwrap(),
            vec![BackendId::Engine(EngineMode::Interp), BackendId::KernelInKernel]
        );
        assert!(BackendId::parse_list("gpu").unwrap_err().contains("unknown backend 'gpu'"));
    }

    #[test]
    fn selection_takes_the_specs_diff_takes() {
        let s = Selection::parse("vm,nic:hxdp").unwrap();
        assert_eq!(
            s.rows,
            vec![
                BackendId::Engine(EngineMode::Interp),
                BackendId::Engine(EngineMode::Jit),
                BackendId::NicModel
            ]
        );
        assert_eq!(s.nic_profile.as_deref(), Some("hxdp"));
        let s = Selection::parse("host,rbpf-jit").unwrap();
        assert_eq!(s.nic_profile, None);
        assert!(
            s.rows.contains(&BackendId::KernelInKernel) && s.rows.contains(&BackendId::RbpfJit)
        );
        assert!(!s.rows.contains(&BackendId::RbpfInterp));
        assert!(Selection::parse("live:veth0:skb").unwrap_err().contains("kernel-live"));
        assert!(Selection::parse("nic:hxdp,nic:netdevsim")
            .unwrap_err()
            .contains("one NIC profile"));
        assert!(Selection::parse("nic:").is_err());
        assert!(Selection::parse("gpu").unwrap_err().contains("unknown backend 'gpu'"));
    }
}
