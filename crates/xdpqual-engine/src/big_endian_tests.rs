//! The engine's big-endian mode on hand-assembled programs; every expected
//! value below is worked out from the byte layout, not taken from a run.

use super::*;
use xdpqual_isa::Insn;
use xdpqual_object::{MapOrigin, MapType};

fn prog(insns: Vec<Insn>) -> Program {
    Program {
        name: "be".into(),
        section: "xdp".into(),
        frags: false,
        insns,
        lines: Default::default(),
        functions: Vec::new(),
    }
}

fn engine(p: &Program, maps: &[MapDef], order: ByteOrder) -> Engine {
    let cfg = EngineConfig { byte_order: order, jit: true, ..Default::default() };
    Engine::for_program(p, maps, cfg).unwrap()
}

fn r0(e: &mut Engine, frame: &[u8]) -> u64 {
    let pkt = PacketIn { data: frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    match e.run_xdp(&pkt).outcome {
        Outcome::Exit { r0 } => r0,
        o => panic!("{o:?}"),
    }
}

#[test]
fn stack_and_packet_loads_follow_the_order() {
    // *(u32 *)(r10 - 4) = 0x11223344; r0 = *(u8 *)(r10 - 4); then
    // r0 += *(u16 *)(packet + 12) << 8.
    let p = prog(vec![
        Insn::new(0x62, 10, 0, -4, 0x1122_3344),
        Insn::new(0x71, 0, 10, -4, 0),
        Insn::new(0x61, 2, 1, 0, 0),  // r2 = ctx->data
        Insn::new(0x69, 3, 2, 12, 0), // r3 = *(u16 *)(r2 + 12)
        Insn::new(0x67, 3, 0, 0, 8),
        Insn::new(0x0f, 0, 3, 0, 0),
        Insn::new(0x95, 0, 0, 0, 0),
    ]);
    let mut frame = [0u8; 64];
    frame[12] = 0x08;
    frame[13] = 0x00;
    let mut be = engine(&p, &[], ByteOrder::Big);
    // Big-endian: the first byte of 0x11223344 is 0x11; bytes 08 00 are 0x0800.
    assert_eq!(r0(&mut be, &frame), 0x11 + (0x0800 << 8));
    assert!(
        matches!(be.exec_mode(), ExecMode::Fallback { reason } if reason.contains("big-endian"))
    );
    let mut le = engine(&p, &[], ByteOrder::Little);
    assert_eq!(r0(&mut le, &frame), 0x44 + (0x0008 << 8));
}

#[test]
fn end_ops_swap_the_other_way() {
    // r0 = 0x1122; be16 r0 (0xdc) -> no swap on BE; r1 = 0x1122; le16 r1
    // (0xd4) -> swapped on BE; r0 = r0 << 16 | r1.
    let p = prog(vec![
        Insn::new(0xb7, 0, 0, 0, 0x1122),
        Insn::new(0xdc, 0, 0, 0, 16),
        Insn::new(0xb7, 1, 0, 0, 0x1122),
        Insn::new(0xd4, 1, 0, 0, 16),
        Insn::new(0x67, 0, 0, 0, 16),
        Insn::new(0x4f, 0, 1, 0, 0),
        Insn::new(0x95, 0, 0, 0, 0),
    ]);
    let frame = [0u8; 64];
    assert_eq!(r0(&mut engine(&p, &[], ByteOrder::Big), &frame), 0x1122_2211);
    assert_eq!(r0(&mut engine(&p, &[], ByteOrder::Little), &frame), 0x2211_1122);
}

#[test]
fn array_index_and_atomics_are_big_endian() {
    let def = MapDef {
        name: "a".into(),
        map_type: MapType::Array,
        key_size: 4,
        value_size: 8,
        max_entries: 2,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    };
    // key = the bytes 00 00 00 01 on the stack (a u32 0, then byte 3 set);
    // v = lookup(a, &key); if !v return 7; lock *(u64 *)v += 0x0102;
    // return 1.
    let p = prog(vec![
        Insn::new(0x62, 10, 0, -4, 0),
        Insn::new(0x72, 10, 0, -1, 1),
        Insn::new(0x18, 1, 1, 0, 0),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(0xbf, 2, 10, 0, 0),
        Insn::new(0x07, 2, 0, 0, -4),
        Insn::new(0x85, 0, 0, 0, 1),
        Insn::new(0x55, 0, 0, 2, 0),
        Insn::new(0xb7, 0, 0, 0, 7),
        Insn::new(0x95, 0, 0, 0, 0),
        Insn::new(0xb7, 1, 0, 0, 0x0102),
        Insn::new(0xdb, 0, 1, 0, 0), // atomic add, 64-bit
        Insn::new(0xb7, 0, 0, 0, 1),
        Insn::new(0x95, 0, 0, 0, 0),
    ]);
    let frame = [0u8; 64];
    let mut be = engine(&p, std::slice::from_ref(&def), ByteOrder::Big);
    assert_eq!(r0(&mut be, &frame), 1, "big-endian bytes 00 00 00 01 are index 1");
    let entries = be.maps_mut().by_name("a").unwrap().entries();
    let one = entries.iter().find(|e| e.key == [0, 0, 0, 1]).expect("index 1 listed big-endian");
    assert_eq!(one.values[0], [0, 0, 0, 0, 0, 0, 1, 2], "the sum is stored big-endian");
    // Little-endian, the same bytes are index 0x01000000: out of range.
    let mut le = engine(&p, &[def], ByteOrder::Little);
    assert_eq!(r0(&mut le, &frame), 7);
}
