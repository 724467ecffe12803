//! The JIT's map fast paths (inline `ARRAY`/`PERCPU_ARRAY` lookups, inline
//! map-value loads and stores, the direct lookup call) against the
//! interpreter: every case runs under both, and must end the same way
//! (result, fault and its instruction, instruction count). Expected values
//! are worked out from the kernel's rules (kernel/bpf/arraymap.c
//! `array_map_lookup_elem` / `percpu_array_map_lookup_elem`: the element
//! `index * elem_size`, this CPU's copy for a per-CPU array, NULL at or
//! past `max_entries`) and the engine's address layout (`memory.rs`: map
//! `i`'s values are region `TAG_MAP_VALUE_BASE + i`, a per-CPU value's CPU
//! part at `cpu * round_up(value_size, 8)` in its slot).

use crate::budget::{Resource, RunLimits};
use crate::fault::FaultKind;
use crate::helpers::ids::MAP_LOOKUP_ELEM;
use crate::maps::tests::def;
use crate::memory::{addr, TAG_MAP_VALUE_BASE};
use crate::{Engine, EngineConfig, ExecMode, Executor, Outcome, PacketIn, RunResult};
use xdpqual_isa::Insn;
use xdpqual_object::{MapDef, MapType, Program};

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R10: u8 = 10;
const MISS: i32 = 0xdead;

fn prog(insns: Vec<Insn>) -> Program {
    Program {
        name: "fast".into(),
        section: "xdp".into(),
        frags: false,
        insns,
        lines: Default::default(),
        functions: Vec::new(),
    }
}

/// `r1 = map 0` (`lddw` with BPF_PSEUDO_MAP_FD).
fn map0(dst: u8) -> [Insn; 2] {
    [Insn::new(0x18, dst, 1, 0, 0), Insn::new(0, 0, 0, 0, 0)]
}

