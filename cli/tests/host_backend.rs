//! The host-kernel backend against the running kernel.
//!
//! Programs are built instruction by instruction below; every expected value
//! is worked out from what the program does and from the kernel's rules in
//! net/bpf/test_run.c, never recorded from a run. Without the capabilities
//! (or the bpf syscall) each test prints `SKIP: <reason>` and returns.

use std::path::PathBuf;
use xdpqual::backends::host::{
    self, maps::BPF_F_RDONLY_PROG, prog, testrun, HostBackend, KernelMap, KernelProgram,
    LoadOptions, LoadOutcome, MapDump, MapError, RunFlags, SessionOutcome, TestRunError, XdpCtx,
};
use xdpqual::isa::{opcode as op, Insn};
use xdpqual::program::{LineTable, MapDef, MapOrigin, MapType, Object, Program};

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_TAIL_CALL: i32 = 12;

// ------------------------------------------------------------ a tiny builder

fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(op::ALU64 | op::MOV | op::K, dst, 0, 0, imm)
}
fn mov_reg(dst: u8, src: u8) -> Insn {
    Insn::new(op::ALU64 | op::MOV | op::X, dst, src, 0, 0)
}
fn add_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(op::ALU64 | op::ADD | op::K, dst, 0, 0, imm)
}
fn sub_reg(dst: u8, src: u8) -> Insn {
    Insn::new(op::ALU64 | op::SUB | op::X, dst, src, 0, 0)
}
fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(op::LDX | size | op::MODE_MEM, dst, src, off, 0)
}
fn st_imm(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
    Insn::new(op::ST | size | op::MODE_MEM, dst, 0, off, imm)
}
fn stx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(op::STX | size | op::MODE_MEM, dst, src, off, 0)
}
fn atomic_add64(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(op::STX | op::SIZE_DW | op::MODE_ATOMIC, dst, src, off, op::ATOMIC_ADD)
}
fn jgt_reg(dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(op::JMP | op::JGT | op::X, dst, src, off, 0)
}
fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(op::JMP | op::JNE | op::K, dst, 0, off, imm)
}
fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    Insn::new(op::JMP | op::JEQ | op::K, dst, 0, off, imm)
}
fn call(helper: i32) -> Insn {
    Insn::new(op::JMP | op::CALL, 0, 0, 0, helper)
}
fn exit() -> Insn {
    Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0)
}
/// `lddw dst, map` with an object-relative map index, as the loader emits.
fn ld_map(dst: u8, index: i32) -> [Insn; 2] {
    [Insn::new(op::LD_DW_IMM, dst, op::PSEUDO_MAP_FD, 0, index), Insn::new(0, 0, 0, 0, 0)]
}
/// `lddw dst, &map[index].value + offset`.
fn ld_map_value(dst: u8, index: i32, offset: i32) -> [Insn; 2] {
    [Insn::new(op::LD_DW_IMM, dst, op::PSEUDO_MAP_VALUE, 0, index), Insn::new(0, 0, 0, 0, offset)]
}

fn program(name: &str, insns: Vec<Insn>) -> Program {
    Program {
        name: name.to_string(),
        section: "xdp".to_string(),
        frags: false,
        insns,
        lines: LineTable::default(),
        functions: vec![(0, name.to_string())],
    }
}

fn flat(parts: Vec<Vec<Insn>>) -> Vec<Insn> {
    parts.into_iter().flatten().collect()
}

/// Return XDP_PASS.
fn pass_prog() -> Program {
    program("pass", vec![mov_imm(0, XDP_PASS as i32), exit()])
}

/// Drop IPv4-or-anything-with-byte-12 == 0x08 frames, pass the rest.
fn ethertype_prog() -> Program {
    program(
        "ethertype",
        vec![
            ldx(op::SIZE_W, 2, 1, 0),    // 0: r2 = ctx->data
            ldx(op::SIZE_W, 3, 1, 4),    // 1: r3 = ctx->data_end
            mov_reg(4, 2),               // 2: r4 = r2
            add_imm(4, 14),              // 3: r4 += 14
            jgt_reg(4, 3, 4),            // 4: if r4 > r3 goto 9
            ldx(op::SIZE_B, 5, 2, 12),   // 5: r5 = data[12]
            jne_imm(5, 0x08, 2),         // 6: if r5 != 8 goto 9
            mov_imm(0, XDP_DROP as i32), // 7
            exit(),                      // 8
            mov_imm(0, XDP_PASS as i32), // 9
            exit(),                      // 10
        ],
    )
}

/// Write 0xab to byte 16 and bounce the frame (XDP_TX); frames shorter than
/// 20 bytes are dropped.
fn rewrite_prog() -> Program {
    program(
        "rewrite",
        vec![
            ldx(op::SIZE_W, 2, 1, 0),
            ldx(op::SIZE_W, 3, 1, 4),
            mov_reg(4, 2),
            add_imm(4, 20),
            jgt_reg(4, 3, 3), // to the drop
            st_imm(op::SIZE_B, 2, 16, 0xab),
            mov_imm(0, XDP_TX as i32),
            exit(),
            mov_imm(0, XDP_DROP as i32),
            exit(),
        ],
    )
}

