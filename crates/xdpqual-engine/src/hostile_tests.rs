//! Hostile programs against the engine's budgets, map limits and panic
//! containment, each run under the interpreter and the JIT: both must end
//! the same way, with the same fault message at the same instruction.
//!
//! Expected values come from the kernel's rules (cited at each test), not
//! from the engine's output.

use super::*;
use xdpqual_isa::Insn;
use xdpqual_object::{MapOrigin, MapType};

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R7: u8 = 7;
const R9: u8 = 9;
const R10: u8 = 10;

fn mov(dst: u8, imm: i32) -> Vec<Insn> {
    vec![Insn::new(0xb7, dst, 0, 0, imm)]
}
fn movr(dst: u8, src: u8) -> Vec<Insn> {
    vec![Insn::new(0xbf, dst, src, 0, 0)]
}
fn add(dst: u8, imm: i32) -> Vec<Insn> {
    vec![Insn::new(0x07, dst, 0, 0, imm)]
}
fn lddw(dst: u8, v: u64) -> Vec<Insn> {
    vec![Insn::new(0x18, dst, 0, 0, v as u32 as i32), Insn::new(0, 0, 0, 0, (v >> 32) as i32)]
}
fn map(dst: u8, idx: i32) -> Vec<Insn> {
    vec![Insn::new(0x18, dst, 1, 0, idx), Insn::new(0, 0, 0, 0, 0)]
}
fn call(id: i32) -> Vec<Insn> {
    vec![Insn::new(0x85, 0, 0, 0, id)]
}
fn exit() -> Vec<Insn> {
    vec![Insn::new(0x95, 0, 0, 0, 0)]
}
/// `*(u64 *)(r10 + off) = v`, through r0.
fn stack_u64(off: i16, v: u64) -> Vec<Insn> {
    let mut p = lddw(R0, v);
    p.push(Insn::new(0x7b, R10, R0, off, 0));
    p
}
/// `*(u32 *)(r10 + off) = imm`.
fn stack_u32(off: i16, imm: i32) -> Vec<Insn> {
    vec![Insn::new(0x62, R10, 0, off, imm)]
}
/// `goto +off`.
fn ja(off: i16) -> Vec<Insn> {
    vec![Insn::new(0x05, 0, 0, off, 0)]
}

fn prog(parts: Vec<Vec<Insn>>) -> Program {
    Program {
        name: "hostile".into(),
        section: "xdp".into(),
        frags: false,
        insns: parts.concat(),
        lines: Default::default(),
        functions: Vec::new(),
    }
}

fn def(name: &str, t: MapType, k: u32, v: u32, n: u32) -> MapDef {
    MapDef {
        name: name.into(),
        map_type: t,
        key_size: k,
        value_size: v,
        max_entries: n,
        flags: 0,
        origin: MapOrigin::BtfMaps,
        initial_data: None,
        read_only: false,
        inner: None,
        init_slots: Vec::new(),
    }
}

/// Runs `p` once on a 64-byte frame under both executors; asserts they end
/// identically and returns the interpreter's result.
fn both(p: &Program, maps: &[MapDef], cfg: EngineConfig) -> RunResult {
    let frame = [0u8; 64];
    let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let mut i = Engine::for_program(p, maps, EngineConfig { jit: false, ..cfg.clone() }).unwrap();
    let mut j = Engine::for_program(p, maps, EngineConfig { jit: true, ..cfg }).unwrap();
    assert_eq!(j.exec_mode(), &ExecMode::Jit);
    let a = i.run_xdp(&pkt);
    let b = j.run_xdp(&pkt);
    assert_eq!(a.outcome, b.outcome, "interpreter and JIT end differently");
    assert_eq!(a.insns, b.insns, "interpreter and JIT count differently");
    assert_eq!(a.events, b.events);
    assert_eq!(b.executor, Some(Executor::Jit));
    a
}

fn fault_text(r: &RunResult) -> String {
    match &r.outcome {
        Outcome::Fault(f) => f.to_string(),
        o => panic!("expected a fault, got {o:?}"),
    }
}

