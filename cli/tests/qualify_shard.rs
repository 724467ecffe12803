//! `qualify --shard I/N` and `merge`: the shards together do exactly the
//! unsharded run's work, and the merged report is the unsharded report.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
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

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpqual-shard-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_dir(out: &Path) -> PathBuf {
    let runs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("report.json").exists())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn shards_merge_into_the_unsharded_report() {
    let dir = tempdir("merge");
    let r = root();
    // Mixed units: engine and kernel cells on two captures, an offload cell,
    // and a program that fails (expectation), so failures must stay first.
    let cfg = dir.join("xdpqual.toml");
    std::fs::write(
        &cfg,
        format!(
            "captures = [\"{r}/pcaps/firewall-2k.pcap\", \"{r}/pcaps/mixed-2k.pcap\"]\n\
             [[program]]\nobject = \"{r}/corpus/build/firewall.v3.o\"\noffload = {{ \"netdevsim\" = false }}\n\
             [[program]]\nobject = \"{r}/corpus/build/counters.v3.o\"\nexpect = {{ \"mixed-2k.pcap\" = {{ DROP = 1 }} }}\n\
             [[program]]\nobject = \"{r}/corpus/build/reflector.v3.o\"\ncells = [\"vm\"]\n",
            r = r.display()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let hist = dir.join("h.sqlite");
    let h = hist.to_str().unwrap();
    let whole = dir.join("whole");
    let (code, stdout, _) = xdpqual(&[
        "qualify",
        "--quiet",
        "--config",
        c,
        "--out",
        whole.to_str().unwrap(),
        "--history",
        h,
    ]);
    assert_eq!(code, 1, "the counters expectation fails: {stdout}");
    let whole = run_dir(&whole);
    // The history now has unit costs: shards balance by them.
    let mut shard_dirs = Vec::new();
    let mut units = Vec::new();
    for i in 1..=3 {
        let out = dir.join(format!("shard{i}"));
        let (code, stdout, stderr) = xdpqual(&[
            "qualify",
            "--quiet",
            "--config",
            c,
            "--out",
            out.to_str().unwrap(),
            "--history",
            h,
            "--shard",
            &format!("{i}/3"),
        ]);
        assert!(code == 0 || code == 1, "{stdout}{stderr}");
        let rep = json(&run_dir(&out).join("report.json"));
        let s = &rep["run"]["shard"];
        assert_eq!(s["total_units"], 11, "3 programs: 2x2 + 1 offload, 2x2, 2x1");
        units.extend(s["units"].as_array().unwrap().iter().map(|u| u.as_u64().unwrap()));
        shard_dirs.push(out);
    }
    units.sort();
    assert_eq!(units, (0..11).collect::<Vec<u64>>(), "every unit in exactly one shard");
    let merged_out = dir.join("merged");
    let mut args = vec!["merge", "--out", merged_out.to_str().unwrap(), "--history", h];
    let names: Vec<String> = shard_dirs.iter().map(|d| d.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let (code, stdout, stderr) = xdpqual(&args);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("3 shards"), "{stdout}");
    let merged = run_dir(&merged_out);
    let (a, b) = (json(&whole.join("report.json")), json(&merged.join("report.json")));
    assert_eq!(a["checks"], b["checks"]);
    assert_eq!(a["packets"], b["packets"]);
    assert_eq!(a["offload"], b["offload"]);
    // Everything but the wall times JUnit carries, which are the two runs' own.
    for f in ["summary.md", "junit.xml"] {
        assert_eq!(
            without_times(&std::fs::read_to_string(whole.join(f)).unwrap()),
            without_times(&std::fs::read_to_string(merged.join(f)).unwrap()),
            "{f}"
        );
    }
    // One history entry for the merge; the shards recorded none.
    let (_, list, _) = xdpqual(&["baseline", "list", "--history", h]);
    assert_eq!(list.lines().filter(|l| l.starts_with("run ")).count(), 2, "{list}");

    // A missing shard and a repeated one are refused.
    let (code, _, stderr) = xdpqual(&[
        "merge",
        "--no-history",
        "--out",
        dir.join("x").to_str().unwrap(),
        &names[0],
        &names[1],
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("shards missing: 3 of 3"), "{stderr}");
    let dup = dir.join("dup");
    std::fs::create_dir_all(&dup).unwrap();
    std::fs::copy(run_dir(&shard_dirs[0]).join("report.json"), dup.join("report.json")).unwrap();
    let (code, _, stderr) = xdpqual(&[
        "merge",
        "--no-history",
        "--out",
        dir.join("x").to_str().unwrap(),
        &names[0],
        &names[1],
        &names[2],
        dup.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("shard 1/3 appears twice"), "{stderr}");
    let (code, stdout, stderr) = xdpqual(&[
        "qualify",
        "--quiet",
        "--config",
        c,
        "--shard",
        "4/3",
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("expected I/N"), "{stderr}");
}

/// The text with every ` time="..."` attribute removed.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(" time=\"") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " time=\"".len()..];
        rest = &after[after.find('"').map_or(after.len(), |j| j + 1)..];
    }
    out.push_str(rest);
    out
}
