//! rbpf runs any frame it is given; BPF_PROG_TEST_RUN refuses frames longer
//! than its linear part plus MAX_SKB_FRAGS pages (net/bpf/test_run.c
//! bpf_prog_test_run_xdp: 4096 - 256 headroom - 320 tailroom = 3520 linear
//! bytes, plus 17 fragments of 4096: 73,152 bytes on x86_64). The engine
//! refuses the same (engine/xdp.rs `refused`); rbpf must too, or every such
//! frame is a spurious mismatch.

use std::path::PathBuf;
use std::process::Command;
use xdpqual::capture::{write_pcap, TsPrecision};

#[test]
fn rbpf_refuses_frames_test_run_refuses() {
    let dir = std::env::temp_dir().join(format!("xdpqual-rbpf-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("sizes.pcap");
    let frame = |len: usize| {
        let mut f = vec![0u8; len];
        f[12] = 0x08; // IPv4 ethertype; the program does not look
        f
    };
    let frames = [frame(60), frame(73_152), frame(73_153)];
    write_pcap(&cap, TsPrecision::Microsecond, frames.into_iter().map(|f| (0u64, f))).unwrap();
    // Returns XDP_TX for every frame it runs (tests/data/loader/untyped.c).
    let prog =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader/untyped.o:2/1"));
    let out = |backends: &str| {
        Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .args(["diff", prog.to_str().unwrap(), cap.to_str().unwrap(), "--json"])
            .args(["--backends", backends])
            .output()
            .unwrap()
    };
    let o = out("vm,rbpf");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(o.status.code(), Some(0), "{}\n{v}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(v["packets"].as_u64(), Some(3), "{v}");
    assert_eq!(v["agreed"].as_u64(), Some(3), "{v}");

    // The kernel draws the line in the same place.
    let o = out("vm,rbpf,host");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("could not run: unavailable") {
        xdpqual::util::skip(format_args!("the host backend is unavailable: {err}"));
    } else {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(0), "{err}\n{v}");
        assert_eq!(v["backends"], serde_json::json!(["vm", "rbpf", "host"]));
        assert_eq!(v["agreed"].as_u64(), Some(3), "{v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