/// `*(u32 *)(r10 - 4) = key; r1 = map; r2 = r10 - 4; call lookup`, then
/// `then` when the result is not NULL, else `r0 = MISS; exit`.
fn lookup_then(key: i32, then: &[Insn]) -> Vec<Insn> {
    let mut p = vec![Insn::new(0x62, R10, 0, -4, key)];
    p.extend(map0(R1));
    p.push(Insn::new(0xbf, R2, R10, 0, 0));
    p.push(Insn::new(0x07, R2, 0, 0, -4));
    p.push(Insn::new(0x85, 0, 0, 0, MAP_LOOKUP_ELEM));
    // if r0 == 0 goto the miss exit
    p.push(Insn::new(0x15, R0, 0, then.len() as i16, 0));
    p.extend_from_slice(then);
    p.push(Insn::new(0xb7, R0, 0, 0, MISS));
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

/// `r0 = *(size *)(r0 + off); exit`.
fn read(size: u8, off: i16) -> [Insn; 2] {
    [Insn::new(0x61 & !0x18 | size, R0, R0, off, 0), Insn::new(0x95, 0, 0, 0, 0)]
}
const W: u8 = 0x00;
const DW: u8 = 0x18;

fn exit() -> [Insn; 1] {
    [Insn::new(0x95, 0, 0, 0, 0)]
}

/// An engine of `p` over `maps`, with `fill` applied to its maps.
fn engine(
    p: &Program,
    maps: &[MapDef],
    cfg: &EngineConfig,
    jit: bool,
    fill: &dyn Fn(&mut Engine),
) -> Engine {
    let mut e = Engine::for_program(p, maps, EngineConfig { jit, ..cfg.clone() }).unwrap();
    if jit {
        assert_eq!(e.exec_mode(), &ExecMode::Jit);
    }
    fill(&mut e);
    e
}

/// Runs `p` once under each executor (one-shot `run_xdp`, then a batch of
/// three packets on a fresh engine, whose first result must be the same
/// again); both must agree in everything; returns the interpreter's.
fn both(p: &Program, maps: &[MapDef], cfg: &EngineConfig, fill: &dyn Fn(&mut Engine)) -> RunResult {
    let frame = [0u8; 64];
    let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let a = engine(p, maps, cfg, false, fill).run_xdp(&pkt);
    let b = engine(p, maps, cfg, true, fill).run_xdp(&pkt);
    assert_eq!(a.outcome, b.outcome, "interpreter and JIT end differently");
    assert_eq!(a.insns, b.insns, "interpreter and JIT count differently");
    assert_eq!(b.executor, Some(Executor::Jit));
    let mut batch = crate::batch::Batch::new();
    let mut e = engine(p, maps, cfg, true, fill);
    e.run_batch(&[pkt, pkt, pkt], &mut batch);
    assert_eq!(batch.executor(), Some(Executor::Jit));
    let first = batch.result(0);
    assert_eq!(first.outcome, a.outcome, "the JIT's batch ends differently");
    assert_eq!(first.insns, a.insns);
    a
}

fn r0(r: &RunResult) -> u64 {
    match &r.outcome {
        Outcome::Exit { r0 } => *r0,
        o => panic!("expected an exit, got {o:?}"),
    }
}

fn fault(r: &RunResult) -> (usize, FaultKind) {
    match &r.outcome {
        Outcome::Fault(f) => (f.pc, f.kind.clone()),
        o => panic!("expected a fault, got {o:?}"),
    }
}

/// An ARRAY of 4 u64 values `0x1000 + slot`.
fn array_fill(e: &mut Engine) {
    let m = e.maps_mut().by_name("m").unwrap();
    for k in 0u32..4 {
        assert_eq!(m.update(&k.to_le_bytes(), &(0x1000 + k as u64).to_le_bytes(), 0, None), 0);
    }
}

#[test]
fn array_lookups_in_and_out_of_range() {
    let maps = [def(MapType::Array, 4, 8, 4)];
    let cfg = EngineConfig::default();
    for k in 0..4 {
        let p = prog(lookup_then(k, &read(DW, 0)));
        assert_eq!(r0(&both(&p, &maps, &cfg, &array_fill)), 0x1000 + k as u64, "key {k}");
    }
    // At or past max_entries, and the largest u32: NULL.
    for k in [4, 5, -1] {
        let p = prog(lookup_then(k, &read(DW, 0)));
        assert_eq!(r0(&both(&p, &maps, &cfg, &array_fill)), MISS as u64, "key {k}");
    }
    // The value pointer is the engine address of slot 2: offset 2 * 8.
    let p = prog(lookup_then(2, &exit()));
    assert_eq!(r0(&both(&p, &maps, &cfg, &array_fill)), addr(TAG_MAP_VALUE_BASE, 16));
}

#[test]
fn map_value_accesses_check_as_the_interpreter_does() {
    let maps = [def(MapType::Array, 4, 8, 4)];
    let cfg = EngineConfig::default();
    // Back from slot 1 into slot 0: still a whole value, readable.
    let p = prog(lookup_then(1, &read(DW, -8)));
    assert_eq!(r0(&both(&p, &maps, &cfg, &array_fill)), 0x1000);
    // The high half of slot 1: 0 (values are little-endian u64s).
    let p = prog(lookup_then(1, &read(W, 4)));
    assert_eq!(r0(&both(&p, &maps, &cfg, &array_fill)), 0);
    // 8 bytes from the middle of slot 1 straddle slots 1 and 2: a fault at
    // the load (instruction 7), and past the last slot too.
    for (k, off) in [(1, 4), (3, 8)] {
        let p = prog(lookup_then(k, &read(DW, off)));
        let (pc, kind) = fault(&both(&p, &maps, &cfg, &array_fill));
        assert_eq!(pc, 7, "key {k} off {off}");
        assert!(matches!(kind, FaultKind::OutOfBounds { .. }), "{kind:?}");
    }
    // Below slot 0 the offset wraps into the tag below the map's: no
    // region at all.
    let (pc, kind) = fault(&both(&prog(lookup_then(0, &read(DW, -8))), &maps, &cfg, &array_fill));
    assert_eq!(pc, 7);
    assert!(matches!(kind, FaultKind::NotAPointer { .. }), "{kind:?}");
    // A store into a read-only (`.rodata`) map faults; a load does not.
    let ro = [MapDef { read_only: true, ..def(MapType::Array, 4, 8, 4) }];
    let store = [Insn::new(0x7a, R0, 0, 0, 7), Insn::new(0x95, 0, 0, 0, 0)];
    let (pc, kind) = fault(&both(&prog(lookup_then(1, &store)), &ro, &cfg, &array_fill));
    assert_eq!(pc, 7);
    assert!(matches!(kind, FaultKind::ReadOnly { .. }), "{kind:?}");
    let p = prog(lookup_then(1, &read(DW, 0)));
    assert_eq!(r0(&both(&p, &ro, &cfg, &array_fill)), 0x1001);
    // A 12-byte value: the stride is no power of two, so the JIT's slow
    // path (the interpreter's own check) answers; the same results.
    let odd = [def(MapType::Array, 4, 12, 4)];
    let none = |_: &mut Engine| {};
    let p = prog(lookup_then(1, &read(W, 8)));
    assert_eq!(r0(&both(&p, &odd, &cfg, &none)), 0);
    let (pc, _) = fault(&both(&prog(lookup_then(1, &read(DW, 8))), &odd, &cfg, &none));
    assert_eq!(pc, 7);
}

#[test]
fn percpu_array_lookups_give_this_cpus_part() {
    // value_size 4: each CPU's part is 8 bytes (rounded up), a slot of
    // two CPUs 16.
    let maps = [def(MapType::PercpuArray, 4, 4, 3)];
    let fill = |e: &mut Engine| {
        let m = e.maps_mut().by_name("m").unwrap();
        for k in 0u32..3 {
            for cpu in 0..2usize {
                let v = 0x100 * (k + 1) + cpu as u32;
                assert_eq!(m.update(&k.to_le_bytes(), &v.to_le_bytes(), 0, Some(cpu)), 0);
            }
        }
    };
    let two = EngineConfig { ncpus: 2, cpu: 1, ..Default::default() };
    let p = prog(lookup_then(2, &exit()));
    assert_eq!(r0(&both(&p, &maps, &two, &fill)), addr(TAG_MAP_VALUE_BASE, 2 * 16 + 8));
    let p = prog(lookup_then(2, &read(W, 0)));
    assert_eq!(r0(&both(&p, &maps, &two, &fill)), 0x301);
    let p = prog(lookup_then(3, &read(W, 0)));
    assert_eq!(r0(&both(&p, &maps, &two, &fill)), MISS as u64);
    // Back into CPU 0's part of the slot: not this CPU's, a fault. So is
    // an 8-byte read that starts in CPU 0's padding and ends inside this
    // CPU's value (an offset check that subtracted this CPU's part and
    // then added the size would wrap around to "inside"), and a read of
    // this CPU's padding.
    for (size, off) in [(W, -8), (DW, -4), (W, -4), (W, 4), (DW, 0)] {
        let (pc, _) = fault(&both(&prog(lookup_then(2, &read(size, off))), &maps, &two, &fill));
        assert_eq!(pc, 7, "size {size:#x} at {off}");
    }
    // CPU 0 of two reads its own part, and not CPU 1's.
    let cpu0 = EngineConfig { ncpus: 2, cpu: 0, ..Default::default() };
    let p = prog(lookup_then(2, &read(W, 0)));
    assert_eq!(r0(&both(&p, &maps, &cpu0, &fill)), 0x300);
    let (pc, _) = fault(&both(&prog(lookup_then(2, &read(W, 8))), &maps, &cpu0, &fill));
    assert_eq!(pc, 7);

    // One CPU: slots of 8, the 4 bytes after the value are padding.
    let one = EngineConfig::default();
    let fill1 = |e: &mut Engine| {
        let m = e.maps_mut().by_name("m").unwrap();
        assert_eq!(m.update(&1u32.to_le_bytes(), &0x55u32.to_le_bytes(), 0, Some(0)), 0);
    };
    let p = prog(lookup_then(1, &exit()));
    assert_eq!(r0(&both(&p, &maps, &one, &fill1)), addr(TAG_MAP_VALUE_BASE, 8));
    let p = prog(lookup_then(1, &read(W, 0)));
    assert_eq!(r0(&both(&p, &maps, &one, &fill1)), 0x55);
    let (pc, _) = fault(&both(&prog(lookup_then(1, &read(W, 4))), &maps, &one, &fill1));
    assert_eq!(pc, 7);
}

#[test]
fn hash_lookups_through_the_direct_call() {
    let maps = [def(MapType::Hash, 4, 8, 8)];
    let fill = |e: &mut Engine| {
        let m = e.maps_mut().by_name("m").unwrap();
        assert_eq!(m.update(&7u32.to_le_bytes(), &77u64.to_le_bytes(), 0, None), 0);
    };
    let cfg = EngineConfig::default();
    let p = prog(lookup_then(7, &read(DW, 0)));
    assert_eq!(r0(&both(&p, &maps, &cfg, &fill)), 77);
    let p = prog(lookup_then(8, &read(DW, 0)));
    assert_eq!(r0(&both(&p, &maps, &cfg, &fill)), MISS as u64);
}

/// A hash map's key is read where it is when it lies in the stack or the
/// packet (`Exec::key_in_place`), and through `Exec::slice` otherwise: both
/// find the same element, and a key `slice` refuses faults at the call
/// with `slice`'s fault. At depth 0 the frame is the stack's top 512 bytes
/// (`[STACK_SIZE - FRAME_SIZE, STACK_SIZE)`); the packet is the 64-byte
/// frame `both` runs, `[data_meta, data_end)` with no metadata.
#[test]
fn hash_keys_in_place_and_not_fault_as_slice_does() {
    use crate::fault::Region;
    use crate::memory::{offset_of, FRAME_SIZE, STACK_SIZE, TAG_STACK};
    let maps = [def(MapType::Hash, 4, 8, 8)];
    let cfg = EngineConfig::default();
    // Key 0 (the packet's bytes, the stack's) holds 0x55; key 7 holds 77.
    let fill = |e: &mut Engine| {
        let m = e.maps_mut().by_name("m").unwrap();
        assert_eq!(m.update(&0u32.to_le_bytes(), &0x55u64.to_le_bytes(), 0, None), 0);
        assert_eq!(m.update(&7u32.to_le_bytes(), &77u64.to_le_bytes(), 0, None), 0);
    };
    // The stack: r2 moved from r10 - 4 by `delta` before the call (at 6).
    let stack = |delta: i32| {
        let mut p = lookup_then(7, &read(DW, 0));
        p.insert(5, Insn::new(0x07, R2, 0, 0, delta));
        prog(p)
    };
    assert_eq!(r0(&both(&stack(0), &maps, &cfg, &fill)), 77);
    // r10 - 8: the zeros below the key.
    assert_eq!(r0(&both(&stack(-4), &maps, &cfg, &fill)), 0x55);
    let top = STACK_SIZE as u64;
    let frame = (top - FRAME_SIZE as u64, top);
    // Straddling the top of the stack, past it, below the frame.
    for (delta, off) in [(2, top - 2), (4, top), (-512, top - 516)] {
        let (pc, kind) = fault(&both(&stack(delta), &maps, &cfg, &fill));
        assert_eq!(pc, 6);
        assert_eq!(
            kind,
            FaultKind::OutOfBounds {
                addr: addr(TAG_STACK, off),
                size: 4,
                write: false,
                region: Region::Stack,
                valid: frame
            }
        );
    }
    // The packet: the key at data + `at` (zeros: key 0), the call at 5.
    for (at, ok) in [(0, true), (60, true), (61, false), (64, false)] {
        let mut p = vec![Insn::new(0x61, 6, R1, 0, 0)]; // r6 = ctx->data
        p.extend(map0(R1));
        p.push(Insn::new(0xbf, R2, 6, 0, 0));
        p.push(Insn::new(0x07, R2, 0, 0, at));
        p.push(Insn::new(0x85, 0, 0, 0, MAP_LOOKUP_ELEM));
        p.push(Insn::new(0x15, R0, 0, 2, 0));
        p.extend(read(DW, 0));
        p.push(Insn::new(0xb7, R0, 0, 0, MISS));
        p.extend(exit());
        let r = both(&prog(p), &maps, &cfg, &fill);
        if ok {
            assert_eq!(r0(&r), 0x55);
            continue;
        }
        let (pc, kind) = fault(&r);
        assert_eq!(pc, 5);
        let FaultKind::OutOfBounds { addr: a, size: 4, write: false, region, valid } = kind else {
            panic!("{kind:?}")
        };
        assert_eq!(region, Region::Packet);
        assert_eq!(valid.1 - valid.0, 64, "the 64-byte frame");
        assert_eq!(offset_of(a), valid.0 + at as u64);
    }
}

/// A key in a map value (here another map's) is copied, not read in place:
/// map 0, an ARRAY, holds u64 `0x1000 + slot`; the value of slot 1 read as
/// a 4-byte key is 0x1001, which map 1, a HASH, holds with value 99.
#[test]
fn a_hash_key_in_a_map_value_is_found() {
    let maps = [
        MapDef { name: "a".into(), ..def(MapType::Array, 4, 8, 4) },
        MapDef { name: "h".into(), ..def(MapType::Hash, 4, 8, 4) },
    ];
    let fill = |e: &mut Engine| {
        let a = e.maps_mut().by_name("a").unwrap();
        for k in 0u32..4 {
            assert_eq!(a.update(&k.to_le_bytes(), &(0x1000 + k as u64).to_le_bytes(), 0, None), 0);
        }
        let h = e.maps_mut().by_name("h").unwrap();
        assert_eq!(h.update(&0x1001u32.to_le_bytes(), &99u64.to_le_bytes(), 0, None), 0);
    };
    // After the array lookup: r1 = map 1; r2 = r0; call; r0 = *r0.
    let then = [
        Insn::new(0x18, R1, 1, 0, 1),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0xbf, R2, R0, 0, 0),
        Insn::new(0x85, 0, 0, 0, MAP_LOOKUP_ELEM),
        Insn::new(0x15, R0, 0, 2, 0),
        read(DW, 0)[0],
        exit()[0],
        Insn::new(0xb7, R0, 0, 0, MISS - 1),
        exit()[0],
    ];
    let p = prog(lookup_then(1, &then));
    assert_eq!(r0(&both(&p, &maps, &EngineConfig::default(), &fill)), 99);
    let p = prog(lookup_then(2, &then));
    assert_eq!(r0(&both(&p, &maps, &EngineConfig::default(), &fill)), (MISS - 1) as u64);
}