/// `counter[0] += 1` (atomically) on map 0, then XDP_PASS.
fn counter_prog() -> Program {
    program(
        "counter",
        flat(vec![
            vec![
                st_imm(op::SIZE_W, 10, -4, 0), // key = 0 on the stack
                mov_reg(2, 10),
                add_imm(2, -4),
            ],
            ld_map(1, 0).to_vec(),
            vec![
                call(HELPER_MAP_LOOKUP_ELEM),
                jeq_imm(0, 0, 2), // NULL: skip the add
                mov_imm(1, 1),
                atomic_add64(0, 1, 0),
                mov_imm(0, XDP_PASS as i32),
                exit(),
            ],
        ]),
    )
}

fn array_def(name: &str, map_type: MapType, value_size: u32) -> MapDef {
    MapDef {
        name: name.to_string(),
        map_type,
        key_size: 4,
        value_size,
        max_entries: 1,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    }
}

fn object(programs: Vec<Program>, maps: Vec<MapDef>) -> Object {
    Object {
        path: PathBuf::from("built-in-test.o"),
        programs,
        maps,
        license: "GPL".to_string(),
        byte_order: Default::default(),
        kfuncs: Default::default(),
        ksyms: Default::default(),
        btf: Default::default(),
    }
}

/// An Ethernet frame of `len` bytes: byte i is `i` (mod 251, so no byte is
/// 0xab where a test writes it), ethertype bytes set by the caller.
fn frame(len: usize, ethertype: [u8; 2]) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    if len >= 14 {
        f[12] = ethertype[0];
        f[13] = ethertype[1];
    }
    f
}

fn backend() -> Option<HostBackend> {
    match HostBackend::open() {
        Ok(b) => Some(b),
        Err(why) => {
            xdpqual::util::skip(format_args!("host-kernel backend unavailable: {why}"));
            None
        }
    }
}

fn load_ok(prog: &Program, maps: &[KernelMap]) -> KernelProgram {
    match KernelProgram::load(prog, maps, &LoadOptions::default()).expect("load call") {
        LoadOutcome::Loaded(p) => p,
        LoadOutcome::Rejected(r) => {
            panic!("verifier rejected `{}`: {:?}\n{}", prog.name, r.first_error_line, r.log)
        }
    }
}

fn run(p: &KernelProgram, packet: &[u8]) -> Result<testrun::TestRunResult, TestRunError> {
    testrun::test_run(p, packet, XdpCtx::loopback(), 1, RunFlags::default())
}

// ------------------------------------------------------------------ tests

#[test]
fn pass_returns_pass_and_the_frame_unchanged() {
    let Some(b) = backend() else { return };
    assert_eq!(
        b.kernel_release(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim()
    );
    let p = load_ok(&pass_prog(), &[]);
    let info = p.info();
    assert!(info.id > 0);
    // Two instructions, nothing for the kernel to rewrite: 2 * 8 bytes.
    assert_eq!(info.xlated_prog_len, 16);
    assert_eq!(info.verified_insns, 2);
    if std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable").is_ok_and(|s| s.trim() == "1") {
        assert!(info.jited_prog_len > 0, "JIT is on, so there is native code");
    }
    assert!(p.verifier_log().contains("processed 2 insns"), "{}", p.verifier_log());
    let f = frame(60, [0x86, 0xdd]);
    let r = run(&p, &f).unwrap();
    assert_eq!(r.retval, XDP_PASS);
    assert_eq!(r.data_out, f);
    let ctx = r.ctx_out.expect("ctx_out requested");
    assert_eq!((ctx.data, ctx.data_end), (0, 60));
}

#[test]
fn ethertype_decides_drop_or_pass() {
    let Some(_b) = backend() else { return };
    let p = load_ok(&ethertype_prog(), &[]);
    assert_eq!(run(&p, &frame(60, [0x08, 0x00])).unwrap().retval, XDP_DROP);
    assert_eq!(run(&p, &frame(60, [0x08, 0x06])).unwrap().retval, XDP_DROP);
    assert_eq!(run(&p, &frame(60, [0x86, 0xdd])).unwrap().retval, XDP_PASS);
    // Exactly 14 bytes passes the bounds check (r4 == r3 is not >).
    assert_eq!(run(&p, &frame(14, [0x08, 0x00])).unwrap().retval, XDP_DROP);
}