fn r0(r: &RunResult) -> u64 {
    match &r.outcome {
        Outcome::Exit { r0 } => *r0,
        o => panic!("expected an exit, got {o:?}"),
    }
}

/// `bpf_ringbuf_reserve(ring, size, 0)`; returns 1 when it gave a record
/// (which is discarded), 0 for NULL.
fn reserve_prog(size: u64) -> Program {
    prog(vec![
        map(R1, 0),
        lddw(R2, size),
        mov(R3, 0),
        call(helpers::ids::RINGBUF_RESERVE),
        vec![Insn::new(0x55, R0, 0, 2, 0)], // if r0 != 0 goto +2
        mov(R0, 0),
        exit(),
        movr(R1, R0),
        mov(R2, 0),
        call(helpers::ids::RINGBUF_DISCARD),
        mov(R0, 1),
        exit(),
    ])
}

/// kernel/bpf/ringbuf.c `__bpf_ringbuf_reserve`: a size over
/// RINGBUF_MAX_RECORD_SZ (UINT_MAX / 4) is NULL, and so is a record whose
/// 8-byte header and 8-alignment take it past the ring's size. Before the
/// fix, 2^64 - 8 wrapped the size computation and panicked ("capacity
/// overflow"), aborting the process under the JIT.
#[test]
fn ringbuf_reserve_of_huge_sizes_is_null_not_a_panic() {
    let ring = [def("rb", MapType::Ringbuf, 0, 0, 4096)];
    let cfg = EngineConfig::default();
    for size in [u64::MAX - 7, u64::MAX, u64::MAX / 2, (u32::MAX / 4) as u64 + 1, 4089] {
        assert_eq!(r0(&both(&reserve_prog(size), &ring, cfg.clone())), 0, "size {size:#x}");
    }
    // 4088 + 8 header = 4096: exactly the ring.
    assert_eq!(r0(&both(&reserve_prog(4088), &ring, cfg)), 1);
}

/// A ring the kernel accepts (128 KiB) still gets a record only while the
/// run's allocation budget allows it; past it the run faults, naming it.
#[test]
fn ringbuf_reservations_are_bounded_by_the_allocation_budget() {
    let ring = [def("rb", MapType::Ringbuf, 0, 0, 128 << 10)];
    let limits = budget::RunLimits { alloc_bytes: 4096, ..Default::default() };
    let cfg = EngineConfig { limits, ..Default::default() };
    assert_eq!(r0(&both(&reserve_prog(4096), &ring, cfg.clone())), 1);
    let r = both(&reserve_prog(4097), &ring, cfg);
    assert_eq!(
        fault_text(&r),
        "resource budget exhausted: allocated bytes (limit 4 KiB) at insn 5 of hostile"
    );
}

/// bpf_ringbuf_output's size is a u64; a size no memory region holds never
/// reaches an allocation.
#[test]
fn ringbuf_output_with_a_huge_size_faults_before_copying() {
    let ring = [def("rb", MapType::Ringbuf, 0, 0, 4096)];
    let p = prog(vec![
        map(R1, 0),
        movr(R2, R10),
        add(R2, -8),
        lddw(R3, u64::MAX - 7),
        mov(R4, 0),
        call(helpers::ids::RINGBUF_OUTPUT),
        exit(),
    ]);
    let r = both(&p, &ring, EngineConfig::default());
    assert!(fault_text(&r).starts_with("resource budget exhausted: helper work"), "{r:?}");
}

