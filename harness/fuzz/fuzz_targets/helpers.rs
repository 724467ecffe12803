//! Every helper the engine models, called with hostile arguments: sizes
//! near 2^64, wild and forged pointers, negative lengths, huge format
//! widths. The program is `set up; r1..r5 = fuzz values; call helper;
//! (again); exit`, run by the interpreter and by the JIT. Whatever the
//! arguments, the run must end in an exit or a per-packet fault (never a
//! panic, an abort or an allocation the budgets did not allow), and both
//! executors must end identically: outcome, instruction count, events,
//! frame and maps.
//!
//! Input layout (short inputs read as zeros):
//!   byte 0        flags: bit 0 = `xdp.frags` program, bit 1 = make the
//!                 second call too
//!   2 x 46 bytes  one call each: helper index (into the engine's table of
//!                 modelled helpers, `ids::SUPPORTED`), then for r1..r5 a
//!                 kind byte and a u64 LE value (see `arg`)
//!   64 bytes      stack contents at r10-64 (format strings, keys, ...)
//!   the rest      the packet (padded to 14 bytes, an Ethernet header)
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpqual::engine::helpers::ids;
use xdpqual::engine::{Engine, EngineConfig, ExecMode, PacketIn};
use xdpqual::isa::Insn;
use xdpqual::program::{MapDef, MapOrigin, MapType, Program};

const BUDGET: u64 = 10_000;

fn map(name: &str, map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type,
        key_size,
        value_size,
        max_entries,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    }
}

/// Map 0 is the array whose value r7 points to (1 KiB, so sizes up to
/// that can be valid); one map of each other modelled type follows.
fn maps() -> Vec<MapDef> {
    let mut lpm = map("lpm", MapType::LpmTrie, 8, 4, 4);
    lpm.flags = 1; // BPF_F_NO_PREALLOC, as lpm_trie.c requires
    vec![
        map("big", MapType::Array, 4, 1024, 2),
        map("hash", MapType::Hash, 4, 8, 4),
        map("percpu_array", MapType::PercpuArray, 4, 8, 2),
        map("percpu_hash", MapType::PercpuHash, 8, 4, 2),
        map("lru_hash", MapType::LruHash, 4, 8, 2),
        lpm,
        map("prog_array", MapType::ProgArray, 4, 4, 2),
        map("devmap", MapType::Devmap, 4, 4, 2),
        map("devmap_hash", MapType::DevmapHash, 4, 4, 2),
        map("cpumap", MapType::Cpumap, 4, 4, 2),
        map("xskmap", MapType::Xskmap, 4, 4, 2),
        map("perf", MapType::PerfEventArray, 4, 4, 1),
        map("ringbuf", MapType::Ringbuf, 0, 0, 4096),
    ]
}

const N_MAPS: u64 = 13;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}
fn lddw(out: &mut Vec<Insn>, dst: u8, src: u8, v: u64) {
    out.push(ins(0x18, dst, src, 0, v as u32 as i32));
    out.push(ins(0, 0, 0, 0, (v >> 32) as u32 as i32));
}

/// Sets register `r` from a kind byte and a value:
/// 0 the raw value; 1 r10 + v (stack, wild offsets too); 2 packet data + v;
/// 3 ctx + v; 4 map reference #(v mod maps); 5 the big array's value + v;
/// 6 2^64 - 1 - (v & 0xff) (sizes near 2^64); 7 v & 0x3ff (plausible
/// sizes); 8 the bpf_loop callback at the end of the program; 9 the first
/// call's r0 + v (a ringbuf record, a looked-up value, ...).
/// Wild offsets are 32-bit (`v as i32`), as a program's immediates are.
fn arg(out: &mut Vec<Insn>, callback_fixups: &mut Vec<usize>, r: u8, kind: u8, v: u64) {
    let base = |out: &mut Vec<Insn>, src: u8| {
        out.push(ins(0xbf, r, src, 0, 0));
        out.push(ins(0x07, r, 0, 0, v as i32));
    };
    match kind % 10 {
        0 => lddw(out, r, 0, v),
        1 => base(out, 10),
        2 => base(out, 8),
        3 => base(out, 6),
        4 => lddw(out, r, 1, v % N_MAPS),
        5 => base(out, 7),
        6 => lddw(out, r, 0, u64::MAX - (v & 0xff)),
        7 => lddw(out, r, 0, v & 0x3ff),
        8 => {
            callback_fixups.push(out.len());
            lddw(out, r, 4, 0);
        }
        _ => base(out, 9),
    }
}