#[test]
fn rewrite_changes_exactly_one_byte() {
    let Some(_b) = backend() else { return };
    let p = load_ok(&rewrite_prog(), &[]);
    let input = frame(64, [0x08, 0x00]);
    let r = run(&p, &input).unwrap();
    assert_eq!(r.retval, XDP_TX);
    let mut expected = input.clone();
    expected[16] = 0xab;
    assert_ne!(input[16], 0xab);
    assert_eq!(r.data_out, expected);
    // 19 bytes fails the program's own 20-byte check: dropped, untouched.
    let short = frame(19, [0x08, 0x00]);
    let r = run(&p, &short).unwrap();
    assert_eq!(r.retval, XDP_DROP);
    assert_eq!(r.data_out, short);
}

#[test]
fn map_counter_counts_runs() {
    let Some(_b) = backend() else { return };
    let maps = vec![KernelMap::create(&array_def("counter", MapType::Array, 8)).unwrap()];
    let p = load_ok(&counter_prog(), &maps);
    for i in 0..5 {
        assert_eq!(run(&p, &frame(60 + i, [0x08, 0x00])).unwrap().retval, XDP_PASS);
    }
    // repeat = 3 runs the program three more times on one frame.
    let r = testrun::test_run(&p, &frame(60, [0, 0]), XdpCtx::loopback(), 3, RunFlags::default())
        .unwrap();
    assert_eq!(r.retval, XDP_PASS);
    let expected_count: u64 = 5 + 3;
    assert_eq!(
        maps[0].dump().unwrap(),
        MapDump::Plain(vec![(0u32.to_ne_bytes().to_vec(), expected_count.to_ne_bytes().to_vec())])
    );
}

#[test]
fn percpu_counter_sums_to_the_runs() {
    let Some(_b) = backend() else { return };
    let maps = vec![KernelMap::create(&array_def("pcpu", MapType::PercpuArray, 8)).unwrap()];
    // Per-CPU values are only touched by this CPU's run: a plain add is exact.
    let prog = program(
        "pcpu_counter",
        flat(vec![
            vec![st_imm(op::SIZE_W, 10, -4, 0), mov_reg(2, 10), add_imm(2, -4)],
            ld_map(1, 0).to_vec(),
            vec![
                call(HELPER_MAP_LOOKUP_ELEM),
                jeq_imm(0, 0, 3),
                ldx(op::SIZE_DW, 1, 0, 0),
                add_imm(1, 1),
                stx(op::SIZE_DW, 0, 1, 0),
                mov_imm(0, XDP_PASS as i32),
                exit(),
            ],
        ]),
    );
    let p = load_ok(&prog, &maps);
    for _ in 0..4 {
        run(&p, &frame(60, [0, 0])).unwrap();
    }
    let cpus = host::maps::possible_cpus().unwrap();
    match maps[0].dump().unwrap() {
        MapDump::PerCpu(entries) => {
            assert_eq!(entries.len(), 1);
            let (key, values) = &entries[0];
            assert_eq!(key, &0u32.to_ne_bytes().to_vec());
            assert_eq!(values.len(), cpus);
            let sum: u64 =
                values.iter().map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap())).sum();
            assert_eq!(sum, 4);
        }
        other => panic!("expected a per-CPU dump, got {other:?}"),
    }
}

#[test]
fn hash_map_element_operations() {
    let Some(_b) = backend() else { return };
    let def = MapDef { max_entries: 8, ..array_def("h", MapType::Hash, 4) };
    let m = KernelMap::create(&def).unwrap();
    assert_eq!(m.next_key(None).unwrap(), None);
    m.update(&1u32.to_ne_bytes(), &10u32.to_ne_bytes()).unwrap();
    m.update(&2u32.to_ne_bytes(), &20u32.to_ne_bytes()).unwrap();
    assert_eq!(m.lookup(&2u32.to_ne_bytes()).unwrap(), Some(20u32.to_ne_bytes().to_vec()));
    assert_eq!(m.lookup(&3u32.to_ne_bytes()).unwrap(), None);
    let MapDump::Plain(mut all) = m.dump().unwrap() else { panic!("plain map") };
    all.sort();
    assert_eq!(
        all,
        vec![
            (1u32.to_ne_bytes().to_vec(), 10u32.to_ne_bytes().to_vec()),
            (2u32.to_ne_bytes().to_vec(), 20u32.to_ne_bytes().to_vec()),
        ]
    );
    assert!(m.delete(&1u32.to_ne_bytes()).unwrap());
    assert!(!m.delete(&1u32.to_ne_bytes()).unwrap());
    assert!(matches!(m.update(&[0u8; 3], &[0u8; 4]), Err(MapError::Size { .. })));
    let ring = KernelMap::create(&MapDef {
        key_size: 0,
        value_size: 0,
        max_entries: 4096,
        ..array_def("rb", MapType::Ringbuf, 0)
    })
    .unwrap();
    assert_eq!(ring.dump().unwrap(), MapDump::NotDumpable(MapType::Ringbuf));
}

