//! Shared by the differential and kernel-conformance tests.
#![allow(dead_code)]

pub(crate) mod packets;
pub(crate) mod public_args;

use std::path::PathBuf;

use xdpqual::backends::host::HostBackend;
use xdpqual::mapfile::MapInit;
use xdpqual_testkit::pair::{PairOpen, VmHostPair};

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `base` cases, or 100 times more with `XDPQUAL_SOAK=1`.
pub(crate) fn cases(base: u64) -> u64 {
    if std::env::var("XDPQUAL_SOAK").as_deref() == Ok("1") {
        base * 100
    } else {
        base
    }
}

/// A byte-string literal to paste into a regression test.
pub(crate) fn rust_bytes(b: &[u8]) -> String {
    let mut s = String::from("b\"");
    for x in b {
        s.push_str(&format!("\\x{x:02x}"));
    }
    s.push('"');
    s
}

/// The map files a corpus object needs to do anything interesting.
fn map_files(stem: &str) -> Vec<MapInit> {
    let maps = repo_root().join("corpus/maps");
    match stem {
        "dispatcher" => {
            vec![MapInit { map: "jmp_table".into(), file: maps.join("dispatcher-jmp_table.json") }]
        }
        "redirect" => {
            vec![MapInit { map: "tx_ports".into(), file: maps.join("redirect-tx_ports.json") }]
        }
        _ => Vec::new(),
    }
}

/// Every XDP program of every `corpus/build/*.v3.o`, paired engine/kernel.
/// `Err` (a skip reason) when the host kernel cannot be used.
pub(crate) fn corpus_pairs() -> Result<Vec<(String, PairOpen)>, String> {
    HostBackend::open().map_err(|u| format!("host kernel backend unavailable: {u}"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("corpus/build"))
        .expect("corpus/build")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".v3.o"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus/build has only {} v3 objects", files.len());
    let mut out = Vec::new();
    for f in files {
        let obj =
            xdpqual::loader::load_object(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let stem = f.file_name().unwrap().to_string_lossy().trim_end_matches(".v3.o").to_string();
        for p in &obj.programs {
            let label = format!("{stem}.v3.o:{}", p.name);
            let pair = VmHostPair::open(&obj, p, &map_files(&stem))
                .unwrap_or_else(|e| panic!("{label}: {e:#}"));
            if let PairOpen::Unavailable(why) = &pair {
                return Err(format!("host kernel backend unavailable: {why}"));
            }
            out.push((label, pair));
        }
    }
    Ok(out)
}

/// Whether the host kernel's BTF has FUNC `name` (a kfunc it offers), read
/// with bpftool rather than our loader; `None` when bpftool cannot read it.
pub(crate) fn host_btf_has_func(name: &str) -> Option<bool> {
    let o = std::process::Command::new("bpftool")
        .args(["btf", "dump", "file", xdpqual::loader::HOST_BTF])
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let want = format!("FUNC '{name}' ");
    Some(String::from_utf8_lossy(&o.stdout).lines().any(|l| l.contains(&want)))
}
