//! The "where did the engine go" hint printed for packets the backends
//! disagree on.
//!
//! The program is built by hand so the branch directions are known from
//! its text: for a 60-byte IPv6 frame, the bounds check at pc 4 falls
//! through (60 >= 14) and the EtherType test at pc 6 jumps (0x86 != 0x08).

use xdpqual::backends::host::HostBackend;
use xdpqual::backends::PacketSource;
use xdpqual::diff::divergence::{engine_branches, render_hint, BranchStep};
use xdpqual::diff::{self, BackendKind, DiffOptions};
use xdpqual::engine::{Engine, EngineConfig};
use xdpqual::isa::{opcode as op, Insn};
use xdpqual::program::{LineTable, MapDef, MapOrigin, MapType, Object, Program, SourceLine};

fn line(n: u32, text: &str) -> SourceLine {
    SourceLine { file: "/src/hint.c".into(), line: n, column: 1, text: text.into() }
}

/// Counts every packet in map 0, drops IPv4 (first EtherType byte 0x08),
/// passes the rest.
fn object() -> Object {
    let insns = vec![
        Insn::new(op::LDX | op::SIZE_W | op::MODE_MEM, 2, 1, 0, 0), // 0 r2 = data
        Insn::new(op::LDX | op::SIZE_W | op::MODE_MEM, 3, 1, 4, 0), // 1 r3 = data_end
        Insn::new(op::ALU64 | op::MOV | op::X, 4, 2, 0, 0),         // 2
        Insn::new(op::ALU64 | op::ADD | op::K, 4, 0, 0, 14),        // 3
        Insn::new(op::JMP | op::JGT | op::X, 4, 3, 8, 0),           // 4 short: goto 13
        Insn::new(op::LDX | op::SIZE_B | op::MODE_MEM, 5, 2, 12, 0), // 5
        Insn::new(op::JMP | op::JNE | op::K, 5, 0, 6, 0x08),        // 6 not IPv4: goto 13
        Insn::new(op::LD_DW_IMM, 1, op::PSEUDO_MAP_VALUE, 0, 0),    // 7 r1 = &count
        Insn::new(0, 0, 0, 0, 0),                                   // 8
        Insn::new(op::ALU64 | op::MOV | op::K, 6, 0, 0, 1),         // 9
        Insn::new(op::STX | op::SIZE_DW | op::MODE_ATOMIC, 1, 6, 0, op::ATOMIC_ADD), // 10
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 1),         // 11 XDP_DROP
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),                  // 12
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 2),         // 13 XDP_PASS
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),                  // 14
    ];
    let lines = LineTable {
        entries: vec![
            (0, line(10, "void *data = (void *)(long)ctx->data;")),
            (4, line(12, "if (data + 14 > data_end)")),
            (5, line(14, "if (eth[12] != 0x08)")),
            (7, line(16, "__sync_fetch_and_add(&count, 1);")),
            (13, line(19, "return XDP_PASS;")),
        ],
    };
    let prog = Program {
        name: "hint".into(),
        section: "xdp".into(),
        frags: false,
        insns,
        lines,
        functions: vec![(0, "hint".into())],
    };
    let map = MapDef {
        name: "count".into(),
        map_type: MapType::Array,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    };
    Object {
        path: "hint.o".into(),
        programs: vec![prog],
        maps: vec![map],
        license: "GPL".into(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    }
}

fn frame(ethertype: [u8; 2]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12..14].copy_from_slice(&ethertype);
    f
}

#[test]
fn branches_are_listed_with_direction_and_source() {
    let obj = object();
    let mut engine = Engine::new(&obj, None, EngineConfig::default()).expect("engine");
    let src =
        PacketSource { data: frame([0x86, 0xdd]), ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let b = engine_branches(&mut engine, &obj, &src);
    assert_eq!(
        b,
        vec![
            BranchStep {
                prog: 0,
                pc: 4,
                taken: false,
                source: Some("hint.c:12: if (data + 14 > data_end)".into())
            },
            BranchStep {
                prog: 0,
                pc: 6,
                taken: true,
                source: Some("hint.c:14: if (eth[12] != 0x08)".into())
            },
        ]
    );
    let text = render_hint(&obj, &b);
    assert!(text.starts_with("hint"), "{text}");
    assert!(text.contains("hint+4    not taken hint.c:12"), "{text}");
    assert!(text.contains("hint+6    taken     hint.c:14"), "{text}");
}

#[test]
fn the_rerun_leaves_the_maps_as_they_were() {
    let obj = object();
    let mut engine = Engine::new(&obj, None, EngineConfig::default()).expect("engine");
    let src =
        PacketSource { data: frame([0x08, 0x00]), ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let before = engine.maps().maps[0].entries();
    let b = engine_branches(&mut engine, &obj, &src);
    // IPv4: both branches fall through and the counter is bumped...
    assert_eq!(b.iter().map(|s| (s.pc, s.taken)).collect::<Vec<_>>(), vec![(4, false), (6, false)]);
    // ...but only inside the re-run.
    assert_eq!(engine.maps().maps[0].entries(), before);
}

#[test]
fn only_the_last_branches_are_shown() {
    let obj = object();
    let many: Vec<BranchStep> =
        (0..25).map(|i| BranchStep { prog: 0, pc: i, taken: i % 2 == 0, source: None }).collect();
    let text = render_hint(&obj, &many);
    assert!(text.contains("last 10 of 25"), "{text}");
    assert!(!text.contains("hint+14 "), "{text}");
    assert!(text.contains("hint+15 "), "{text}");
    assert!(text.contains("hint+24 "), "{text}");
}

/// A real disagreement: queue 5 of loopback does not exist, so test-run
/// refuses the frame (EINVAL, net/bpf/test_run.c xdp_convert_md_to_buff)
/// while the engine runs it; the mismatch detail must carry the hint.
#[test]
fn diff_mismatch_detail_carries_the_hint() {
    if let Err(u) = HostBackend::open() {
        xdpqual::util::skip(format_args!("host kernel backend unavailable: {u}"));
        return;
    }
    let obj = object();
    let dir = std::env::temp_dir().join(format!("xdpqual-hint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("one.pcap");
    xdpqual::capture::write_pcap(
        &pcap,
        xdpqual::capture::TsPrecision::Microsecond,
        [(0u64, frame([0x86, 0xdd]))],
    )
    .expect("write pcap");
    let opts = DiffOptions {
        backends: vec![BackendKind::Host],
        maps: vec![],
        rx_queue_index: 5,
        max_reported: 5,
        fib: None,
        conntrack: None,
    };
    let report = diff::run(&obj, &obj.programs[0], &[pcap], &opts).expect("diff");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(report.tally.mismatch_count, 1, "{report:#?}");
    let detail = &report.mismatches[0].detail;
    assert!(detail.contains("hint (engine path only"), "{detail}");
    assert!(detail.contains("hint+6    taken     hint.c:14"), "{detail}");
}