/// `"%99999999999d"`: bpf_trace_printk formats into MAX_BPRINTF_BUF (1024)
/// bytes (kernel/trace/bpf_trace.c, include/linux/bpf.h), so the line is
/// 1023 bytes; the helper returns bstr_printf's length of the whole line,
/// with the width clamped to vsprintf's FIELD_WIDTH_MAX ((1 << 23) - 1).
#[test]
fn printk_with_a_huge_width_is_cut_at_the_kernel_buffer() {
    let fmt = b"%99999999999d\0\0\0";
    let p = prog(vec![
        stack_u64(-16, u64::from_le_bytes(fmt[..8].try_into().unwrap())),
        stack_u64(-8, u64::from_le_bytes(fmt[8..].try_into().unwrap())),
        movr(R1, R10),
        add(R1, -16),
        mov(R2, 16),
        mov(R3, 7),
        call(helpers::ids::TRACE_PRINTK),
        exit(),
    ]);
    let r = both(&p, &[], EngineConfig::default());
    assert_eq!(r0(&r), (1 << 23) - 1);
    let [Event::TracePrintk { text }] = &r.events[..] else { panic!("{:?}", r.events) };
    assert_eq!(text.len(), 1023);
    // Right-aligned in 8388607 columns: the kept 1023 bytes are padding.
    assert!(text.bytes().all(|b| b == b' '), "{text:?}");
}

/// A loop of printk lines runs into the printk byte budget.
#[test]
fn a_printk_loop_ends_in_a_budget_fault_naming_printk_bytes() {
    let fmt = b"%1000d\0\0";
    let p = prog(vec![
        stack_u64(-8, u64::from_le_bytes(*fmt)),
        // loop: (pc 3)
        movr(R1, R10),
        add(R1, -8),
        mov(R2, 8),
        mov(R3, 1),
        call(helpers::ids::TRACE_PRINTK),
        ja(-6),
    ]);
    let r = both(&p, &[], EngineConfig::default());
    // 1000 bytes a line: the 1049th line passes 1 MiB (1048 * 1000 < 2^20).
    assert_eq!(
        fault_text(&r),
        "resource budget exhausted: printk bytes (limit 1 MiB) at insn 7 of hostile"
    );
    // 2 set-up instructions, 1048 rounds of 6, 5 up to the faulting call.
    assert_eq!(r.insns, 2 + 1048 * 6 + 5);
}

/// A map value of 1 MiB, looked up into r6 (`r6 = lookup(map 0, key 0)`).
fn lookup_big_value() -> Vec<Vec<Insn>> {
    vec![
        movr(R9, R1),
        stack_u32(-4, 0),
        map(R1, 0),
        movr(R2, R10),
        add(R2, -4),
        call(helpers::ids::MAP_LOOKUP_ELEM), // ARRAY key 0 always exists
        movr(R6, R0),
    ]
}

/// The issue's perf loop: 1 MiB records per call, forever. The first fits
/// the default 1 MiB event-byte budget exactly; the second faults.
#[test]
fn a_perf_event_loop_ends_in_a_budget_fault_naming_event_bytes() {
    let maps = [
        def("big", MapType::Array, 4, 1 << 20, 1),
        def("events", MapType::PerfEventArray, 4, 4, 1),
    ];
    let mut parts = lookup_big_value();
    parts.extend([
        // loop: (pc 8)
        movr(R1, R9),
        map(R2, 1),
        lddw(R3, 0xffff_ffff), // BPF_F_CURRENT_CPU
        movr(R4, R6),
        lddw(R5, 1 << 20),
        call(helpers::ids::PERF_EVENT_OUTPUT),
        ja(-10),
    ]);
    let r = both(&prog(parts), &maps, EngineConfig::default());
    assert_eq!(
        fault_text(&r),
        "resource budget exhausted: event bytes (limit 1 MiB) at insn 16 of hostile"
    );
}

