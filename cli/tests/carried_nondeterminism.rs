//! Randomness carried from one packet to the next through a map
//! (`harness/src/compare/carried.rs`). tests/data/loader/carried_random.c
//! draws a number on a flow's first frame, stores it, and writes it into
//! every later frame of the flow; the expected counts below follow from
//! its header comment.

use std::path::PathBuf;
use std::process::Command;
use xdpqual::capture::{write_pcap, TsPrecision};

fn frame(flow: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0] = flow;
    f[12] = 0x08;
    f
}

#[test]
fn packets_that_read_a_stored_random_number_are_nondeterministic_not_mismatches() {
    let dir = std::env::temp_dir().join(format!("xdpqual-carried-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("in.pcap");
    // Flows 1 and 2 store a number on their first frame; 0xff never does.
    let flows = [1u8, 2, 1, 1, 0xff, 2, 1, 0xff];
    let frames = flows.iter().enumerate().map(|(i, f)| (i as u64 * 1_000_000, frame(*f)));
    write_pcap(&cap, TsPrecision::Microsecond, frames).unwrap();
    let prog =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader/carried_random.o"));
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["diff", prog.to_str().unwrap(), cap.to_str().unwrap()])
        .args(["--backends", "vm,host", "--json"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{err}\n{v}");
    assert_eq!(v["backends"], serde_json::json!(["vm", "host"]));
    // First frames of flows 1 and 2 (PASS, unchanged) and both 0xff
    // frames agree; the four later frames of flows 1 and 2 carry each
    // side's own number. The chance that the kernel drew the engine's
    // number for either flow is 2^-31.
    assert_eq!(v["agreed"].as_u64(), Some(4), "{v}");
    assert_eq!(v["nondeterministic"].as_u64(), Some(4), "{v}");
    assert_eq!(v["mismatch_count"].as_u64(), Some(0), "{v}");
    // The map holds each side's numbers: reported as nondeterministic.
    assert_eq!(v["map_mismatches"], serde_json::json!([]), "{v}");
    let nondet_maps = v["map_nondeterministic"].as_array().expect("map_nondeterministic");
    assert!(nondet_maps.iter().any(|m| m.as_str().is_some_and(|s| s.contains("picked"))), "{v}");
}