/// Dumps come in batches (BPF_MAP_LOOKUP_BATCH, 65,536 entries a call)
/// and leave out an array's slots of zeros; maps without batch operations
/// (LPM_TRIE) are walked key by key. Slots on both sides of the first
/// batch boundary are written.
#[test]
fn dumps_are_batched_and_leave_out_zero_slots() {
    let Some(_b) = backend() else { return };
    let k = |i: u32| i.to_ne_bytes().to_vec();
    let def = MapDef { max_entries: 200_000, ..array_def("big", MapType::Array, 4) };
    let a = KernelMap::create(&def).unwrap();
    for (i, v) in [(0u32, 1u32), (65_535, 2), (65_536, 3), (199_999, 4), (5, 0)] {
        a.update(&k(i), &v.to_ne_bytes()).unwrap();
    }
    let MapDump::Plain(got) = a.dump().unwrap() else { panic!("plain map") };
    let want: Vec<_> =
        [(0u32, 1u32), (65_535, 2), (65_536, 3), (199_999, 4)].map(|(i, v)| (k(i), k(v))).to_vec();
    assert_eq!(got, want, "array slots in index order, zeros left out");

    // A hash map over several batches keeps its elements of zeros.
    let def = MapDef { max_entries: 70_000, ..array_def("bighash", MapType::Hash, 4) };
    let h = KernelMap::create(&def).unwrap();
    for i in 0..70_000u32 {
        h.update(&k(i), &k(i % 2)).unwrap();
    }
    let MapDump::Plain(mut got) = h.dump().unwrap() else { panic!("plain map") };
    got.sort();
    let mut want: Vec<_> = (0..70_000u32).map(|i| (k(i), k(i % 2))).collect();
    want.sort();
    assert_eq!(got, want);

    // A per-CPU array: the slot written for every CPU, one value each.
    let cpus = host::maps::possible_cpus().unwrap();
    let def = MapDef { max_entries: 100_000, ..array_def("bigpcpu", MapType::PercpuArray, 4) };
    let p = KernelMap::create(&def).unwrap();
    p.update(&k(80_000), &[7u8, 0, 0, 0, 0, 0, 0, 0].repeat(cpus)).unwrap();
    assert_eq!(p.dump().unwrap(), MapDump::PerCpu(vec![(k(80_000), vec![vec![7, 0, 0, 0]; cpus])]));

    // LPM_TRIE has no batch lookup: the key walk finds both prefixes.
    let def = MapDef {
        key_size: 8,
        max_entries: 16,
        flags: 1, // BPF_F_NO_PREALLOC, which LPM_TRIE requires
        ..array_def("lpm", MapType::LpmTrie, 4)
    };
    let l = KernelMap::create(&def).unwrap();
    l.update(&[24, 0, 0, 0, 10, 0, 0, 0], &k(1)).unwrap();
    l.update(&[8, 0, 0, 0, 10, 0, 0, 0], &k(2)).unwrap();
    let MapDump::Plain(got) = l.dump().unwrap() else { panic!("plain map") };
    assert_eq!(got.len(), 2, "{got:?}");
}

#[test]
fn verifier_rejects_uninitialised_register() {
    let Some(_b) = backend() else { return };
    // r0 = r2 with r2 never written: the verifier's check_reg_arg says
    // "R2 !read_ok" at instruction 0.
    let p = program("uninit", vec![mov_reg(0, 2), exit()]);
    match KernelProgram::load(&p, &[], &LoadOptions::default()).unwrap() {
        LoadOutcome::Rejected(r) => {
            assert_eq!(r.errno.0, nix::errno::Errno::EACCES as i32, "{r:?}");
            assert_eq!(r.insn, Some(0), "{}", r.log);
            assert_eq!(r.first_error_line.as_deref(), Some("R2 !read_ok"), "{}", r.log);
        }
        LoadOutcome::Loaded(_) => panic!("reading an uninitialised register must be refused"),
    }
}

#[test]
fn verifier_rejects_unchecked_packet_read() {
    let Some(_b) = backend() else { return };
    // Reading data[12] without comparing against data_end: the verifier
    // refuses instruction 1 (check_packet_access: "invalid access to packet").
    let p = program("oob", vec![ldx(op::SIZE_W, 2, 1, 0), ldx(op::SIZE_B, 0, 2, 12), exit()]);
    match KernelProgram::load(&p, &[], &LoadOptions::default()).unwrap() {
        LoadOutcome::Rejected(r) => {
            assert_eq!(r.insn, Some(1), "{}", r.log);
            let line = r.first_error_line.unwrap();
            assert!(line.starts_with("invalid access to packet"), "{line}");
            assert!(r.log.contains("1: (71) r0 = *(u8 *)(r2 +12)"), "{}", r.log);
        }
        LoadOutcome::Loaded(_) => panic!("an unchecked packet read must be refused"),
    }
}

