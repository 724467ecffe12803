//! `xdpqual bench`'s reference row, the kernel's in-kernel time, for a
//! program that changes frames. The kernel repeats each run of a
//! `BPF_PROG_TEST_RUN` on the `xdp_buff` the previous repeat left
//! (net/bpf/test_run.c, `bpf_test_run`: the program runs `repeat` times on
//! one context, laid out once), so for `vlan_push` every repeat after the
//! first pushes a tag onto an already tagged frame, and takes the
//! "already tagged: XDP_PASS" exit. That row times other work than one run
//! per packet: the bench must say so and must not give any row a ratio to
//! it. A program that leaves frames alone keeps its reference.
//!
//! Needs the host kernel (root, CAP_BPF); without it the kernel row is
//! skipped and so is this test, visibly.

use std::path::{Path, PathBuf};
use std::process::Command;

const PACKETS: usize = 50;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the bench and returns its JSON report, or `None` (after a SKIP
/// line) when this machine's kernel cannot run the program.
fn bench(object: &str, tag: &str) -> Option<serde_json::Value> {
    let out_dir =
        std::env::temp_dir().join(format!("xdpqual-bench-reference-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .arg("bench")
        .arg(repo().join(object))
        .arg(repo().join("pcaps/mixed-2k.pcap"))
        .args(["--backends", "engine-interp,kernel-in-kernel"])
        .args(["--packets", &PACKETS.to_string(), "--rounds", "2", "--repeat", "4"])
        .args(["--kernel-sample", "4", "--out-dir"])
        .arg(&out_dir)
        .output()
        .expect("runs xdpqual");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    let path = std::fs::read_dir(&out_dir)
        .expect("the bench wrote its results directory")
        .map(|e| e.expect("a directory entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no bench JSON\n{text}"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
    let _ = std::fs::remove_dir_all(&out_dir);
    let kernel = row(&v, "kernel-in-kernel");
    if let Some(why) = kernel["skipped"].as_str() {
        xdpqual::util::skip(format!("bench_reference ({tag}): the kernel row did not run: {why}"));
        return None;
    }
    Some(v)
}

/// The row of `backend`: `{"backend", "measured": {...}}` or
/// `{"backend", "skipped": why}`.
fn row<'a>(v: &'a serde_json::Value, backend: &str) -> &'a serde_json::Value {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["backend"] == backend)
        .unwrap_or_else(|| panic!("no {backend} row in {v}"))
}

/// What a measured row measured.
fn measured<'a>(v: &'a serde_json::Value, backend: &str) -> &'a serde_json::Value {
    let r = row(v, backend);
    assert!(r["measured"].is_object(), "{backend} was not measured: {r}");
    &r["measured"]
}

/// Frames among the first `PACKETS` of the capture that `xdp_vlan_push`
/// changes, from its specification (corpus/vlan.c): every frame of at
/// least 14 bytes whose ethertype is not 0x8100 or 0x88A8 (those pass
/// unchanged, shorter ones are dropped unchanged) gets a tag.
fn vlan_push_changes() -> usize {
    let reader = xdpqual::capture::CaptureReader::open(repo().join("pcaps/mixed-2k.pcap"))
        .expect("the capture opens");
    reader
        .take(PACKETS)
        .map(|p| p.expect("a packet").data)
        .filter(|f| f.len() >= 14 && ![[0x81, 0x00], [0x88, 0xa8]].contains(&[f[12], f[13]]))
        .count()
}

#[test]
fn a_program_that_changes_frames_has_no_kernel_reference() {
    let Some(v) = bench("corpus/build/vlan.v3.o", "vlan") else { return };
    let changed = vlan_push_changes();
    assert!(changed > 0, "the capture's first {PACKETS} frames include untagged ones");
    let kernel = measured(&v, "kernel-in-kernel");
    let note = kernel["note"].as_str().unwrap_or_default();
    assert!(
        note.contains(&format!(
            "not a reference: the program changes {changed} of the {PACKETS} frames"
        )),
        "{note}"
    );
    for r in v["rows"].as_array().expect("rows") {
        assert!(
            r["measured"].get("vs_kernel_in_kernel").is_none(),
            "a ratio to a non-reference: {r}"
        );
    }
    assert!(kernel.get("ns_per_insn").is_none(), "the engine's count given to the kernel row");
}

#[test]
fn a_program_that_leaves_frames_alone_keeps_its_reference() {
    // counters.c: "the packet is never modified".
    let Some(v) = bench("corpus/build/counters.v3.o", "counters") else { return };
    let kernel = measured(&v, "kernel-in-kernel");
    let note = kernel["note"].as_str().unwrap_or_default();
    assert!(!note.contains("not a reference"), "{note}");
    assert_eq!(kernel["vs_kernel_in_kernel"].as_f64(), Some(1.0));
    let engine = measured(&v, "engine-interp");
    assert!(engine["vs_kernel_in_kernel"].as_f64().is_some_and(|x| x > 0.0), "{engine}");
}
