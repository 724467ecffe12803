//! `xdpqual replay --threads`: the split is invisible in the output for a
//! program with per-CPU state, and a program with shared state is replayed
//! on one thread with a note saying why.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn replay(obj: &str, extra: &[&str]) -> (String, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args([
            "replay",
            obj,
            "pcaps/firewall-2k.pcap",
            "pcaps/mixed-2k.pcap",
            "--packets-json",
            "-",
        ])
        .args(extra)
        .output()
        .expect("runs");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.success(),
    )
}

#[test]
fn firewall_lines_do_not_depend_on_threads() {
    let (one, err, ok) = replay("corpus/build/firewall.v3.o", &["--threads", "1"]);
    assert!(ok, "{err}");
    assert_eq!(one.lines().count(), 4000);
    for t in ["2", "3"] {
        let (many, err, ok) = replay("corpus/build/firewall.v3.o", &["--threads", t]);
        assert!(ok, "{err}");
        assert!(!err.contains("note:"), "firewall is parallel-safe: {err}");
        assert!(many == one, "--threads {t} changed the per-packet lines");
    }
}

#[test]
fn counters_falls_back_to_one_thread() {
    let (_, err, ok) = replay("corpus/build/counters.v3.o", &["--threads", "2"]);
    assert!(ok, "{err}");
    assert!(err.contains("shares state between flows") && err.contains("'totals'"), "{err}");
    let (_, err, ok) =
        replay("corpus/build/counters.v3.o", &["--threads", "2", "--parallel-unsafe"]);
    assert!(ok, "{err}");
    assert!(!err.contains("note:"), "{err}");
}