#[test]
fn verifier_rejects_unreachable_code_before_walking() {
    let Some(_b) = backend() else { return };
    // Instruction 2 can never run: check_cfg refuses it before the walk,
    // so the message itself names the instruction.
    let p = program("dead", vec![mov_imm(0, 2), exit(), mov_imm(0, 1), exit()]);
    match KernelProgram::load(&p, &[], &LoadOptions::default()).unwrap() {
        LoadOutcome::Rejected(r) => {
            assert_eq!(r.errno.0, nix::errno::Errno::EINVAL as i32);
            assert_eq!(r.first_error_line.as_deref(), Some("unreachable insn 2"), "{}", r.log);
            assert_eq!(r.insn, Some(2));
        }
        LoadOutcome::Loaded(_) => panic!("unreachable code must be refused"),
    }
}

#[test]
fn short_frame_is_a_per_packet_error() {
    let Some(_b) = backend() else { return };
    let p = load_ok(&pass_prog(), &[]);
    let err = run(&p, &[0u8; 10]).unwrap_err();
    assert_eq!(err, TestRunError::FrameTooShort { len: 10 });
    assert!(err.is_per_packet());
    // And the same without a context (the path older kernels take).
    let err =
        testrun::test_run(&p, &[0u8; 10], XdpCtx::loopback(), 1, RunFlags { without_ctx: true })
            .unwrap_err();
    assert_eq!(err, TestRunError::FrameTooShort { len: 10 });
}

#[test]
fn context_reaches_the_program() {
    let Some(_b) = backend() else { return };
    // return ctx->ingress_ifindex (offset 12 in struct xdp_md)
    let p = load_ok(&program("ifindex", vec![ldx(op::SIZE_W, 0, 1, 12), exit()]), &[]);
    let lo = XdpCtx::loopback();
    let r = run(&p, &frame(60, [0, 0])).unwrap();
    assert_eq!(r.retval, lo.ingress_ifindex);
    assert_eq!(r.ctx_out.unwrap().ingress_ifindex, lo.ingress_ifindex);
    let nowhere = XdpCtx { ingress_ifindex: 0x7fff_fff0, ..lo };
    assert_eq!(
        testrun::test_run(&p, &frame(60, [0, 0]), nowhere, 1, RunFlags::default()).unwrap_err(),
        TestRunError::NoSuchDevice(0x7fff_fff0)
    );
}

#[test]
fn metadata_precedes_the_frame() {
    let Some(_b) = backend() else { return };
    // return data - data_meta (ctx offsets 0 and 8): the metadata length.
    let p = load_ok(
        &program(
            "metalen",
            vec![
                ldx(op::SIZE_W, 2, 1, 0),
                ldx(op::SIZE_W, 3, 1, 8),
                mov_reg(0, 2),
                sub_reg(0, 3),
                exit(),
            ],
        ),
        &[],
    );
    let mut input = vec![0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];
    input.extend(frame(60, [0x08, 0x00]));
    let ctx = XdpCtx { data_meta_len: 8, ..XdpCtx::loopback() };
    let r = testrun::test_run(&p, &input, ctx, 1, RunFlags::default()).unwrap();
    assert_eq!(r.retval, 8);
    assert_eq!(r.data_out, input);
    assert_eq!(r.ctx_out.unwrap().data, 8);
    assert_eq!(r.frame(), &input[8..]);
}

#[test]
fn rodata_is_frozen_and_readable_by_value() {
    let Some(_b) = backend() else { return };
    let init: Vec<u8> = 0x1122_3344_5566_7788u64.to_ne_bytes().to_vec();
    let def = MapDef {
        origin: MapOrigin::GlobalData,
        initial_data: Some(init.clone()),
        read_only: true,
        inner: None,
        init_slots: Vec::new(),
        ..array_def(".rodata", MapType::Array, 8)
    };
    let maps = vec![KernelMap::create(&def).unwrap()];
    // User space can no longer write it (frozen: map_get_sys_perms drops
    // FMODE_CAN_WRITE, so BPF_MAP_UPDATE_ELEM says EPERM)...
    match maps[0].update(&0u32.to_ne_bytes(), &[0u8; 8]) {
        Err(MapError::Op { errno, .. }) => assert_eq!(errno.0, nix::errno::Errno::EPERM as i32),
        other => panic!("update of a frozen map must fail with EPERM, got {other:?}"),
    }
    assert_eq!(maps[0].lookup(&0u32.to_ne_bytes()).unwrap(), Some(init.clone()));
    // ...a program reads it through a PSEUDO_MAP_VALUE lddw (offset 4: the
    // upper half of the native-endian u64)...
    let reader = program(
        "ro_read",
        flat(vec![ld_map_value(1, 0, 4).to_vec(), vec![ldx(op::SIZE_W, 0, 1, 0), exit()]]),
    );
    let p = load_ok(&reader, &maps);
    let upper = u32::from_ne_bytes(init[4..8].try_into().unwrap());
    assert_eq!(run(&p, &frame(60, [0, 0])).unwrap().retval, upper);
    // ...and may not store into it (BPF_F_RDONLY_PROG): refused at insn 2.
    assert_ne!(
        maps[0].def().flags & BPF_F_RDONLY_PROG,
        BPF_F_RDONLY_PROG,
        "flag is added at creation, not in the def"
    );
    let writer = program(
        "ro_write",
        flat(vec![
            ld_map_value(1, 0, 0).to_vec(),
            vec![st_imm(op::SIZE_W, 1, 0, 7), mov_imm(0, 2), exit()],
        ]),
    );
    match KernelProgram::load(&writer, &maps, &LoadOptions::default()).unwrap() {
        LoadOutcome::Rejected(r) => {
            assert_eq!(r.insn, Some(2), "{}", r.log);
            assert!(
                r.first_error_line.as_deref().unwrap_or("").contains("write into map forbidden"),
                "{}",
                r.log
            );
        }
        LoadOutcome::Loaded(_) => panic!("stores into .rodata must be refused"),
    }
}

