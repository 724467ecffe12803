//! The qualify gates that need no kernel: verdict expectations (counts and
//! per-packet lists), performance budgets, programs built from C, and the
//! history with baseline/compare.
//!
//! Every expectation here is worked out from the program's source:
//! corpus/counters.c returns XDP_PASS on every path, and a frame shorter
//! than an Ethernet header (14 bytes) is not run (BPF_PROG_TEST_RUN refuses
//! it with EINVAL; the engine reports NOT_RUN the same way).

use std::path::{Path, PathBuf};
use std::process::Command;

use xdpqual::capture::{PcapFileWriter, TsPrecision};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-gates-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn xdpqual(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run xdpqual");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Three frames: a 10-byte runt (not run), then two 60-byte IPv4 frames.
fn tiny_capture(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.pcap");
    let mut w = PcapFileWriter::create(&p, TsPrecision::Microsecond).unwrap();
    w.write(1_000, &[0xff; 10]).unwrap();
    let mut f = vec![0u8; 60];
    f[12] = 0x08; // EtherType IPv4
    f[14] = 0x45;
    w.write(2_000, &f).unwrap();
    w.write(3_000, &f).unwrap();
    w.finish().unwrap();
    p
}

fn config(dir: &Path, body: &str) -> PathBuf {
    let r = root();
    let text = format!(
        "captures = [\"{}\", \"tiny.pcap\"]\ncells = [\"vm\"]\n{body}",
        r.join("pcaps/firewall-2k.pcap").display()
    )
    .replace("@ROOT@", &r.display().to_string());
    let p = dir.join("xdpqual.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn only_run(out: &Path) -> PathBuf {
    let runs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("report.json").exists())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn expectations_pass_when_right_and_fail_first_when_wrong() {
    let dir = tempdir("expect");
    tiny_capture(&dir);
    let cfg = config(
        &dir,
        "[[program]]\nobject = \"@ROOT@/corpus/build/counters.v3.o\"\nexpect = { \"firewall-2k.pcap\" = { PASS = 2000 }, \"tiny.pcap\" = { pass = 2, NOT_RUN = 1, verdicts = \"NPP\" } }\n\
         [[program]]\nobject = \"@ROOT@/corpus/build/counters.v2.o\"\nexpect = { \"firewall-2k.pcap\" = { DROP = 2000 }, \"tiny.pcap\" = { verdicts = [\"PASS\", \"PASS\", \"PASS\"] } }\n",
    );
    let out = dir.join("out");
    let (code, stdout, stderr) = xdpqual(&[
        "qualify",
        "--no-history",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let run = only_run(&out);
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(md.starts_with("## xdpqual: 2 check(s) FAILED"), "{md}");
    let items: Vec<&str> = md.lines().filter(|l| l.starts_with("- ")).collect();
    assert!(
        items[0].contains("counters.v2.o")
            && items[0].contains("DROP expected 2000, got 0")
            && items[0].contains("PASS expected 0, got 2000"),
        "{md}"
    );
    assert!(
        items[1].contains("tiny.pcap")
            && items[1].contains("packet 0 expected PASS, got NOT\\_RUN"),
        "{md}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let v3: Vec<_> = checks
        .iter()
        .filter(|c| c["program"].as_str().unwrap().ends_with("counters.v3.o"))
        .collect();
    assert_eq!(v3.len(), 2);
    assert!(
        v3.iter().all(|c| c["status"] == "pass" && c["check"] == "expected verdicts"),
        "{v3:?}"
    );
    // The per-packet difference is kept for the dashboard.
    let pk = report["packets"].as_array().unwrap();
    assert_eq!(pk.len(), 1, "{pk:?}");
    assert_eq!(pk[0]["index"], 0);
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    let first = junit.lines().find(|l| l.contains("<testcase")).unwrap();
    assert!(first.contains("counters.v2.o") && first.contains("<failure"), "{first}");
}

#[test]
fn an_impossible_time_budget_fails_and_perf_is_recorded() {
    let dir = tempdir("budget");
    tiny_capture(&dir);
    // No engine runs a packet in a picosecond: this budget must fail.
    let cfg = config(&dir, "[perf]\nrounds = 1\n[[program]]\nobject = \"@ROOT@/corpus/build/counters.v3.o\"\nbudget = { max_ns_per_packet = 0.001 }\n");
    let out = dir.join("out");
    let hist = dir.join("h.sqlite");
    let (code, stdout, _) = xdpqual(&[
        "qualify",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("perf: at most 0.001 ns/packet"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(only_run(&out).join("report.json")).unwrap())
            .unwrap();
    let perf = report["perf"].as_array().unwrap();
    assert_eq!(perf.len(), 2, "one sample per capture");
    for p in perf {
        assert!(
            p["median_ns"].as_f64().unwrap() > 0.0 && p["ref_median_ns"].as_f64().unwrap() > 0.0,
            "{p}"
        );
        assert_eq!(
            p["packets"],
            if p["capture"].as_str().unwrap().ends_with("tiny.pcap") { 3 } else { 2000 }
        );
    }
    // The run is in the history; a baseline can be set and compared.
    let h = hist.to_str().unwrap();
    let (code, stdout, stderr) = xdpqual(&["baseline", "set", "latest", "--history", h]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, _) = xdpqual(&["compare", "latest", "--history", h]);
    assert_eq!(code, 0, "a run compared with itself has nothing worse: {stdout}");
    assert!(
        stdout.contains("0 new failure(s), 0 fixed, 0 perf regression(s) of 2 measurements"),
        "{stdout}"
    );
    let (code, _, stderr) = xdpqual(&["compare", "nosuchrun", "--history", h]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no run 'nosuchrun'"), "{stderr}");
}

#[test]
fn c_sources_are_built_with_their_flags() {
    let have = |p: &str| Path::new(p).exists();
    if !have("/usr/bin/clang-19") || !have("/usr/include/bpf/bpf_helpers.h") {
        xdpqual::util::skip(format_args!(
            "needs clang-19 and libbpf-dev (optional packages of ci/setup.sh)"
        ));
        return;
    }
    let dir = tempdir("csrc");
    tiny_capture(&dir);
    let multiarch = String::from_utf8(
        Command::new("gcc").arg("-print-multiarch").output().map(|o| o.stdout).unwrap_or_default(),
    )
    .unwrap_or_default();
    let body = format!(
        "[[program]]\nsource = \"@ROOT@/corpus/counters.c\"\ncflags = [\"-mcpu=v3\", \"-I/usr/include/{}\"]\nexpect = {{ \"tiny.pcap\" = {{ verdicts = \"NPP\" }} }}\n\
         [[program]]\nsource = \"@ROOT@/corpus/counters.c\"\ncflags = [\"-DNO_SUCH_HEADER\", \"-include\", \"no/such/header.h\"]\n",
        multiarch.trim()
    );
    let cfg = config(&dir, &body);
    let out = dir.join("out");
    let (code, stdout, stderr) = xdpqual(&[
        "qualify",
        "--no-history",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(only_run(&out).join("report.json")).unwrap())
            .unwrap();
    let checks = report["checks"].as_array().unwrap();
    // The good build passes its per-packet expectation on tiny.pcap ...
    assert!(
        checks.iter().any(|c| c["check"] == "expected verdicts" && c["status"] == "pass"),
        "{checks:?}"
    );
    // ... and the bad one fails to load, with the compiler's error.
    let bad: Vec<_> = checks.iter().filter(|c| c["check"] == "load").collect();
    assert_eq!(bad.len(), 2, "one per unit of the broken build: {checks:?}");
    assert!(bad[0]["reason"].as_str().unwrap().contains("no/such/header.h"), "{bad:?}");
}

/// The first recorded `qualify` on a history without a baseline makes that
/// run the baseline, says so in one line, and its regression gates pass as
/// the reference instead of skipping; the next run is compared with it.
#[test]
fn the_first_run_becomes_the_baseline() {
    let dir = tempdir("firstbase");
    tiny_capture(&dir);
    // 1000%: the second run's comparison is asserted to happen, not its
    // result (no timing assertions).
    let cfg = config(
        &dir,
        "[perf]\nrounds = 1\n[[program]]\nobject = \"@ROOT@/corpus/build/counters.v3.o\"\nbudget = { max_regression_pct = 1000.0 }\n",
    );
    let out = dir.join("out");
    let hist = dir.join("h.sqlite");
    let args = [
        "qualify",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = xdpqual(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let first = only_run(&out);
    let id = first.file_name().unwrap().to_str().unwrap().to_string();
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("first run")).collect();
    assert_eq!(
        lines,
        [format!(
            "first run: no baseline 'default' in {} yet, so this run ({id}) is now baseline 'default'; later runs are compared with it (`xdpqual baseline set RUN` picks another)",
            hist.display()
        )],
        "{stdout}"
    );
    // One vm check (no expectations: none) + one regression gate per capture.
    assert!(stdout.contains(" 0 skipped"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("report.json")).unwrap()).unwrap();
    let gates: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with("perf: at most 1000% slower"))
        .collect();
    assert_eq!(gates.len(), 2, "one per capture");
    for g in &gates {
        assert_eq!(g["status"], "pass", "{g}");
        assert!(g["detail"].as_str().unwrap().starts_with("first run: no baseline 'default' yet"));
    }
    let (code, stdout, _) = xdpqual(&["baseline", "list", "--history", hist.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("baseline default: {id}")), "{stdout}");

    // The second run is compared with the first, and changes no baseline.
    let (code, stdout, stderr) = xdpqual(&args);
    assert!(code == 0 || code == 1, "{stdout}{stderr}");
    assert!(!stdout.contains("first run"), "{stdout}");
    let second = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("report.json").exists() && *p != first)
        .expect("a second run directory");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(second.join("report.json")).unwrap()).unwrap();
    for g in report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with("perf: at most 1000% slower"))
    {
        assert_ne!(g["status"], "skipped", "{g}");
        let text = g["detail"].as_str().or(g["reason"].as_str()).unwrap();
        assert!(text.contains(&format!("against run {id}")), "{text}");
    }
    let (_, stdout, _) = xdpqual(&["baseline", "list", "--history", hist.to_str().unwrap()]);
    assert!(stdout.contains(&format!("baseline default: {id}")), "{stdout}");
}

/// The same for a sharded first run: the shards' regression gates pass as
/// the reference, and `merge`, which records the run, makes it the baseline
/// and says so in one line.
#[test]
fn a_sharded_first_run_becomes_the_baseline_at_the_merge() {
    let dir = tempdir("firstshard");
    tiny_capture(&dir);
    let cfg = config(
        &dir,
        "[perf]\nrounds = 1\n[[program]]\nobject = \"@ROOT@/corpus/build/counters.v3.o\"\nbudget = { max_regression_pct = 1000.0 }\n[[program]]\nobject = \"@ROOT@/corpus/build/reflector.v3.o\"\nbudget = { max_regression_pct = 1000.0 }\n",
    );
    let hist = dir.join("h.sqlite");
    for i in 1..=2 {
        let out = dir.join(format!("shard-{i}"));
        let (code, stdout, stderr) = xdpqual(&[
            "qualify",
            "--quiet",
            "--config",
            cfg.to_str().unwrap(),
            "--shard",
            &format!("{i}/2"),
            "--out",
            out.to_str().unwrap(),
            "--history",
            hist.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains(" 0 skipped"), "{stdout}");
        assert!(!stdout.contains("first run: no baseline 'default' in"), "shards record nothing");
    }
    let merged = dir.join("merged");
    let (code, stdout, stderr) = xdpqual(&[
        "merge",
        dir.join("shard-1").to_str().unwrap(),
        dir.join("shard-2").to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let run = only_run(&merged);
    let id = run.file_name().unwrap().to_str().unwrap().to_string();
    assert!(stdout.contains(" 0 skipped"), "{stdout}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("first run:")).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].contains(&format!("so this run ({id}) is now baseline 'default'")),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let gates: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with("perf: at most 1000% slower"))
        .collect();
    assert_eq!(gates.len(), 4, "one per program and capture");
    for g in &gates {
        assert_eq!(g["status"], "pass", "{g}");
    }
    let (code, stdout, _) = xdpqual(&["baseline", "list", "--history", hist.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("baseline default: {id}")), "{stdout}");
}