fuzz_target!(|data: &[u8]| {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let word = |i: usize| u64::from_le_bytes(std::array::from_fn(|k| byte(i + k)));
    let flags = byte(0);
    let mut p = Vec::new();
    let mut fixups = Vec::new();
    // r6 = ctx; stack bytes; r8 = data; r7 = &big[0]; r9 = 0.
    p.push(ins(0xbf, 6, 1, 0, 0));
    for k in 0..8 {
        lddw(&mut p, 0, 0, word(1 + 2 * 46 + 8 * k));
        p.push(ins(0x7b, 10, 0, -64 + 8 * k as i16, 0));
    }
    p.push(ins(0x61, 8, 6, 0, 0)); // r8 = ctx->data
    p.push(ins(0x62, 10, 0, -72, 0)); // *(u32 *)(r10 - 72) = 0
    lddw(&mut p, 1, 1, 0);
    p.push(ins(0xbf, 2, 10, 0, 0));
    p.push(ins(0x07, 2, 0, 0, -72));
    p.push(ins(0x85, 0, 0, 0, ids::MAP_LOOKUP_ELEM));
    p.push(ins(0xbf, 7, 0, 0, 0));
    p.push(ins(0xb7, 9, 0, 0, 0));
    let calls = if flags & 2 != 0 { 2 } else { 1 };
    for c in 0..calls {
        let at = 1 + 46 * c;
        let (id, _) = ids::SUPPORTED[byte(at) as usize % ids::SUPPORTED.len()];
        for r in 0..5u8 {
            let o = at + 1 + 9 * r as usize;
            arg(&mut p, &mut fixups, r + 1, byte(o), word(o + 1));
        }
        p.push(ins(0x85, 0, 0, 0, id));
        p.push(ins(0xbf, 9, 0, 0, 0)); // r9 = r0
    }
    p.push(ins(0x95, 0, 0, 0, 0));
    // The bpf_loop callback: return (i & 1), so some loops stop early.
    let callback = p.len();
    p.push(ins(0xbf, 0, 1, 0, 0));
    p.push(ins(0x57, 0, 0, 0, 1));
    p.push(ins(0x95, 0, 0, 0, 0));
    for at in fixups {
        p[at].imm = (callback as i64 - at as i64 - 1) as i32;
    }

    let prog = Program {
        name: "helpers".into(),
        section: if flags & 1 != 0 { "xdp.frags".into() } else { "xdp".into() },
        frags: flags & 1 != 0,
        insns: p,
        lines: Default::default(),
        functions: vec![(callback, "callback".into())],
    };
    let mut packet = data.get(1 + 2 * 46 + 64..).unwrap_or(&[]).to_vec();
    if packet.len() < 14 {
        packet.resize(14, 0);
    }
    let maps = maps();
    let cfg = EngineConfig { insn_budget: BUDGET, ..EngineConfig::default() };
    let mut interp = Engine::for_program(&prog, &maps, cfg.clone())
        .unwrap_or_else(|e| panic!("the generated program must prepare: {e}"));
    let mut jit = Engine::for_program(&prog, &maps, EngineConfig { jit: true, ..cfg })
        .unwrap_or_else(|e| panic!("the generated program must prepare: {e}"));
    assert_eq!(*jit.exec_mode(), ExecMode::Jit, "the generated program must compile");
    let pkt = PacketIn { data: &packet, ts_ns: 1, ingress_ifindex: 1, rx_queue_index: 0 };
    let want = interp.run_xdp(&pkt);
    let got = jit.run_xdp(&pkt);
    assert_eq!(got.outcome, want.outcome, "outcome");
    assert_eq!(got.insns, want.insns, "instruction count");
    assert_eq!(got.events, want.events, "events");
    assert_eq!(got.output, want.output, "output frame");
    assert_eq!(got.redirect, want.redirect, "redirect");
    for (a, b) in interp.maps().maps.iter().zip(&jit.maps().maps) {
        assert_eq!(a.entries(), b.entries(), "map '{}'", a.def.name);
    }
});