#[test]
fn bad_map_reference_is_a_load_error() {
    let Some(_b) = backend() else { return };
    let p = program("badref", flat(vec![ld_map(1, 3).to_vec(), vec![mov_imm(0, 2), exit()]]));
    match KernelProgram::load(&p, &[], &LoadOptions::default()) {
        Err(prog::LoadError::BadMapReference { insn: 0, index: 3, maps: 0, .. }) => {}
        other => panic!("expected BadMapReference, got {other:?}"),
    }
}

#[test]
fn large_frames_split_into_fragments() {
    let Some(_b) = backend() else { return };
    // return data_end - data: the linear length the program can see.
    let linear_len = |frags: bool| {
        let mut p = program(
            if frags { "lin_frags" } else { "lin_plain" },
            vec![
                ldx(op::SIZE_W, 2, 1, 0),
                ldx(op::SIZE_W, 3, 1, 4),
                mov_reg(0, 3),
                sub_reg(0, 2),
                exit(),
            ],
        );
        p.frags = frags;
        p
    };
    let max_linear = testrun::max_linear_frame();
    let input = frame(5000, [0x08, 0x00]);
    for frags in [true, false] {
        let p = load_ok(&linear_len(frags), &[]);
        assert_eq!(p.frags(), frags);
        // Up to the linear limit everything is linear.
        let r = run(&p, &input[..max_linear]).unwrap();
        assert_eq!(r.retval as usize, max_linear);
        // Past it the kernel keeps `max_linear` bytes linear and puts the
        // rest in fragments, for frags and non-frags programs alike, and
        // hands back all 5000 bytes (bpf_prog_test_run_xdp, bpf_test_finish).
        let r = run(&p, &input).unwrap();
        assert_eq!(r.retval as usize, max_linear, "frags={frags}");
        assert_eq!(r.data_out, input);
    }
    // Linear part plus MAX_SKB_FRAGS pages is the most it takes.
    let p = load_ok(&linear_len(true), &[]);
    let at_limit = frame(testrun::max_frame(), [0, 0]);
    assert_eq!(run(&p, &at_limit).unwrap().data_out.len(), testrun::max_frame());
    let over = frame(testrun::max_frame() + 1, [0, 0]);
    let err = run(&p, &over).unwrap_err();
    assert!(matches!(err, TestRunError::FrameTooLarge { .. }), "{err:?}");
    assert!(err.is_per_packet());
}

#[test]
fn live_frames_mode_runs_batches() {
    let Some(_b) = backend() else { return };
    let p = load_ok(&program("drop", vec![mov_imm(0, XDP_DROP as i32), exit()]), &[]);
    let f = frame(64, [0x08, 0x00]);
    match testrun::test_run_live(&p, &f, XdpCtx::loopback(), 1000, 64) {
        Ok(_) => {}
        // Some kernel builds refuse live-frames mode outright (the CI
        // machine's 6.18.44-fc does, as root with CAP_BPF, CAP_NET_ADMIN and
        // CAP_SYS_ADMIN); the mode's own checks below need a kernel that runs it.
        Err(TestRunError::Kernel { errno }) if errno.0 == nix::errno::Errno::EPERM as i32 => {
            xdpqual::util::skip(format_args!(
                "live frames: this kernel refuses BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (EPERM)"
            ));
            return;
        }
        Err(e) => panic!("live-frames test-run: {e:?}"),
    }
    assert_eq!(
        testrun::test_run_live(&p, &f, XdpCtx::loopback(), 10, 257).unwrap_err(),
        TestRunError::BatchTooLarge(257)
    );
    let big = frame(testrun::max_linear_frame(), [0, 0]);
    let err = testrun::test_run_live(&p, &big, XdpCtx::loopback(), 1, 0).unwrap_err();
    assert!(matches!(err, TestRunError::LiveFrameTooLarge { .. }), "{err:?}");
}

