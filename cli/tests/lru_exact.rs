//! LRU maps evict what the kernel evicts (crates/xdpqual-engine/src/maps/lru.rs
//! models kernel/bpf/bpf_lru_list.c). tests/data/lru/lru_exact.c runs map
//! operations that frames describe; the capture below fills its maps past
//! capacity in an order where the kernel's LRU and a strict
//! least-recently-used one keep different keys. Expected contents are
//! worked out by hand from the kernel's algorithm (see
//! `common_lru_expected`), then the diff against the host kernel must agree
//! on every packet and every map.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use xdpqual::capture::{write_pcap, TsPrecision};
use xdpqual::engine::{Engine, EngineConfig, Outcome, PacketIn};
use xdpqual::loader::load_object;

const LRU: u8 = 0;
const NOCOMMON: u8 = 1;
const PERCPU: u8 = 2;
const SMALL: u8 = 3;

fn frame(op: u8, map: u8, flags: u8, salt: u8, key: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0] = op;
    f[1] = map;
    f[2] = flags;
    f[3] = salt;
    f[4..8].copy_from_slice(&key.to_le_bytes());
    f
}

/// The operations, in order, applied to map `map` (LRU or PERCPU, both
/// 1024 entries with the common LRU).
fn common_lru_ops(map: u8) -> Vec<Vec<u8>> {
    let mut ops = Vec::new();
    // Fill all 1024 nodes, then reference the 10 oldest, then one more.
    ops.extend((1..=1024).map(|k| frame(b'U', map, 0, 0, k)));
    ops.extend((1..=10).map(|k| frame(b'L', map, 0, 0, k)));
    ops.push(frame(b'U', map, 0, 0, 2001));
    // Lookups whose answers tell the two models apart (12 is kept by a
    // strict LRU, evicted by the kernel's).
    for k in [11, 12, 128, 129] {
        ops.push(frame(b'L', map, 0, 0, k));
    }
    ops
}

/// What `common_lru_ops` leaves, worked out from bpf_lru_list.c for a
/// machine of 1 to 4 possible CPUs, all operations on CPU 0:
/// target_free = clamp(1024 / ncpus / 2, 1, 128) = 128.
/// - Updates 1..1024: the local free list is refilled with 128 nodes at
///   updates 1, 129, ..., 897 (each refill flushes the previous 128
///   pending nodes onto the front of the inactive list). Afterwards the
///   inactive list holds 896..1 (1 at the tail), 897..1024 are pending,
///   and the free lists are empty. The inactive rotations of refills 3 to
///   8 walked 128 nodes each from the tail, leaving next_inactive_rotation
///   at 769.
/// - Lookups 1..10 set their reference bits.
/// - Update 2001: the refill flushes 897..1024 to the front of inactive;
///   active is empty, so only the inactive rotation runs, from 769 over
///   769..896 (nothing referenced). The global free list is empty, so the
///   shrink walks from the tail for at most nr_scans = 128 nodes: 1..10
///   are referenced and move to active, 11..128 (118 nodes) are evicted
///   into the local free list; 2001 takes one of them.
///
/// So the map holds 1..10, 129..1024 and 2001 (907 keys). A strict LRU
/// evicts key 11 alone (1024 keys: 1..10, 12..1024, 2001).
fn common_lru_expected() -> BTreeSet<u32> {
    (1..=10).chain(129..=1024).chain([2001]).collect()
}

fn nocommon_ops() -> Vec<Vec<u8>> {
    let mut ops: Vec<Vec<u8>> = (1..=4).map(|k| frame(b'U', NOCOMMON, 0, 0, k)).collect();
    ops.push(frame(b'L', NOCOMMON, 0, 0, 1));
    ops.push(frame(b'U', NOCOMMON, 0, 0, 5));
    for k in 1..=5 {
        ops.push(frame(b'L', NOCOMMON, 0, 0, k));
    }
    ops
}

/// What `nocommon_ops` leaves (BPF_F_NO_COMMON_LRU, 8 entries, CPU 0):
/// - 1 possible CPU: all 8 nodes are CPU 0's; nothing is evicted: 1..5.
/// - 2 possible CPUs: 4 nodes per CPU. Updates 1..4 take CPU 0's four
///   nodes (inactive: 4 3 2 1). The lookup references 1. Update 5: the
///   inactive rotation moves 1 to active; the free list is empty, so the
///   shrink (PERCPU_FREE_TARGET = 4) evicts 2, 3, 4, the whole inactive
///   list; 5 takes a node: 1 and 5 remain, while a strict LRU with room
///   for 8 keeps 1..5.
fn nocommon_expected(ncpus: usize) -> Option<BTreeSet<u32>> {
    match ncpus {
        1 => Some((1..=5).collect()),
        2 => Some([1, 5].into_iter().collect()),
        _ => None,
    }
}

fn small_ops() -> Vec<Vec<u8>> {
    let mut ops: Vec<Vec<u8>> = (1..=16).map(|k| frame(b'U', SMALL, 0, 0, k)).collect();
    ops.push(frame(b'L', SMALL, 0, 0, 1));
    ops.push(frame(b'U', SMALL, 0, 0, 17));
    ops.extend((1..=17).map(|k| frame(b'L', SMALL, 0, 0, k)));
    ops
}

