//! bpf_check_mtu (helper 163) in the engine against net/core/filter.c
//! bpf_xdp_check_mtu, with the test-run device (loopback: MTU 65536,
//! 14-byte hard header; net/bpf/test_run.c runs XDP on loopback's rx queue
//! 0). tests/data/loader/check_mtu.c writes six results into the frame; the
//! expected words below are worked out in its header comment.

use std::path::PathBuf;
use std::process::Command;
use xdpqual::capture::{write_pcap, TsPrecision};

/// Words of the first frame of a classic pcap written by xdpqual.
fn first_frame(p: &[u8]) -> Vec<u8> {
    let len = u32::from_le_bytes(p[24 + 8..24 + 12].try_into().unwrap()) as usize;
    p[24 + 16..24 + 16 + len].to_vec()
}

#[test]
fn engine_and_kernel_agree_on_check_mtu() {
    let dir = std::env::temp_dir().join(format!("xdpqual-check-mtu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("in.pcap");
    let mut f = vec![0u8; 60];
    f[12] = 0x08;
    let mut big = vec![0u8; 1514];
    big[12] = 0x08;
    write_pcap(&cap, TsPrecision::Microsecond, [(0u64, f), (1_000_000_000, big)]).unwrap();
    let prog = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader/check_mtu.o"));
    let tx = dir.join("tx.pcap");
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["replay", prog.to_str().unwrap(), cap.to_str().unwrap()])
        .arg(format!("--write-pcap=TX={}", tx.display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = first_frame(&std::fs::read(&tx).unwrap());
    let words: Vec<u32> =
        out[..48].chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    let einval = (-22i32) as u32;
    assert_eq!(
        words,
        [0, 65536, 1, 65536, 0, 65536, 1, 65536, einval, 0, 0, 65536],
        "engine results"
    );

    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["diff", prog.to_str().unwrap(), cap.to_str().unwrap()])
        .args(["--backends", "vm,host", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run this here: {err}"));
    } else {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(0), "{err}\n{v}");
        assert_eq!(v["backends"], serde_json::json!(["vm", "host"]));
        assert_eq!(v["agreed"].as_u64(), Some(2), "{v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