/// Lookups the fast path must hand to the helper, which faults at the call
/// (instruction 5 of `lookup_then`'s layout) as in the interpreter.
#[test]
fn bad_lookups_fault_at_the_call() {
    let maps = [def(MapType::Array, 4, 8, 4)];
    let cfg = EngineConfig::default();
    let with = |patch: Insn| {
        let mut p = lookup_then(0, &read(DW, 0));
        p.insert(5, patch); // before the call, now at 6
        prog(p)
    };
    // r1 not a map reference.
    let (pc, kind) = fault(&both(&with(Insn::new(0xb7, R1, 0, 0, 5)), &maps, &cfg, &array_fill));
    assert_eq!(pc, 6);
    assert!(matches!(kind, FaultKind::HelperArgument { .. }), "{kind:?}");
    // The key pointer: NULL, then the top of the stack (4 bytes past it).
    let (pc, kind) = fault(&both(&with(Insn::new(0xb7, R2, 0, 0, 0)), &maps, &cfg, &array_fill));
    assert_eq!(pc, 6);
    assert!(matches!(kind, FaultKind::NotAPointer { .. }), "{kind:?}");
    let (pc, kind) = fault(&both(&with(Insn::new(0x07, R2, 0, 0, 4)), &maps, &cfg, &array_fill));
    assert_eq!(pc, 6);
    assert!(matches!(kind, FaultKind::OutOfBounds { .. }), "{kind:?}");
    // The key read from the packet (all zeros there: key 0), in range and
    // 2 bytes past its end (a fault at the call, instruction 5).
    for (at, ok) in [(0, true), (62, false)] {
        let mut p = vec![Insn::new(0x61, 6, R1, 0, 0)]; // r6 = ctx->data
        p.extend(map0(R1));
        p.push(Insn::new(0xbf, R2, 6, 0, 0));
        p.push(Insn::new(0x07, R2, 0, 0, at));
        p.push(Insn::new(0x85, 0, 0, 0, MAP_LOOKUP_ELEM));
        p.push(Insn::new(0x15, R0, 0, 2, 0));
        p.extend(read(DW, 0));
        p.push(Insn::new(0xb7, R0, 0, 0, MISS));
        p.extend(exit());
        let r = both(&prog(p), &maps, &cfg, &array_fill);
        if ok {
            assert_eq!(r0(&r), 0x1000);
        } else {
            let (pc, kind) = fault(&r);
            assert_eq!(pc, 5);
            assert!(matches!(kind, FaultKind::OutOfBounds { .. }), "{kind:?}");
        }
    }
}

