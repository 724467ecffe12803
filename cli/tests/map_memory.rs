//! The map memory cap is one cap for the whole process, not one per engine:
//! many engines in one process (replay --threads, diff, qualify) must not
//! multiply what a hostile object's maps may hold.
//!
//! This test binary is its own process, so setting the process-wide cap
//! here cannot disturb other tests.

use xdpqual::engine::maps::{ledger, MapSet};
use xdpqual::program::{MapDef, MapOrigin, MapType};

/// An ARRAY of 1,000 values of 8 bytes: 8,000 bytes of values, which is
/// what the kernel's array_map_alloc would allocate for its elements; any
/// bookkeeping of ours is far smaller than the 4,000 bytes of slack below.
fn array_8000() -> MapDef {
    MapDef {
        name: "a".into(),
        map_type: MapType::Array,
        key_size: 4,
        value_size: 8,
        max_entries: 1000,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    }
}

#[test]
fn two_engines_share_one_process_cap() {
    // Room for one such map set, not two; each alone is far under the
    // per-engine cap (1 GiB), so only the process-wide cap can refuse.
    ledger::set_cap(12_000);
    let first = MapSet::new(&[array_8000()], 1).expect("the first set fits");
    let err = MapSet::new(&[array_8000()], 1).expect_err("two sets exceed the process cap");
    let text = err.to_string();
    assert!(text.contains("refused with ENOMEM") && text.contains("XDPQUAL_MAP_MEMORY"), "{text}");
    // Dropping the first gives its bytes back.
    drop(first);
    let again = MapSet::new(&[array_8000()], 1).expect("room again after the first is dropped");
    // A snapshot copy is counted (a third set no longer fits beside two).
    let copy = again.clone();
    assert!(ledger::in_use() >= 16_000, "the copy is counted: {}", ledger::in_use());
    drop((again, copy));
    assert_eq!(ledger::in_use(), 0, "every byte given back");
}

#[test]
fn the_binary_takes_the_cap_from_the_environment() {
    // One byte of map memory for the whole process: the firewall's maps
    // cannot be created, and replay says which setting refused them.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["replay", "corpus/build/firewall.v3.o", "pcaps/firewall-2k.pcap"])
        .current_dir(&root)
        .env("XDPQUAL_MAP_MEMORY", "1")
        .output()
        .expect("run xdpqual");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("XDPQUAL_MAP_MEMORY"), "{stderr}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["replay", "corpus/build/firewall.v3.o", "pcaps/firewall-2k.pcap"])
        .current_dir(&root)
        .env("XDPQUAL_MAP_MEMORY", "lots")
        .output()
        .expect("run xdpqual");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a size"));
}
