//! The public-program corpus (issue 14 item 8): every code section of every
//! object in `../shared/public-xdp/objects/` (xdp-tutorial, xdp-tools,
//! katran, Netronome's bpf-samples and vbpf's prebuilt Linux samples,
//! prototype-kernel, Cilium and Suricata objects), run through
//! `xdpqual diff --backends vm,host` over the committed captures, with the
//! manifest's map fixtures where it gives them.
//!
//! Nobody tuned xdpqual for these programs. The test prints the counts per
//! source repository (programs loaded, packets compared, mismatches) and
//! holds every program to the status recorded in
//! `tests/data/public-xdp-status.tsv`: `agree` (both backends ran every
//! packet and agree on packets and maps), or a named shortfall with its
//! reason. A program whose status changes fails the test in either
//! direction: a regression, or a fix that must update the ledger (and so
//! shows up in review). Regenerate the ledger's status column with
//! `XDPQUAL_PUBLIC_LEDGER=write` and keep the reasons written by hand.
//!
//! When the shared data has no `objects/` folder, the test says so and
//! skips; `corpus/public/rebuild.sh` rebuilds it from source checkouts, and
//! `XDPQUAL_PUBLIC_XDP_OBJECTS=DIR` points the test at the result.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use xdpqual::loader::LoadOptions;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn shared() -> PathBuf {
    root().join("../shared/public-xdp")
}

fn ledger_path() -> PathBuf {
    root().join("cli/tests/data/public-xdp-status.tsv")
}

const CAPTURES: [&str; 2] = ["pcaps/mixed-2k.pcap", "pcaps/edges.pcap"];

/// One program's result.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    /// vm and host ran every packet and agree on packets and maps.
    Agree,
    /// Both ran and disagree (packets or maps).
    Mismatch,
    /// The host kernel's verifier refuses the program; the engine ran it.
    KernelRefuses,
    /// xdpqual could not load or run it.
    CannotRun,
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Status::Agree => "agree",
            Status::Mismatch => "mismatch",
            Status::KernelRefuses => "kernel-refuses",
            Status::CannotRun => "cannot-run",
        }
    }
}

struct Outcome {
    status: Status,
    packets: u64,
    mismatches: u64,
    detail: String,
}

/// Manifest rows: object -> (repository, kernel load column).
fn manifest() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(shared().join("MANIFEST.tsv")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5).then(|| (f[0].to_string(), (f[1].to_string(), f[4].to_string())))
        })
        .collect()
}

/// The XDP programs of an object, as `(section, needs --type xdp)`: the
/// sections the loader types as XDP, and the untyped ones (`xdp1`,
/// `xdp_prog`, ...) that `bpftool prog load ... type xdp` would load. Sections
/// of another type (tracepoints, tc) are not XDP programs and are left out;
/// an object the loader refuses outright is one entry with no section, and
/// its `diff` reports the loader's error.
fn xdp_sections(path: &Path) -> Vec<(String, bool)> {
    let opts = LoadOptions { list_unknown: true, ..Default::default() };
    match xdpqual::loader::inspect_object_with(path, &opts) {
        Err(_) => vec![(String::new(), true)],
        Ok(l) => {
            let mut v: Vec<(String, bool)> =
                l.object.programs.iter().map(|p| (p.section.clone(), false)).collect();
            v.extend(
                l.other_programs
                    .iter()
                    .filter(|o| o.kind == xdpqual::loader::sections::UNKNOWN_HINT)
                    .map(|o| (o.section.clone(), true)),
            );
            v.sort();
            v.dedup();
            v
        }
    }
}

/// `--map NAME=FILE` arguments from `maps/<stem>.args`, when the manifest
/// gives realistic contents for the object (`../shared/public-xdp/maps/`),
/// or this repository does (`corpus/public/maps/`: Katran's VIP and reals,
/// a `--fib=FILE` line for the programs that call bpf_fib_lookup, and
/// `--map-size=NAME=N` lines for maps their project sizes at run time).
fn map_args(object: &str) -> Vec<String> {
    let Some((maps, pairs)) = common::public_args::public_args(object) else { return Vec::new() };
    pairs
        .into_iter()
        .flat_map(|(m, f)| match m.as_str() {
            // A forwarding table for bpf_fib_lookup (xdp-forward, the
            // tutorial's router, Cilium's NAT tails): `--fib=FILE`.
            "--fib" => ["--fib".to_string(), maps.join(f).display().to_string()],
            // `--map-size=NAME=N`: max_entries the project's loader sets
            // at run time (xdp-tools' xdp_sample maps are built with 0).
            "--map-size" => ["--map-size".to_string(), f],
            _ => ["--map".to_string(), format!("{m}={}", maps.join(f).display())],
        })
        .collect()
}