/// Helper work counts: a hash key of 1 MiB (allowed by htab_map_alloc_check:
/// key + value below KMALLOC_MAX_SIZE - sizeof(struct htab_elem)) costs
/// 2^17 units a lookup. The default budget is 2^24 units and the array
/// lookup's 4-byte key took 1, so 127 hash lookups fit and the 128th
/// faults, where before the loop ran for the whole instruction budget
/// (hours of hashing).
#[test]
fn hash_lookups_with_huge_keys_are_charged_as_helper_work() {
    let maps = [def("big", MapType::Array, 4, 1 << 20, 1), def("h", MapType::Hash, 1 << 20, 8, 4)];
    let mut parts = lookup_big_value();
    parts.extend([
        // loop: (pc 8)
        map(R1, 1),
        movr(R2, R6),
        call(helpers::ids::MAP_LOOKUP_ELEM),
        ja(-5),
    ]);
    let r = both(&prog(parts), &maps, EngineConfig::default());
    assert_eq!(
        fault_text(&r),
        "resource budget exhausted: helper work (limit 16777216 units of 8 bytes) at insn 11 of hostile"
    );
    // 7 set-up instructions (lddw counts once), 127 rounds of 4, then 3
    // up to and including the faulting call.
    assert_eq!(r.insns, 7 + 127 * 4 + 3);
}

