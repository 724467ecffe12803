//! `xdpqual replay --trace [CAPTURE:]N`: which packet is traced, and packet
//! offsets counted from `data` as the program counts them (issue 18 item 4:
//! the trace printed page offsets, headroom included, and indexed packets
//! only across all captures).
//!
//! Expected offsets come from the programs' specifications: corpus/core.c
//! reads the EtherType at 12 and the TTL at 14 + 8 = 22 and rewrites the
//! TTL of UDP packets; corpus/meta.c stores its 4-byte mark in the metadata
//! area, the 4 bytes before `data`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use xdpqual::capture::CaptureReader;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// (exit code, trace text on stderr).
fn trace(program: &str, captures: &[&str], spec: &str) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(["replay", "--format", "json", "--trace", spec, program])
        .args(captures)
        .stdin(Stdio::null())
        .output()
        .expect("run xdpqual");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into())
}

fn frames(capture: &str) -> Vec<Vec<u8>> {
    CaptureReader::open(root().join(capture)).unwrap().map(|p| p.unwrap().data.to_vec()).collect()
}

/// The first IPv4/UDP frame with TTL > 1 and a full IPv4 header: core.c
/// decrements its TTL and returns XDP_TX.
fn udp_index(capture: &str) -> usize {
    frames(capture)
        .iter()
        .position(|f| f.len() >= 34 && f[12..14] == [0x08, 0x00] && f[23] == 17 && f[22] > 1)
        .expect("the capture holds an IPv4/UDP frame")
}

#[test]
fn a_packet_is_named_within_its_capture() {
    let i = udp_index("pcaps/edges.pcap");
    let before = frames("pcaps/mixed-2k.pcap").len();
    let caps = ["pcaps/mixed-2k.pcap", "pcaps/edges.pcap"];
    let prog = "corpus/build/core.v3.o";
    let (c1, by_name) = trace(prog, &caps, &format!("edges.pcap:{i}"));
    let (c2, by_path) = trace(prog, &caps, &format!("pcaps/edges.pcap:{i}"));
    let (c3, by_position) = trace(prog, &caps, &format!("1:{i}"));
    let (c4, global) = trace(prog, &caps, &(before + i).to_string());
    assert_eq!((c1, c2, c3, c4), (0, 0, 0, 0), "{by_name}");
    let t = |s: &str| s.split("result:").next().unwrap().to_string();
    assert!(by_name.contains("trace of xdp_core"), "{by_name}");
    assert_eq!(t(&by_name), t(&global));
    assert_eq!(t(&by_path), t(&global));
    assert_eq!(t(&by_position), t(&global));
    assert!(by_name.contains("result: TX"), "{by_name}");
}

#[test]
fn packet_offsets_count_from_data() {
    let i = udp_index("pcaps/edges.pcap");
    let (code, out) = trace("corpus/build/core.v3.o", &["pcaps/edges.pcap"], &i.to_string());
    assert_eq!(code, 0, "{out}");
    for line in [
        "load 2 bytes at packet data+12",
        "load 1 bytes at packet data+22",
        "load 1 bytes at packet data+23",
        "store 1 bytes at packet data+22",
    ] {
        assert!(out.contains(line), "missing `{line}` in\n{out}");
    }
    // The headroom never shows: no offset is counted from the page.
    assert!(!out.contains("packet offset"), "{out}");

    // Metadata sits before data: meta.c's store is at data-4.
    let (code, out) = trace("corpus/build/meta.v3.o", &["pcaps/edges.pcap"], &i.to_string());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("store 4 bytes at packet data-4"), "{out}");
}

#[test]
fn a_trace_that_names_no_packet_is_an_error() {
    let caps = ["pcaps/edges.pcap"];
    let n = frames("pcaps/edges.pcap").len();
    for (spec, says) in [
        ("nope.pcap:1".to_string(), "no capture named nope.pcap".to_string()),
        (format!("edges.pcap:{n}"), format!("holds {n} packets")),
        ("edges.pcap:x".to_string(), "expected N or CAPTURE:N".to_string()),
        ((n + 5).to_string(), "no such packet".to_string()),
    ] {
        let (code, out) = trace("corpus/build/core.v3.o", &caps, &spec);
        assert_eq!(code, 2, "--trace {spec}: {out}");
        assert!(out.contains(&says), "--trace {spec}: {out}");
    }
}