fn run(object: &Path, section: &str, type_xdp: bool, maps: &[String]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xdpqual"));
    cmd.current_dir(root()).args(["diff", "--backends", "vm,host", "--format", "json"]).args(maps);
    if type_xdp {
        cmd.args(["--type", "xdp"]);
    }
    if section.is_empty() {
        cmd.arg(object);
    } else {
        cmd.arg(format!("{}:{section}", object.display()));
    }
    cmd.args(CAPTURES);
    let o = cmd.stdin(Stdio::null()).output().expect("run xdpqual");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let last_error =
        stderr.lines().rev().find(|l| l.contains("error")).unwrap_or("").trim().to_string();
    let Ok(j) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
        return Outcome {
            status: Status::CannotRun,
            packets: 0,
            mismatches: 0,
            detail: last_error,
        };
    };
    let n = |k: &str| j[k].as_u64().unwrap_or(0);
    let host_rejected =
        j["skipped"].as_array().is_some_and(|s| s.iter().any(|b| b["backend"] == "host"));
    let maps_differ = j["map_mismatches"].as_array().is_some_and(|m| !m.is_empty());
    let status = match o.status.code() {
        Some(0) => Status::Agree,
        Some(1) => Status::Mismatch,
        _ if host_rejected => Status::KernelRefuses,
        _ => Status::CannotRun,
    };
    let detail = match status {
        Status::KernelRefuses => j["skipped"][0]["reason"].as_str().unwrap_or("").to_string(),
        Status::Mismatch if maps_differ && n("mismatch_count") == 0 => "maps differ".into(),
        _ => last_error,
    };
    Outcome { status, packets: n("packets"), mismatches: n("mismatch_count"), detail }
}

/// The ledger: `object:section` -> (status, reason).
fn read_ledger() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(ledger_path()).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            (f.len() == 3).then(|| (f[0].to_string(), (f[1].to_string(), f[2].to_string())))
        })
        .collect()
}

#[test]
fn public_programs_load_and_agree_with_the_kernel() {
    let dir = std::env::var_os("XDPQUAL_PUBLIC_XDP_OBJECTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("objects"));
    if !dir.is_dir() {
        xdpqual::util::skip(format_args!(
            "public corpus: {} does not exist (this machine's shared data holds the manifest, \
             map fixtures and licences only); rebuild the objects with corpus/public/rebuild.sh \
             and set XDPQUAL_PUBLIC_XDP_OBJECTS",
            dir.display()
        ));
        return;
    }
    if xdpqual::backends::host::HostBackend::open().is_err() {
        xdpqual::util::skip(format_args!("public corpus: the host kernel backend is unavailable"));
        return;
    }
    let manifest = manifest();
    let mut objects: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    objects.sort();
    assert!(!objects.is_empty(), "{} holds no objects", dir.display());

    let jobs: Vec<(PathBuf, String, bool)> = objects
        .iter()
        .flat_map(|o| xdp_sections(o).into_iter().map(move |(s, t)| (o.clone(), s, t)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((obj, sec, type_xdp)) = jobs.get(i) else { break };
                let name = obj.file_name().unwrap().to_string_lossy().to_string();
                let outcome = run(obj, sec, *type_xdp, &map_args(&name));
                results.lock().unwrap().insert(format!("{name}:{sec}"), outcome);
            });
        }
    });
    let results = results.into_inner().unwrap();

    // Counts per source repository.
    let mut per_repo: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    for (key, o) in &results {
        let object = key.split(':').next().unwrap();
        let repo = manifest.get(object).map(|m| m.0.clone()).unwrap_or_else(|| "?".into());
        let c = per_repo.entry(repo).or_default();
        c[0] += 1;
        c[1] += u64::from(o.status != Status::CannotRun);
        c[2] += u64::from(matches!(o.status, Status::Agree | Status::Mismatch));
        c[3] += if matches!(o.status, Status::Agree | Status::Mismatch) { o.packets } else { 0 };
        c[4] += o.mismatches;
    }
    for (repo, c) in &per_repo {
        xdpqual::util::count(format_args!(
            "public corpus {repo}: {} programs, {} loaded by xdpqual, {} compared with the kernel, \
             {} packets compared, {} packet mismatches",
            c[0], c[1], c[2], c[3], c[4]
        ));
    }

    if std::env::var("XDPQUAL_PUBLIC_LEDGER").as_deref() == Ok("write") {
        let old = read_ledger();
        let mut out = String::from(
            "# Public XDP programs that do not (yet) agree with the kernel, and why. \
             tests/public_corpus.rs\n# fails when a program's status changes in either \
             direction. Reasons are written by hand.\n# program\tstatus\treason\n",
        );
        for (key, o) in &results {
            if o.status == Status::Agree {
                continue;
            }
            let reason = old
                .get(key)
                .filter(|(s, _)| s == o.status.name())
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| format!("TODO: {}", o.detail.replace('\t', " ")));
            out.push_str(&format!("{key}\t{}\t{reason}\n", o.status.name()));
        }
        std::fs::write(ledger_path(), out).unwrap();
        return;
    }

    let ledger = read_ledger();
    let mut problems = Vec::new();
    for (key, o) in &results {
        let want = ledger.get(key).map(|(s, _)| s.as_str()).unwrap_or("agree");
        if want != o.status.name() {
            problems.push(format!(
                "{key}: ledger says {want}, now {} ({})",
                o.status.name(),
                if o.detail.is_empty() { "-" } else { &o.detail }
            ));
        }
    }
    for key in ledger.keys().filter(|k| !results.contains_key(*k)) {
        problems.push(format!("{key}: in the ledger but not in {}", dir.display()));
    }
    assert!(
        problems.is_empty(),
        "{} programs differ from the ledger:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