/// Each lookup charges its 4-byte key as one unit of helper work
/// (`Budget::work`, 8 bytes a unit, rounded up), inline or not: with a
/// limit of 2 units the third lookup faults, at its own call.
#[test]
fn lookups_charge_helper_work() {
    let maps = [def(MapType::Array, 4, 8, 4), def(MapType::Hash, 4, 8, 4)];
    let cfg = |units| EngineConfig {
        limits: RunLimits { helper_work: units, ..Default::default() },
        ..Default::default()
    };
    for hash in [0, 1] {
        let mut p = vec![Insn::new(0x62, R10, 0, -4, 1)];
        for _ in 0..3 {
            p.extend([Insn::new(0x18, R1, 1, 0, hash), Insn::new(0, 0, 0, 0, 0)]);
            p.push(Insn::new(0xbf, R2, R10, 0, 0));
            p.push(Insn::new(0x07, R2, 0, 0, -4));
            p.push(Insn::new(0x85, 0, 0, 0, MAP_LOOKUP_ELEM));
        }
        p.extend(exit());
        let p = prog(p);
        let none = |_: &mut Engine| {};
        // Calls at 5, 10, 15.
        let (pc, kind) = fault(&both(&p, &maps, &cfg(2), &none));
        assert_eq!(pc, 15, "map {hash}");
        assert!(
            matches!(kind, FaultKind::ResourceExhausted { resource: Resource::HelperWork, .. }),
            "{kind:?}"
        );
        // Three units are enough: the array's slot 1, a miss in the hash
        // map (NULL).
        let want = if hash == 0 { addr(TAG_MAP_VALUE_BASE, 8) } else { 0 };
        assert_eq!(r0(&both(&p, &maps, &cfg(3), &none)), want);
    }
}

