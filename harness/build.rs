//! Build script: identifies the QEMU guest agent's sources.
//!
//! An installed xdpqual cannot build the guest agent (no source tree), so it
//! runs agents from its cache, which `xdpqual matrix --prepare` fills from a
//! checkout. The agent speaks a protocol with this binary, so a cached agent
//! is only valid for the sources this binary was built from: their hash,
//! computed here, names the cache folder (`XDPQUAL_AGENT_SOURCE_ID`).

use std::path::{Path, PathBuf};

/// Everything compiled into the agent: its crate and the workspace crates
/// it depends on (crates/xdpqual-agent/Cargo.toml; keep the two lists together).
const AGENT_SOURCES: &[&str] = &[
    "../crates/xdpqual-agent/Cargo.toml",
    "../crates/xdpqual-agent/src",
    "../crates/xdpqual-isa/Cargo.toml",
    "../crates/xdpqual-isa/src",
    "../crates/xdpqual-object/Cargo.toml",
    "../crates/xdpqual-object/src",
    "../crates/xdpqual-kernel/Cargo.toml",
    "../crates/xdpqual-kernel/src",
    "../crates/xdpqual-protocol/Cargo.toml",
    "../crates/xdpqual-protocol/src",
];

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut files = Vec::new();
    for s in AGENT_SOURCES {
        let p = here.join(s);
        println!("cargo:rerun-if-changed={}", p.display());
        collect(&p, &mut files);
    }
    files.sort();
    // FNV-1a over (relative path, contents): no build dependency needed,
    // and a collision only costs a rebuild of the agent, never a wrong run
    // (the agent's hello line carries its version too).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        let rel = f.strip_prefix(&here).unwrap_or(f).to_string_lossy().into_owned();
        for b in rel.bytes().chain([0]).chain(std::fs::read(f).unwrap_or_default()) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=XDPQUAL_AGENT_SOURCE_ID={}-{h:016x}", env!("CARGO_PKG_VERSION"));
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            collect(&e.path(), out);
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    }
}
