//! bpf_csum_diff (helper 28) as each kernel release defines it. Linux 6.13
//! changed what it returns (commit 6a4794d5a3e2: folded to 16 bits, any
//! size), so the engine models the release it stands for: the host's in
//! `diff`/`replay`, each guest's in the matrix. tests/data/loader/
//! csum_diff.c writes five results into the frame; the expected words for
//! both semantics are worked out by hand in its header comment.

use std::path::{Path, PathBuf};
use std::process::Command;
use xdpqual::backends::engine::run_packet;
use xdpqual::compare::PacketSource;
use xdpqual::engine::{Engine, EngineConfig, KernelRelease, NoTrace};

fn program() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader/csum_diff.o"))
}

/// The five words of csum_diff.c, worked out in its header.
const FROM_6_13: [u32; 5] = [0x1410, 0x0808, 0xf9fb, 0x0204, 0x1410];
const UP_TO_6_12: [u32; 5] = [0x0c0a_0806, 0x0404_0404, 0xfbfc_fdfe, (-22i32) as u32, 0x0c09_0807];

fn words(frame: &[u8]) -> Vec<u32> {
    frame[..20].chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn engine_words(path: &Path, kernel: KernelRelease) -> Vec<u32> {
    let obj = xdpqual::loader::load_object(path).unwrap();
    let cfg = EngineConfig { kernel, ..EngineConfig::default() };
    let mut e = Engine::new(&obj, None, cfg).unwrap();
    let pkt = PacketSource { data: vec![0u8; 64], ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let r = run_packet(&mut e, &pkt, &mut NoTrace);
    assert_eq!(r.verdict.to_string(), "TX", "{r:?}");
    words(&r.output)
}

#[test]
fn engine_models_both_definitions() {
    assert_eq!(engine_words(&program(), KernelRelease::new(6, 13)), FROM_6_13);
    assert_eq!(engine_words(&program(), KernelRelease::new(6, 18)), FROM_6_13);
    assert_eq!(engine_words(&program(), KernelRelease::new(6, 12)), UP_TO_6_12);
    assert_eq!(engine_words(&program(), KernelRelease::new(5, 10)), UP_TO_6_12);
}

#[test]
fn host_kernel_agrees_with_the_engine_for_its_release() {
    let dir = std::env::temp_dir().join(format!("xdpqual-csum-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("in.pcap");
    let frames = (0..3u64).map(|i| (i * 1_000_000, vec![0u8; 60 + i as usize]));
    xdpqual::capture::write_pcap(&cap, xdpqual::capture::TsPrecision::Microsecond, frames).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["diff", program().to_str().unwrap(), cap.to_str().unwrap()])
        .args(["--backends", "vm,host", "--format", "json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
    } else {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(0), "{err}\n{v}");
        assert_eq!(v["agreed"].as_u64(), Some(3), "{v}");
        // The kernel agreed with the engine for the host's release, and the
        // engine's words for that release are the worked-out ones: so the
        // kernel's are too.
        let host = xdpqual::backends::engine::host_kernel_release();
        let expected = if host.csum_diff_folds() { FROM_6_13 } else { UP_TO_6_12 };
        assert_eq!(engine_words(&program(), host), expected);
        println!("COUNT: bpf_csum_diff: engine and host kernel {host} agree on 3 frames");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