/// A value changed by inline loads and stores carries from packet to
/// packet of a batch, as in the interpreter: slot 1 counts the packets.
#[test]
fn batched_counts_in_an_array_value() {
    let maps = [def(MapType::Array, 4, 8, 4), def(MapType::PercpuArray, 4, 8, 4)];
    for m in [0, 1] {
        // r1 = *(u64 *)r0 + 1; *(u64 *)r0 = r1; r0 = r1
        let mut then = vec![
            Insn::new(0x79, R1, R0, 0, 0),
            Insn::new(0x07, R1, 0, 0, 1),
            Insn::new(0x7b, R0, R1, 0, 0),
            Insn::new(0xbf, R0, R1, 0, 0),
        ];
        then.extend(exit());
        let mut p = lookup_then(1, &then);
        p[1] = Insn::new(0x18, R1, 1, 0, m);
        let p = prog(p);
        let frame = [0u8; 64];
        let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
        let pkts = vec![pkt; 5];
        for jit in [false, true] {
            let mut e =
                Engine::for_program(&p, &maps, EngineConfig { jit, ..Default::default() }).unwrap();
            let mut out = crate::batch::Batch::new();
            e.run_batch(&pkts, &mut out);
            let got: Vec<u64> = (0..5).map(|i| r0(&out.result(i))).collect();
            assert_eq!(got, [1, 2, 3, 4, 5], "map {m} jit {jit}");
            // And the next batch goes on from 5.
            e.run_batch(&pkts[..1], &mut out);
            assert_eq!(r0(&out.result(0)), 6);
        }
    }
}