/// What `small_ops` leaves in the 16-entry LRU_HASH on CPU 0 of `ncpus`
/// possible CPUs (1 to 7): the refill batch is target_free = t =
/// clamp(16 / ncpus / 2, 1, 128), below 16.
/// - Updates 1..16: refills of t nodes at updates 1, 1 + t, 1 + 2t, ...
///   each flushing the previous batch to the front of inactive; the last
///   t keys stay pending, the free lists end empty. Every rotation walks
///   the whole inactive list (it is shorter than nr_scans = 128), so
///   next_inactive_rotation is back at the head each time.
/// - The lookup references 1.
/// - Update 17: the refill flushes the last batch (inactive: 16 .. 1); the
///   rotation moves 1 (referenced) to active; the global free list is
///   empty, so the shrink evicts t nodes from the tail: 2 ..= 1 + t.
///
/// Left: 1 and 2 + t ..= 17 (t = 4 on 2 CPUs: 13 keys). A strict LRU
/// evicts 2 alone.
fn small_expected(ncpus: usize) -> BTreeSet<u32> {
    let t = (16 / ncpus as u32 / 2).clamp(1, 128);
    std::iter::once(1).chain(2 + t..=17).collect()
}

fn prog() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lru/lru_exact.o"))
}

fn capture(dir: &Path, ops: Vec<Vec<u8>>) -> PathBuf {
    let cap = dir.join("ops.pcap");
    let frames = ops.into_iter().enumerate().map(|(i, f)| (i as u64 * 1000, f));
    write_pcap(&cap, TsPrecision::Microsecond, frames).unwrap();
    cap
}

fn all_ops() -> Vec<Vec<u8>> {
    let mut ops = common_lru_ops(LRU);
    ops.extend(common_lru_ops(PERCPU));
    // LRU_PERCPU_HASH updates an element in place under BPF_EXIST without
    // taking a node, so nothing more is evicted; 500 gets salt 1.
    ops.push(frame(b'U', PERCPU, 2, 1, 500));
    ops.extend(nocommon_ops());
    ops.extend(small_ops());
    ops
}

/// The engine after it ran `ops` on CPU 0 of `ncpus` possible CPUs.
fn engine_after(ncpus: usize, ops: &[Vec<u8>]) -> Engine {
    let obj = load_object(&prog()).unwrap();
    let mut engine =
        Engine::new(&obj, None, EngineConfig { ncpus, cpu: 0, ..Default::default() }).unwrap();
    for f in ops {
        let r =
            engine.run_xdp(&PacketIn { data: f, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 });
        // XDP_TX: the program understood the frame.
        assert!(matches!(r.outcome, Outcome::Exit { r0: 3 }), "{:?} on {f:?}", r.outcome);
    }
    engine
}

fn keys(engine: &mut Engine, name: &str) -> BTreeSet<u32> {
    let m = engine.maps_mut().by_name(name).unwrap();
    m.entries().iter().map(|e| u32::from_le_bytes(e.key[..4].try_into().unwrap())).collect()
}

#[test]
fn the_engine_keeps_the_hand_worked_contents() {
    assert_eq!(small_expected(2).len(), 13);
    for ncpus in [1, 2] {
        let mut e = engine_after(ncpus, &all_ops());
        assert_eq!(keys(&mut e, "lru"), common_lru_expected(), "{ncpus} CPUs");
        assert_eq!(keys(&mut e, "lru_percpu"), common_lru_expected(), "{ncpus} CPUs");
        assert_eq!(Some(keys(&mut e, "lru_nocommon")), nocommon_expected(ncpus), "{ncpus} CPUs");
        assert_eq!(keys(&mut e, "lru_small"), small_expected(ncpus), "{ncpus} CPUs");
        // The BPF_EXIST update of 500 wrote CPU 0's value in place.
        let m = e.maps_mut().by_name("lru_percpu").unwrap();
        let v = m.entries().into_iter().find(|x| x.key == 500u32.to_le_bytes()).unwrap();
        assert_eq!(v.values[0], (500u32 * 16 + 1).to_le_bytes(), "{ncpus} CPUs");
    }
}

#[test]
fn the_diff_against_the_host_kernel_agrees_on_packets_and_maps() {
    let dir = std::env::temp_dir().join(format!("xdpqual-lru-exact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = capture(&dir, all_ops());
    // The diff plays CPU 0 of the machine's possible CPUs, and runs the
    // kernel's program and map updates pinned to CPU 0.
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["diff", prog().to_str().unwrap(), cap.to_str().unwrap()])
        .args(["--backends", "vm,host", "--format", "json"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["backends"], serde_json::json!(["vm", "host"]), "{err}\n{v}");
    assert_eq!(v["agreed"].as_u64(), Some(all_ops().len() as u64), "{v}");
    assert_eq!(v["mismatch_count"].as_u64(), Some(0), "{v}");
    assert_eq!(v["map_mismatches"], serde_json::json!([]), "{v}");
    assert_eq!(o.status.code(), Some(0), "{err}\n{v}");
}
