//! Arbitrary bytes as a program and a packet for the engine, which is the
//! sandbox for untrusted programs: whatever the bytes, preparing must accept
//! or refuse with an error, and running must end in an exit, a fault or a
//! not-run verdict. Any panic (including an out-of-bounds slice or an
//! arithmetic overflow, since fuzz builds keep debug assertions) is a bug.
//!
//! Input layout (all of it optional; short inputs read as zeros):
//!   byte 0      flags: bit 0 = `xdp.frags` program, bit 1 = give it the
//!               fixed map set below (else no maps, so map `lddw`s are
//!               refused at prepare time), bit 2 = also run it compiled
//!               and compare with the interpreter
//!   bytes 1..3  slot count N, little-endian u16 (capped by what follows)
//!   next 8*N    instruction slots, as in an ELF text section
//!   the rest    the packet (XDP run) and the flat memory (conformance run)
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpqual::engine::{Engine, EngineConfig, EngineError, ExecMode, PacketIn};
use xdpqual::isa::{Insn, INSN_SIZE};
use xdpqual::program::{MapDef, MapOrigin, MapType, Program};

/// Small enough that runaway loops cost microseconds, large enough for the
/// corpus programs' straight-line paths.
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

/// One map of each type the engine models, small so runs stay fast.
/// Object-relative indices 0..N are what a relocated `lddw` names.
fn maps() -> Vec<MapDef> {
    let mut rodata = map(".rodata", MapType::Array, 4, 16, 1);
    rodata.origin = MapOrigin::GlobalData;
    rodata.read_only = true;
    rodata.initial_data = Some((0u8..16).collect());
    vec![
        map("array", MapType::Array, 4, 8, 4),
        map("hash", MapType::Hash, 4, 8, 4),
        map("percpu_array", MapType::PercpuArray, 4, 8, 2),
        map("percpu_hash", MapType::PercpuHash, 8, 4, 2),
        map("lru_hash", MapType::LruHash, 4, 8, 2),
        map("lru_percpu_hash", MapType::LruPercpuHash, 4, 8, 2),
        map("lpm", MapType::LpmTrie, 8, 4, 4),
        map("prog_array", MapType::ProgArray, 4, 4, 2),
        map("devmap", MapType::Devmap, 4, 4, 2),
        map("devmap_hash", MapType::DevmapHash, 4, 4, 2),
        map("cpumap", MapType::Cpumap, 4, 4, 2),
        map("xskmap", MapType::Xskmap, 4, 4, 2),
        map("perf", MapType::PerfEventArray, 4, 4, 0),
        map("ringbuf", MapType::Ringbuf, 0, 0, 4096),
        rodata,
    ]
}

fuzz_target!(|data: &[u8]| {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let flags = byte(0);
    let want = u16::from_le_bytes([byte(1), byte(2)]) as usize;
    let rest = data.get(3..).unwrap_or(&[]);
    let n = want.min(rest.len() / INSN_SIZE);
    let (code, packet) = rest.split_at(n * INSN_SIZE);
    let insns: Vec<Insn> =
        code.chunks_exact(INSN_SIZE).map(|c| Insn::from_le_bytes(c.try_into().unwrap())).collect();

    let prog = Program {
        name: "fuzz".into(),
        section: if flags & 1 != 0 { "xdp.frags".into() } else { "xdp".into() },
        frags: flags & 1 != 0,
        insns: insns.clone(),
        lines: Default::default(),
        functions: vec![],
    };
    let maps = if flags & 2 != 0 { maps() } else { Vec::new() };
    let cfg = EngineConfig { insn_budget: BUDGET, ..EngineConfig::default() };
    let built = Engine::for_program(&prog, &maps, cfg.clone());
    if let Err(EngineError::Map(e)) = &built {
        panic!("the fixed map set must be valid: {e}");
    }
    if let Ok(mut engine) = built {
        let pkt = PacketIn { data: packet, ts_ns: 1, ingress_ifindex: 1, rx_queue_index: 0 };
        // Twice: the second run reuses the engine's buffer and sees the
        // first run's map updates, as consecutive packets do.
        let first = engine.run_xdp(&pkt);
        let second = engine.run_xdp(&pkt);
        // The JIT is the same sandbox in compiled code: the same program on
        // the same packets must end the same way, fault for fault, with the
        // same frame and events. Compiling costs milliseconds, so only the
        // inputs with flag bit 2 take this path.
        if flags & 4 != 0 {
            let mut jit = Engine::for_program(&prog, &maps, EngineConfig { jit: true, ..cfg })
                .expect("the interpreter's engine was built from the same program and maps");
            if *jit.exec_mode() == ExecMode::Jit {
                for (i, want) in [first, second].iter().enumerate() {
                    let got = jit.run_xdp(&pkt);
                    assert_eq!(got.outcome, want.outcome, "run {i}: outcome");
                    assert_eq!(got.output, want.output, "run {i}: output frame");
                    assert_eq!(got.insns, want.insns, "run {i}: instruction count");
                    assert_eq!(got.events, want.events, "run {i}: events");
                }
            }
        }
    }

    if let Ok(mut engine) = Engine::conformance(insns) {
        engine.config.insn_budget = BUDGET;
        let mut mem = packet.to_vec();
        engine.run_raw(&mut mem);
    }
});
