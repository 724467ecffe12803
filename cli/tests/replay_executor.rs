//! `xdpqual replay --engine`: the executor asked for is the one that runs,
//! and the summary says which ran, packet by packet.
//!
//! Regression: replay once routed every packet through the traced entry
//! point, which always interprets, so `--engine jit` (the default) silently
//! ran the interpreter. The per-run executor count would have shown it.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn replay(capture: &str, extra: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(["replay", "corpus/build/firewall.v3.o", capture, "--summary-json"])
        .args(extra)
        .output()
        .expect("runs");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).expect("summary JSON"), stderr)
}

fn executors(summary: &serde_json::Value) -> serde_json::Value {
    summary["executors"].clone()
}

#[test]
fn jit_is_the_default_and_runs_every_packet() {
    // firewall-2k.pcap: 2,000 frames of 42 to 586 bytes (pcaps/README.md),
    // all of which test-run geometry accepts, and the firewall compiles.
    let (s, err) = replay("pcaps/firewall-2k.pcap", &[]);
    assert!(!err.contains("runs in the interpreter"), "{err}");
    assert_eq!(executors(&s), serde_json::json!({ "jit": 2000 }));
}

#[test]
fn interp_runs_every_packet_in_the_interpreter() {
    let (s, _) = replay("pcaps/firewall-2k.pcap", &["--engine", "interp"]);
    assert_eq!(executors(&s), serde_json::json!({ "interpreter": 2000 }));
}

#[test]
fn a_traced_packet_is_interpreted_and_the_rest_compiled() {
    let (s, _) = replay("pcaps/firewall-2k.pcap", &["--trace", "7"]);
    assert_eq!(executors(&s), serde_json::json!({ "interpreter": 1, "jit": 1999 }));
}

#[test]
fn frames_refused_before_the_program_are_in_no_count() {
    // mixed-2k.pcap holds 65 runts of 1 to 13 bytes (pcaps/README.md), which
    // test-run refuses before the program runs.
    let (s, _) = replay("pcaps/mixed-2k.pcap", &[]);
    assert_eq!(executors(&s), serde_json::json!({ "jit": 2000 - 65 }));
}

#[test]
fn jit_and_interpreter_give_the_same_verdicts() {
    for cap in ["pcaps/firewall-2k.pcap", "pcaps/mixed-2k.pcap", "pcaps/edges.pcap"] {
        let (jit, _) = replay(cap, &["--engine", "jit"]);
        let (interp, _) = replay(cap, &["--engine", "interp"]);
        assert_eq!(jit["captures"], interp["captures"], "{cap}");
    }
}