#[test]
fn tail_calls_reach_other_programs_once_filled() {
    let Some(b) = backend() else { return };
    let jmp = MapDef { max_entries: 4, ..array_def("jmp_table", MapType::ProgArray, 4) };
    let main = program(
        "entry",
        flat(vec![
            ld_map(2, 0).to_vec(),
            vec![mov_imm(3, 0), call(HELPER_TAIL_CALL), mov_imm(0, XDP_PASS as i32), exit()],
        ]),
    );
    let target = program("target", vec![mov_imm(0, XDP_ABORTED as i32), exit()]);
    let obj = object(vec![main.clone(), target], vec![jmp]);
    let session = b.load(&obj, &main).unwrap().ready().expect("both programs verify");
    assert_eq!(session.programs().len(), 2, "the PROG_ARRAY makes the other program load too");
    let f = frame(60, [0, 0]);
    // Empty slot: bpf_tail_call falls through to the next instruction.
    assert_eq!(
        session.run(&f, XdpCtx::loopback(), 1, RunFlags::default()).unwrap().retval,
        XDP_PASS
    );
    session.set_tail_call("jmp_table", 0, "target").unwrap();
    assert_eq!(
        session.run(&f, XdpCtx::loopback(), 1, RunFlags::default()).unwrap().retval,
        XDP_ABORTED
    );
    assert!(session.set_tail_call("jmp_table", 0, "nope").is_err());
}

#[test]
fn rejected_main_program_is_reported_not_an_error() {
    let Some(b) = backend() else { return };
    let bad = program("bad", vec![mov_reg(0, 2), exit()]);
    let obj = object(vec![bad.clone()], vec![array_def("m", MapType::Array, 4)]);
    match b.load(&obj, &bad).unwrap() {
        SessionOutcome::Rejected(r) => {
            assert_eq!(r.program, "bad");
            assert_eq!(r.rejection.insn, Some(0));
        }
        SessionOutcome::Ready(_) => panic!("must be rejected"),
    }
}