/// `op` of `size` bytes (0x18 for 8, 0x00 for 4) on the u64 at r6, with
/// `src` in r2 and `r0` in r0; returns `mem ^ r2 << 24 ^ r0 << 48` after it.
fn atomic_tail(size: u8, op: i32, src: u64, r0: i32) -> Vec<Insn> {
    vec![
        Insn::new(0x18, R2, 0, 0, src as u32 as i32),
        Insn::new(0, 0, 0, 0, (src >> 32) as i32),
        Insn::new(0xb7, R0, 0, 0, r0),
        Insn::new(0xc3 | size, 6, R2, 0, op),
        Insn::new(0x79, 3, 6, 0, 0),
        Insn::new(0x67, R2, 0, 0, 24),
        Insn::new(0xaf, 3, R2, 0, 0),
        Insn::new(0x67, R0, 0, 0, 48),
        Insn::new(0xaf, R0, 3, 0, 0),
        Insn::new(0x95, 0, 0, 0, 0),
    ]
}

/// Atomics on the stack and on map values run in place in compiled code;
/// every operation, both sizes, must end as in the interpreter, including
/// where they fault (packet) or write a read-only value. Memory holds
/// 0x1000 before each; expected values from the kernel's semantics
/// (Documentation/bpf/standardization/instruction-set.rst, "Atomic
/// operations": a 32-bit operation works on the low word and a fetch
/// zero-extends the old value into `src`; `cmpxchg` compares with r0,
/// stores `src` when equal, and always loads the old value into r0).
#[test]
fn atomics_in_place_match_the_interpreter() {
    use xdpqual_isa::opcode::*;
    let maps = [def(MapType::Array, 4, 8, 4)];
    let ro = [MapDef { read_only: true, ..def(MapType::Array, 4, 8, 4) }];
    let cfg = EngineConfig::default();
    let fill0 = |e: &mut Engine| {
        let m = e.maps_mut().by_name("m").unwrap();
        assert_eq!(m.update(&0u32.to_le_bytes(), &0x1000u64.to_le_bytes(), 0, None), 0);
    };
    // r6 = the u64 each region holds.
    let on_stack = |tail: Vec<Insn>| {
        let mut p = vec![Insn::new(0x7a, R10, 0, -8, 0x1000), Insn::new(0xbf, 6, R10, 0, 0)];
        p.push(Insn::new(0x07, 6, 0, 0, -8));
        p.extend(tail);
        prog(p)
    };
    let in_map = |tail: Vec<Insn>| {
        let mut then = vec![Insn::new(0xbf, 6, R0, 0, 0)];
        then.extend(tail);
        prog(lookup_then(0, &then))
    };
    let pack = |mem: u64, r2: u64, r0: u64| mem ^ r2 << 24 ^ r0 << 48;
    let big = 0x1_0000_1f0fu64;
    let ops = [
        ATOMIC_ADD,
        ATOMIC_ADD | ATOMIC_FETCH,
        ATOMIC_OR,
        ATOMIC_OR | ATOMIC_FETCH,
        ATOMIC_AND,
        ATOMIC_AND | ATOMIC_FETCH,
        ATOMIC_XOR,
        ATOMIC_XOR | ATOMIC_FETCH,
        ATOMIC_XCHG,
        ATOMIC_CMPXCHG,
    ];
    let mut checked = 0;
    for region in 0..2 {
        for size in [0x18u8, 0x00] {
            for op in ops {
                for r0_in in [0x77, 0x1000] {
                    let tail = atomic_tail(size, op, big, r0_in);
                    let p = if region == 0 { on_stack(tail) } else { in_map(tail) };
                    let got = r0(&both(&p, &maps, &cfg, &fill0));
                    // The operand as the operation sees it.
                    let s = if size == 0 { big & 0xffff_ffff } else { big };
                    let (mem, r2, r0) = match op {
                        ATOMIC_CMPXCHG if r0_in == 0x1000 => (s, big, 0x1000),
                        ATOMIC_CMPXCHG => (0x1000, big, 0x1000),
                        ATOMIC_XCHG => (s, 0x1000, r0_in as u64),
                        _ => {
                            let mem = match op & !ATOMIC_FETCH {
                                ATOMIC_ADD => 0x1000 + s,
                                ATOMIC_OR => 0x1000 | s,
                                ATOMIC_AND => 0x1000 & s,
                                _ => 0x1000 ^ s,
                            };
                            let r2 = if op & ATOMIC_FETCH != 0 { 0x1000 } else { big };
                            (mem, r2, r0_in as u64)
                        }
                    };
                    assert_eq!(got, pack(mem, r2, r0), "region {region} size {size} op {op:#x}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 80);
    // A read-only value: a compare-and-exchange that fails writes nothing
    // and does not fault; one that succeeds, or an add, faults at the
    // atomic (instruction 11: 7 for the lookup's, then r6, lddw, mov).
    let p = in_map(atomic_tail(0x18, ATOMIC_CMPXCHG, 5, 0x77));
    assert_eq!(r0(&both(&p, &ro, &cfg, &fill0)), pack(0x1000, 5, 0x1000));
    for (op, r0_in) in [(ATOMIC_CMPXCHG, 0x1000), (ATOMIC_ADD, 0)] {
        let (pc, kind) = fault(&both(&in_map(atomic_tail(0x18, op, 5, r0_in)), &ro, &cfg, &fill0));
        assert_eq!(pc, 11, "op {op:#x}");
        assert!(matches!(kind, FaultKind::ReadOnly { .. }), "{kind:?}");
    }
    // On the packet: the verifier refuses it; the engine faults.
    let mut p = vec![Insn::new(0x61, 6, R1, 0, 0)];
    p.extend(atomic_tail(0x18, ATOMIC_ADD, 1, 0));
    let (pc, kind) = fault(&both(&prog(p), &maps, &cfg, &fill0));
    assert_eq!(pc, 4);
    assert!(matches!(kind, FaultKind::NotModelled { .. }), "{kind:?}");
    // The top of the stack: out of bounds.
    let mut p = vec![Insn::new(0xbf, 6, R10, 0, 0)];
    p.extend(atomic_tail(0x00, ATOMIC_ADD, 1, 0));
    let (pc, kind) = fault(&both(&prog(p), &maps, &cfg, &fill0));
    assert_eq!(pc, 4);
    assert!(matches!(kind, FaultKind::OutOfBounds { .. }), "{kind:?}");
}

/// Pseudo-random lookups and value accesses (a fixed-seed generator, so a
/// failure repeats): map type and value size, key (in range, past the end,
/// the largest u32), access offset around the value, size, and a load, a
/// store or an atomic add; under both executors, one packet and a batch,
/// everything must agree. Covers the cases the tests above do not name,
/// with no expected value but the interpreter's (the tests above work
/// theirs out).
#[test]
fn random_map_accesses_agree_with_the_interpreter() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let types = [
        (MapType::Array, 8),
        (MapType::Array, 16),
        (MapType::Array, 12),
        (MapType::Array, 4),
        (MapType::PercpuArray, 8),
        (MapType::PercpuArray, 4),
        (MapType::Hash, 8),
    ];
    let fill = |e: &mut Engine| {
        let m = e.maps_mut().by_name("m").unwrap();
        let vs = m.def.value_size as usize;
        for k in 0..m.def.max_entries.min(3) {
            let v: Vec<u8> = (0..vs).map(|i| (k as usize * 16 + i) as u8 + 1).collect();
            assert_eq!(m.update(&k.to_le_bytes(), &v, 0, None), 0);
        }
    };
    let (mut exits, mut faults) = (0, 0);
    for _ in 0..300 {
        let (t, vs) = types[next(types.len() as u64) as usize];
        let n = 1 + next(4) as u32;
        let maps = [def(t, 4, vs, n)];
        let key = [0, 1, 2, 3, 4, -1][next(6) as usize];
        let size = [0x10u8, 0x08, 0x00, 0x18][next(4) as usize];
        let off = next(40) as i16 - 12;
        let then = match next(3) {
            0 => read(size, off).to_vec(),
            1 => vec![
                Insn::new(0x62 | size, R0, 0, off, 0x5a5a_5a5a),
                Insn::new(0x79, R0, R0, 0, 0),
                Insn::new(0x95, 0, 0, 0, 0),
            ],
            _ => {
                let size = if size == 0x18 { 0x18 } else { 0x00 };
                vec![
                    Insn::new(0xb7, R1, 0, 0, 3),
                    Insn::new(0xc3 | size, R0, R1, off, 1), // fetch-add
                    Insn::new(0xbf, R0, R1, 0, 0),
                    Insn::new(0x95, 0, 0, 0, 0),
                ]
            }
        };
        let ncpus = 1 + next(2) as usize;
        let cfg = EngineConfig { ncpus, cpu: next(ncpus as u64) as usize, ..Default::default() };
        let r = both(&prog(lookup_then(key, &then)), &maps, &cfg, &fill);
        match r.outcome {
            Outcome::Exit { .. } => exits += 1,
            Outcome::Fault(_) => faults += 1,
            o => panic!("{o:?}"),
        }
    }
    // Both kinds of ending were exercised.
    assert!(exits > 50 && faults > 50, "{exits} exits, {faults} faults");
}

/// The engine keeps the compiled code's run context from one `run_xdp` to
/// the next (`Engine::session`). Between two calls user space may change
/// the maps: here an update that grows a hash map's value store until it
/// moves, then a reset. The next run must see the maps as they are (the
/// session rebuilds its map table on every one-shot run), never the store
/// the table pointed to before, which has been freed.
#[test]
fn a_kept_run_context_sees_maps_changed_between_runs() {
    let maps = [def(MapType::Hash, 4, 8, 4096)];
    let p = prog(lookup_then(7, &read(DW, 0)));
    let frame = [0u8; 64];
    let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let put = |e: &mut Engine, k: u32, v: u64| {
        let m = e.maps_mut().by_name("m").unwrap();
        assert_eq!(m.update(&k.to_le_bytes(), &v.to_le_bytes(), 0, None), 0);
    };
    for jit in [false, true] {
        let mut e = engine(&p, &maps, &EngineConfig::default(), jit, &|e| put(e, 7, 77));
        assert_eq!(r0(&e.run_xdp(&pkt)), 77, "jit: {jit}");
        let store = e.maps().maps[0].values.as_ptr();
        for k in 100..4000 {
            put(&mut e, k, k as u64);
        }
        put(&mut e, 7, 99);
        assert_ne!(e.maps().maps[0].values.as_ptr(), store, "the store did not move");
        assert_eq!(r0(&e.run_xdp(&pkt)), 99, "jit: {jit}");
        e.reset_maps();
        assert_eq!(r0(&e.run_xdp(&pkt)), MISS as u64, "jit: {jit}");
    }
}