fn refusal(maps: &[MapDef], cfg: EngineConfig) -> String {
    let p = prog(vec![mov(R0, 2), exit()]);
    match Engine::for_program(&p, maps, cfg) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("maps {maps:?} were accepted"),
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The kernel's map_create answers (kernel/bpf/arraymap.c
/// array_map_alloc_check, hashtab.c htab_map_alloc_check/htab_map_alloc,
/// ringbuf.c ringbuf_map_alloc), and ENOMEM for what passes them but not
/// the engine's memory cap; all before anything is allocated.
#[test]
fn maps_the_kernel_refuses_are_refused_with_its_errno_before_allocating() {
    let cfg = EngineConfig::default;
    let before = rss_bytes();
    // 4G entries of 8 bytes: 32 GiB, over the 1 GiB cap.
    let e = refusal(&[def("a", MapType::Array, 4, 8, u32::MAX)], cfg());
    // What the cap leaves is not asserted: the cap is also the process's
    // (the ledger), and this binary's other tests hold part of it while
    // they run in parallel.
    assert!(
        e.contains("refused with ENOMEM")
            && e.contains("4294967295 entries of 8 bytes need")
            && e.contains("the map memory cap leaves for this map"),
        "{e}"
    );
    assert!(rss_bytes() < before + (64 << 20), "the refused array was allocated");
    // value_size 0 / max_entries 0 / key_size != 4: EINVAL.
    for d in [
        def("a", MapType::Array, 4, 0, 16),
        def("a", MapType::Array, 4, 8, 0),
        def("a", MapType::Array, 8, 8, 16),
        def("h", MapType::Hash, 0, 8, 16),
        def("h", MapType::Hash, 4, 0, 16),
        def("r", MapType::Ringbuf, 0, 0, 4096 + 1),
        def("r", MapType::Ringbuf, 0, 0, 2048),
    ] {
        let e = refusal(std::slice::from_ref(&d), cfg());
        assert!(e.contains("refused with EINVAL"), "{d:?}: {e}");
    }
    // value_size over KMALLOC_MAX_SIZE (4 MiB): E2BIG.
    let e = refusal(&[def("a", MapType::Array, 4, (4 << 20) + 1, 1)], cfg());
    assert!(e.contains("refused with E2BIG"), "{e}");
    // per-CPU value over PCPU_MIN_UNIT_SIZE (32 KiB): E2BIG.
    let e = refusal(&[def("a", MapType::PercpuArray, 4, (32 << 10) + 1, 1)], cfg());
    assert!(e.contains("refused with E2BIG"), "{e}");
    // A 256 MiB key: key + value >= KMALLOC_MAX_SIZE - 48: E2BIG.
    let e = refusal(&[def("h", MapType::Hash, 256 << 20, 8, 16)], cfg());
    assert!(e.contains("refused with E2BIG"), "{e}");
    // 4G entries (> 2^31) and 256 Mi entries (2^28 buckets of 16 bytes >
    // U32_MAX): E2BIG, without the 32 GB / 6.8 GB they used to cost.
    for n in [u32::MAX, 1 << 28] {
        let e = refusal(&[def("h", MapType::Hash, 8, 8, n)], cfg());
        assert!(e.contains("refused with E2BIG"), "{n}: {e}");
    }
    // 2^27 entries pass the kernel's checks, but preallocated they need
    // 2^27 * (8 + 8 + 48) bytes = 8 GiB: over the cap.
    let e = refusal(&[def("h", MapType::Hash, 8, 8, 1 << 27)], cfg());
    assert!(e.contains("refused with ENOMEM"), "{e}");
    assert!(rss_bytes() < before + (64 << 20), "a refused map was allocated");
    // The cap covers the object's maps together.
    let big = def("a", MapType::Array, 4, 1 << 20, 400);
    let e = refusal(&[big.clone(), big.clone(), big], cfg());
    assert!(e.contains("refused with ENOMEM"), "{e}");
}

/// A hash with BPF_F_NO_PREALLOC grows per element; the kernel charges
/// each to the memory cgroup, the engine to its map memory cap. Passing the
/// cap is a fault naming it (the kernel has no such limit, so no errno is
/// the right answer); a full map is -E2BIG as the kernel's.
#[test]
fn growing_maps_fault_at_the_map_memory_cap() {
    let mut h = def("h", MapType::Hash, 8, 8, 1000);
    h.flags = maps::BPF_F_NO_PREALLOC;
    // 64 bytes an element (8 + 8 + 48): 15 fit in 1000 bytes.
    let cfg = EngineConfig { map_memory_cap: 1000, ..Default::default() };
    let p = prog(vec![
        mov(R7, 0),
        // loop: (pc 1)
        vec![Insn::new(0x7b, R10, R7, -8, 0)], // *(u64 *)(r10 - 8) = r7
        map(R1, 0),
        movr(R2, R10),
        add(R2, -8),
        movr(R3, R10),
        add(R3, -8),
        mov(R4, 0),
        call(helpers::ids::MAP_UPDATE_ELEM),
        add(R7, 1),
        ja(-11),
    ]);
    let r = both(&p, &[h.clone()], cfg);
    assert_eq!(
        fault_text(&r),
        "map 'h' cannot grow: the map memory cap of 1000 bytes (the engine's, or the whole process's: XDPQUAL_MAP_MEMORY) is reached at insn 9 of hostile"
    );
    // 15 updates done, the 16th faults: 1 set-up, 15 rounds of 10 (lddw
    // counts once), 8 up to and including the faulting call.
    assert_eq!(r.insns, 1 + 15 * 10 + 8);
}

/// A panic in helper code (here a test-only helper that panics) is a
/// per-packet fault at the call, with the same message under both
/// executors; under the JIT it would otherwise unwind into compiled code
/// and abort the process.
#[test]
fn a_panicking_helper_is_a_fault_not_an_abort() {
    let p = prog(vec![mov(R1, 42), call(helpers::TEST_PANIC_HELPER), exit()]);
    let r = both(&p, &[], EngineConfig::default());
    assert_eq!(
        fault_text(&r),
        "internal error in helper test_panic (#2147418113): test helper panicked with r1 = 0x2a at insn 1 of hostile"
    );
}

/// Programs over the compile bound run in the interpreter, and the engine
/// says why.
#[test]
fn programs_over_the_jit_bound_run_in_the_interpreter_and_say_so() {
    let mut parts = vec![mov(R0, 2); jit::MAX_JIT_INSNS];
    parts.push(exit());
    let p = prog(parts);
    let e = Engine::for_program(&p, &[], EngineConfig { jit: true, ..Default::default() }).unwrap();
    let n = jit::MAX_JIT_INSNS + 1;
    let want = format!(
        "JIT skipped, {n} instructions over the {}-instruction compile bound",
        jit::MAX_JIT_INSNS
    );
    assert_eq!(e.exec_mode(), &ExecMode::Fallback { reason: want.clone() });
    assert_eq!(e.exec_mode().to_string(), format!("interpreter (JIT fallback: {want})"));
    // A configured bound applies the same way.
    let small = prog(vec![mov(R0, 2), mov(R0, 2), exit()]);
    let cfg = EngineConfig { jit: true, jit_max_insns: 2, ..Default::default() };
    let mut e = Engine::for_program(&small, &[], cfg).unwrap();
    assert!(matches!(e.exec_mode(), ExecMode::Fallback { .. }));
    let frame = [0u8; 64];
    let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let r = e.run_xdp(&pkt);
    assert_eq!(r.executor, Some(Executor::Interpreter));
    assert_eq!(r.outcome, Outcome::Exit { r0: 2 });
}

/// A straight program of `blocks` 10-instruction blocks of ALU work, stack
/// stores and loads and forward branches: the shape that makes Cranelift's
/// compile time grow fastest (many blocks, many memory operations).
pub(crate) fn generated_program(blocks: usize) -> Program {
    let mut parts = vec![mov(R0, 0), mov(R1, 0), mov(R3, 0)];
    for _ in 0..blocks {
        parts.extend([
            add(R1, 1),
            vec![Insn::new(0x7b, R10, R1, -8, 0)], // *(u64 *)(r10 - 8) = r1
            vec![Insn::new(0x79, R2, R10, -8, 0)], // r2 = *(u64 *)(r10 - 8)
            vec![Insn::new(0x25, R2, 0, 2, 1000)], // if r2 > 1000 goto +2
            vec![Insn::new(0xaf, R3, R2, 0, 0)],   // r3 ^= r2
            movr(R4, R3),
            movr(R0, R4),
            vec![Insn::new(0x27, R1, 0, 0, 3)],  // r1 *= 3
            vec![Insn::new(0x15, R1, 0, 1, 7)],  // if r1 == 7 goto +1
            vec![Insn::new(0x0f, R0, R1, 0, 0)], // r0 += r1
        ]);
    }
    parts.push(exit());
    prog(parts)
}

/// Measures JIT compile time against program size (run by hand:
/// `cargo test --release -p xdpqual-engine --lib measure_jit_compile_time --
/// --ignored --nocapture`); the numbers set `jit::MAX_JIT_INSNS`.
#[test]
#[ignore]
fn measure_jit_compile_time() {
    for blocks in [250, 500, 1000, 2000, 4000] {
        let p = generated_program(blocks);
        let n = p.insns.len();
        let t = std::time::Instant::now();
        let cfg = EngineConfig { jit: true, jit_max_insns: usize::MAX, ..Default::default() };
        let e = Engine::for_program(&p, &[], cfg).unwrap();
        let rss = rss_bytes();
        eprintln!(
            "{n} insns: {:?} to compile ({}), RSS {} MiB",
            t.elapsed(),
            e.exec_mode(),
            rss >> 20
        );
    }
}

/// The entry frame reads as zeros at the start of every run, whatever the
/// run before wrote there (through r10, through a stack address the
/// program made up, or before it faulted): the run clears what it wrote
/// when it ends (`Exec::stack_dirty`) instead of the whole frame first.
#[test]
fn stack_reads_zero_at_every_run_start() {
    let top = memory::STACK_SIZE as u64;
    let forged = addr(TAG_STACK, top - 512);
    let writes = prog(vec![
        vec![Insn::new(0x79, R6, R10, -8, 0)], // r6 = *(u64 *)(r10 - 8)
        vec![Insn::new(0x79, R7, R10, -512, 0)], // r7 = *(u64 *)(r10 - 512)
        vec![Insn::new(0x4f, R6, R7, 0, 0)],   // r6 |= r7
        lddw(R1, forged),
        mov(R3, 0x1111),
        vec![Insn::new(0x7b, R1, R3, 0, 0)], // *(u64 *)forged = r3
        stack_u64(-8, 0x2222),
        movr(R0, R6),
        exit(),
    ]);
    let faults = prog(vec![
        vec![Insn::new(0x79, R6, R10, -16, 0)], // r6 = *(u64 *)(r10 - 16)
        stack_u64(-16, 5),
        vec![Insn::new(0x55, R6, 0, 2, 0)], // if r6 != 0 goto +2
        mov(R0, 0),
        vec![Insn::new(0x79, R0, R0, 0, 0)], // r0 = *(u64 *)0: faults
        movr(R0, R6),
        exit(),
    ]);
    let frame = [0u8; 64];
    let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    for jit in [false, true] {
        let mut e =
            Engine::for_program(&writes, &[], EngineConfig { jit, ..Default::default() }).unwrap();
        for run in 0..3 {
            assert_eq!(r0(&e.run_xdp(&pkt)), 0, "jit {jit}, run {run}");
        }
        let mut e =
            Engine::for_program(&faults, &[], EngineConfig { jit, ..Default::default() }).unwrap();
        for run in 0..3 {
            let t = fault_text(&e.run_xdp(&pkt));
            assert!(t.contains("insn 6"), "jit {jit}, run {run}: {t}");
        }
    }
}

/// Two engines of the same programs share one compile; a different program
/// gets its own, and a program over the compile bound none.
#[test]
fn compiled_code_is_shared_between_engines_of_the_same_programs() {
    let p = prog(vec![mov(R0, 2), exit()]);
    let q = prog(vec![mov(R0, 1), exit()]);
    let jit = EngineConfig { jit: true, ..Default::default() };
    let a = Engine::for_program(&p, &[], jit.clone()).unwrap();
    let b = Engine::for_program(&p, &[], jit.clone()).unwrap();
    let c = Engine::for_program(&q, &[], jit.clone()).unwrap();
    assert!(a.shares_code_with(&b));
    assert!(!a.shares_code_with(&c));
    let frame = [0u8; 64];
    let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let (mut b, mut c) = (b, c);
    assert_eq!((r0(&b.run_xdp(&pkt)), r0(&c.run_xdp(&pkt))), (2, 1));
    let small = EngineConfig { jit_max_insns: 1, ..jit };
    let d = Engine::for_program(&p, &[], small).unwrap();
    assert!(matches!(d.exec_mode(), ExecMode::Fallback { .. }));
    assert!(!a.shares_code_with(&d));
}

/// `bpf_jiffies64` reads the engine's clock (the packet's timestamp) in
/// CONFIG_HZ ticks from INITIAL_JIFFIES, in both executors: 2.5 s at HZ =
/// 250 is 625 ticks after 2^32 - 75000.
#[test]
fn jiffies64_counts_ticks_of_the_packet_clock() {
    let p = prog(vec![call(helpers::ids::JIFFIES64), vec![Insn::new(0x95, 0, 0, 0, 0)]]);
    for jit in [false, true] {
        let mut e =
            Engine::for_program(&p, &[], EngineConfig { jit, ..Default::default() }).unwrap();
        let frame = [0u8; 64];
        let pkt =
            PacketIn { data: &frame, ts_ns: 2_500_000_000, ingress_ifindex: 1, rx_queue_index: 0 };
        assert_eq!(r0(&e.run_xdp(&pkt)), (1u64 << 32) - 75_000 + 625, "jit {jit}");
    }
}

/// `bpf_redirect_map` flags as include/linux/filter.h
/// `__bpf_xdp_redirect_map` takes them: DEVMAP and DEVMAP_HASH accept
/// BPF_F_BROADCAST (8) and BPF_F_EXCLUDE_INGRESS (16) (devmap.c passes them
/// as the flag mask), CPUMAP passes a mask of 0; a broadcast redirects even
/// though key 99 has no entry; any other bit returns XDP_ABORTED.
#[test]
fn redirect_map_broadcast_and_its_flags() {
    const DEVMAP: MapType = MapType::Devmap;
    let run = |t: MapType, flags: i32| {
        let p = prog(vec![
            map(R1, 0),
            mov(R2, 99),
            mov(R3, flags),
            call(helpers::ids::REDIRECT_MAP),
            exit(),
        ]);
        let maps = [def("m", t, 4, 4, 4)];
        let mut e = Engine::for_program(&p, &maps, EngineConfig::default()).unwrap();
        if t == DEVMAP {
            let m = e.maps_mut().by_name("m").unwrap();
            assert_eq!(m.update(&0u32.to_le_bytes(), &7u32.to_le_bytes(), 0, None), 0);
            assert_eq!(m.update(&2u32.to_le_bytes(), &9u32.to_le_bytes(), 0, None), 0);
        }
        let frame = [0u8; 64];
        let pkt = PacketIn { data: &frame, ts_ns: 0, ingress_ifindex: 7, rx_queue_index: 0 };
        let r = e.run_xdp(&pkt);
        (r0(&r), r.redirect)
    };
    let broadcast = |exclude_ingress| {
        Some(RedirectTarget::Broadcast { map: "m".into(), ifindexes: vec![7, 9], exclude_ingress })
    };
    assert_eq!(run(DEVMAP, 8), (4, broadcast(false)), "XDP_REDIRECT to devices 7 and 9");
    assert_eq!(run(DEVMAP, 8 | 16), (4, broadcast(true)));
    // No broadcast: the missing key returns the flags' low bits (XDP_PASS).
    assert_eq!(run(DEVMAP, 16 | 2), (2, None));
    assert_eq!(run(DEVMAP, 32), (0, None), "an unknown flag is XDP_ABORTED");
    assert_eq!(run(MapType::Cpumap, 8), (0, None), "CPUMAP takes no broadcast");
    assert_eq!(run(MapType::Cpumap, 16 | 2), (0, None));
}

/// Compiled code answers 4-byte ctx reads inline: every offset and size a
/// program can try, including misaligned, partly outside and past the
/// readable fields, and a ctx pointer moved by arithmetic, ends exactly as
/// in the interpreter. Expected values from `xdp_convert_ctx_access`
/// (net/core/filter.c): data and data_end are the frame's bounds (on a
/// 64-byte frame their difference is 64), ingress_ifindex is what the
/// packet arrived on (1 here), rx_queue_index 0; other reads fault.
#[test]
fn ctx_reads_inline_match_the_interpreter_at_every_offset_and_size() {
    let ldx = |size: u8, off: i16| Insn::new(0x61 & !0x18 | size, R0, R1, off, 0);
    let (mut exits, mut faults) = (0, 0);
    for (size, bytes) in [(0x00u8, 4), (0x08, 2), (0x10, 1), (0x18, 8)] {
        for off in -4i16..=28 {
            let p = prog(vec![vec![ldx(size, off)], exit()]);
            let r = both(&p, &[], EngineConfig::default());
            let readable = bytes == 4 && off >= 0 && off % 4 == 0 && off < 20;
            match r.outcome {
                Outcome::Exit { r0 } => {
                    assert!(readable, "size {bytes} at {off} read {r0:#x}");
                    exits += 1;
                    match off {
                        12 => assert_eq!(r0, 1),
                        16 => assert_eq!(r0, 0),
                        _ => assert_eq!(tag_of(r0), TAG_PACKET),
                    }
                }
                Outcome::Fault(_) => {
                    assert!(!readable, "size {bytes} at {off} faulted");
                    faults += 1;
                }
                o => panic!("{o:?}"),
            }
        }
    }
    assert_eq!(exits, 5);
    assert!(faults > 100);
    // data_end - data through a ctx pointer moved by +4 and read at -4.
    let p = prog(vec![
        movr(R6, R1),
        vec![Insn::new(0x61, R2, R6, 0, 0)],
        add(R6, 4),
        vec![Insn::new(0x61, R3, R6, 0, 0)],
        vec![Insn::new(0x61, R4, R6, -4, 0)],
        movr(R0, R3),
        vec![Insn::new(0x1f, R0, R2, 0, 0)],
        vec![Insn::new(0x1f, R0, R4, 0, 0)],
        vec![Insn::new(0x0f, R0, R4, 0, 0)],
        exit(),
    ]);
    assert_eq!(r0(&both(&p, &[], EngineConfig::default())), 64);
}