/// Checks that none of `ids` (programs, maps) is still in the kernel.
/// Other processes may load programs meanwhile, so this compares our own
/// ids rather than totals. Closing the last fd unloads a program at once;
/// a map a program used is freed after an RCU grace period, and programs
/// held by a PROG_ARRAY are released when the array's last fd closes
/// (`prog_array_map_clear` via `map_release_uref`), so allow that to pass.
fn assert_released((prog_ids, map_ids): (Vec<u32>, Vec<u32>)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let progs_now = host::kernel_program_ids().unwrap();
        let maps_now = host::kernel_map_ids().unwrap();
        let progs_left: Vec<_> = prog_ids.iter().filter(|id| progs_now.contains(id)).collect();
        let maps_left: Vec<_> = map_ids.iter().filter(|id| maps_now.contains(id)).collect();
        if progs_left.is_empty() && maps_left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still in the kernel after the session ended: programs {progs_left:?}, maps {maps_left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn session_releases_everything_it_created() {
    let Some(b) = backend() else { return };
    let obj = object(vec![counter_prog()], vec![array_def("counter", MapType::Array, 8)]);
    let ids = {
        let session = b.load(&obj, &obj.programs[0]).unwrap().ready().unwrap();
        session.run(&frame(60, [0, 0]), XdpCtx::loopback(), 1, RunFlags::default()).unwrap();
        let ids = session.kernel_ids().unwrap();
        assert_eq!((ids.0.len(), ids.1.len()), (1, 1));
        let live = host::kernel_program_ids().unwrap();
        assert!(ids.0.iter().all(|id| live.contains(id)), "our program is listed while alive");
        assert!(host::count_kernel_programs().unwrap() >= 1);
        let live_maps = host::kernel_map_ids().unwrap();
        assert!(ids.1.iter().all(|id| live_maps.contains(id)));
        ids
    };
    assert_released(ids);
}

#[test]
fn filled_prog_array_does_not_keep_programs_alive() {
    let Some(b) = backend() else { return };
    // The array holds the target, the entry program holds the array: a
    // cycle the kernel breaks when user space lets go of the array.
    let jmp = MapDef { max_entries: 2, ..array_def("jmp", MapType::ProgArray, 4) };
    let main = program(
        "entry",
        flat(vec![
            ld_map(2, 0).to_vec(),
            vec![mov_imm(3, 0), call(HELPER_TAIL_CALL), mov_imm(0, XDP_PASS as i32), exit()],
        ]),
    );
    let target = program("target", vec![mov_imm(0, XDP_DROP as i32), exit()]);
    let obj = object(vec![main.clone(), target], vec![jmp]);
    let ids = {
        let session = b.load(&obj, &main).unwrap().ready().unwrap();
        session.set_tail_call("jmp", 0, "target").unwrap();
        session.set_tail_call("jmp", 1, "entry").unwrap();
        let r =
            session.run(&frame(60, [0, 0]), XdpCtx::loopback(), 1, RunFlags::default()).unwrap();
        assert_eq!(r.retval, XDP_DROP);
        session.kernel_ids().unwrap()
    };
    assert_eq!(ids.0.len(), 2);
    assert_released(ids);
}

#[test]
fn small_log_buffer_grows_until_the_log_fits() {
    let Some(_b) = backend() else { return };
    // 128 bytes is the kernel's minimum and too small for either log below:
    // the kernel answers ENOSPC (even for a refused program) and the loader
    // grows the buffer to the size the kernel reports. (At level 1 an
    // accepted program's log is only the summary line, since the verifier
    // resets the log after each path that reaches exit; level 2 keeps all.)
    let tiny = LoadOptions { log_size: 128, ..LoadOptions::default() };
    let verbose = LoadOptions { log_level: 2, ..tiny.clone() };
    let ok =
        KernelProgram::load(&ethertype_prog(), &[], &verbose).unwrap().loaded().expect("verifies");
    assert!(ok.verifier_log().contains("5: (71) r5 = *(u8 *)(r2 +12)"), "{}", ok.verifier_log());
    assert!(ok.verifier_log().len() > 128, "{}", ok.verifier_log());
    assert!(ok.verifier_log().contains("processed "), "{}", ok.verifier_log());
    let oob = program("oob", vec![ldx(op::SIZE_W, 2, 1, 0), ldx(op::SIZE_B, 0, 2, 12), exit()]);
    match KernelProgram::load(&oob, &[], &tiny).unwrap() {
        LoadOutcome::Rejected(r) => {
            assert!(!r.log_truncated);
            assert_eq!(r.insn, Some(1), "{}", r.log);
            assert!(r.first_error_line.unwrap().starts_with("invalid access to packet"));
        }
        LoadOutcome::Loaded(_) => panic!("must be refused"),
    }
}

#[test]
fn missing_exit_blames_the_last_instruction() {
    let Some(_b) = backend() else { return };
    let p = program("noexit", vec![mov_imm(0, 2), mov_imm(0, 1)]);
    match KernelProgram::load(&p, &[], &LoadOptions::default()).unwrap() {
        LoadOutcome::Rejected(r) => {
            assert_eq!(
                r.first_error_line.as_deref(),
                Some("last insn is not an exit or jmp"),
                "{}",
                r.log
            );
            assert_eq!(r.insn, Some(1));
        }
        LoadOutcome::Loaded(_) => panic!("a program without exit must be refused"),
    }
}

/// Objects from clang load BTF-aware (BTF, func_info, line_info), as
/// libbpf loads them; programs built without an ELF load without and say so.
#[test]
fn corpus_objects_load_with_their_btf() {
    let Some(host) = backend() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut loaded = 0;
    for name in ["firewall", "subprogs", "encap", "globals"] {
        let obj =
            xdpqual::loader::load_object(&root.join(format!("corpus/build/{name}.v4.o"))).unwrap();
        for p in &obj.programs {
            let s = host
                .load(&obj, p)
                .unwrap()
                .ready()
                .unwrap_or_else(|| panic!("{name} {} loads", p.name));
            assert!(
                s.program().btf().func_id().is_some(),
                "{name} {}: {:?}",
                p.name,
                s.program().btf()
            );
            loaded += 1;
        }
    }
    assert!(loaded >= 5);
    let s = host.load(&object(vec![pass_prog()], vec![]), &pass_prog()).unwrap().ready().unwrap();
    match s.program().btf() {
        host::BtfUse::Without(why) => assert!(why.contains("no BTF"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// The kernel's answers the engine's `redirect_map_broadcast_and_its_flags`
/// test works out from include/linux/filter.h `__bpf_xdp_redirect_map`:
/// a DEVMAP broadcast (flag 8) redirects although key 99 has no entry, a
/// flag outside the mask is XDP_ABORTED, and CPUMAP's mask is 0.
#[test]
fn redirect_map_broadcast_flags_in_the_kernel() {
    let Some(_b) = backend() else { return };
    let retval = |map_type: MapType, flags: i32| {
        let def = MapDef { max_entries: 2, ..array_def("m", map_type, 4) };
        let maps = vec![KernelMap::create(&def).unwrap()];
        let prog = program(
            "redir",
            flat(vec![
                ld_map(1, 0).to_vec(),
                vec![mov_imm(2, 99), mov_imm(3, flags), call(51), exit()],
            ]),
        );
        run(&load_ok(&prog, &maps), &frame(60, [0x08, 0x00])).unwrap().retval
    };
    const XDP_REDIRECT: u32 = 4;
    assert_eq!(retval(MapType::Devmap, 8), XDP_REDIRECT);
    assert_eq!(retval(MapType::Devmap, 8 | 16), XDP_REDIRECT);
    assert_eq!(retval(MapType::Devmap, 16 | 2), XDP_PASS);
    assert_eq!(retval(MapType::Devmap, 32), XDP_ABORTED);
    assert_eq!(retval(MapType::Cpumap, 8), XDP_ABORTED);
    assert_eq!(retval(MapType::Cpumap, 16 | 2), XDP_ABORTED);
}
