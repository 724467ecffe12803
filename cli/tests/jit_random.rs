//! Quickcheck: random programs and packets through the JIT and the
//! interpreter. Programs are mostly straight-line with forward jumps, some
//! backward jumps under a small budget, packet/stack loads and stores with
//! offsets that are often out of bounds, atomics, helpers that move the
//! packet, and BPF-to-BPF calls. Both executors must agree on everything a
//! run shows: outcome (a fault's kind and pc included), output bytes,
//! instruction count.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use xdpqual::engine::{Engine, EngineConfig, ExecMode, FaultKind, Outcome, PacketIn};
use xdpqual::isa::opcode::*;
use xdpqual::isa::Insn;
use xdpqual::program::Program;

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, dst, src, off, imm }
}

#[derive(Clone, Debug)]
struct Case {
    insns: Vec<Insn>,
    packet: Vec<u8>,
    budget: u64,
}

fn pick<T: Copy>(g: &mut Gen, xs: &[T]) -> T {
    *g.choose(xs).unwrap()
}

fn small(g: &mut Gen, lo: i64, hi: i64) -> i64 {
    lo + (u64::arbitrary(g) % (hi - lo + 1) as u64) as i64
}

/// A register random code may write: r6 keeps the ctx, r10 is read-only.
fn wreg(g: &mut Gen) -> u8 {
    pick(g, &[0, 1, 2, 3, 4, 5, 7, 8, 9])
}

fn rreg(g: &mut Gen) -> u8 {
    pick(g, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
}

fn imm(g: &mut Gen) -> i32 {
    match u8::arbitrary(g) % 4 {
        0 => i32::arbitrary(g),
        1 => pick(g, &[0, 1, -1, 31, 32, 63, 64, i32::MIN, i32::MAX]),
        _ => small(g, -20, 40) as i32,
    }
}

/// A memory base register and an offset around its region: r2 = data,
/// r3 = data_end, r10 = frame pointer, r7 = data_meta, or anything.
fn mem_target(g: &mut Gen) -> (u8, i16) {
    match u8::arbitrary(g) % 6 {
        0 | 1 => (2, small(g, -20, 140) as i16),
        2 => (3, small(g, -80, 8) as i16),
        3 | 4 => (10, small(g, -530, 8) as i16),
        _ => (rreg(g), small(g, -8, 8) as i16),
    }
}

fn size(g: &mut Gen) -> u8 {
    pick(g, &[SIZE_B, SIZE_H, SIZE_W, SIZE_DW])
}

/// One piece of the main body; jumps and calls get their offsets once the
/// layout is known.
enum Part {
    Fixed(Vec<Insn>),
    Jump,
    Call,
}

fn gen_part(g: &mut Gen) -> Part {
    let alu_ops = [ADD, SUB, MUL, DIV, MOD, OR, AND, LSH, RSH, NEG, XOR, MOV, ARSH];
    let one = |x: Insn| Part::Fixed(vec![x]);
    match u8::arbitrary(g) % 20 {
        0..=6 => {
            let class = pick(g, &[ALU, ALU64]);
            let op = pick(g, &alu_ops);
            let x = op != NEG && bool::arbitrary(g);
            let off = match op {
                DIV | MOD => pick(g, &[0, 1]),
                MOV if x => pick(g, &[0, 0, 8, 16, if class == ALU64 { 32 } else { 0 }]),
                _ => 0,
            };
            one(i(class | op | if x { X } else { K }, wreg(g), rreg(g), off, imm(g)))
        }
        7 => {
            let class = pick(g, &[ALU, ALU64]);
            let x = class == ALU && bool::arbitrary(g);
            one(i(class | END | if x { X } else { K }, wreg(g), 0, 0, pick(g, &[16, 32, 64])))
        }
        8 => {
            let v = u64::arbitrary(g);
            Part::Fixed(vec![
                i(LD_DW_IMM, wreg(g), 0, 0, v as i32),
                i(0, 0, 0, 0, (v >> 32) as i32),
            ])
        }
        9..=11 => {
            let (base, off) = mem_target(g);
            let sz = size(g);
            let mode = if bool::arbitrary(g) && sz != SIZE_DW { MODE_MEMSX } else { MODE_MEM };
            one(i(LDX | mode | sz, wreg(g), base, off, 0))
        }
        12 | 13 => {
            let (base, off) = mem_target(g);
            if bool::arbitrary(g) {
                one(i(STX | MODE_MEM | size(g), base, rreg(g), off, 0))
            } else {
                one(i(ST | MODE_MEM | size(g), base, 0, off, imm(g)))
            }
        }
        14 => {
            let (base, off) =
                if bool::arbitrary(g) { (10, small(g, -64, 0) as i16 & !7) } else { mem_target(g) };
            let op = pick(
                g,
                &[
                    ATOMIC_ADD,
                    ATOMIC_OR,
                    ATOMIC_AND,
                    ATOMIC_XOR,
                    ATOMIC_ADD | ATOMIC_FETCH,
                    ATOMIC_XCHG,
                    ATOMIC_CMPXCHG,
                ],
            );
            one(i(STX | MODE_ATOMIC | pick(g, &[SIZE_W, SIZE_DW]), base, wreg(g), off, op))
        }
        15 | 16 => Part::Jump,
        17 => {
            // bpf_xdp_adjust_head / _meta / _tail(ctx, delta): the packet
            // moves; then reload the packet pointers as a verified program must.
            let id = pick(g, &[44, 54, 65]);
            Part::Fixed(vec![
                i(ALU64 | MOV | X, 1, 6, 0, 0),
                i(ALU64 | MOV | K, 2, 0, 0, small(g, -40, 40) as i32),
                i(JMP | CALL, 0, CALL_HELPER, 0, id),
                i(LDX | MODE_MEM | SIZE_W, 2, 6, 0, 0),
                i(LDX | MODE_MEM | SIZE_W, 3, 6, 4, 0),
            ])
        }
        // ktime, prandom, smp_processor_id
        18 => one(i(JMP | CALL, 0, CALL_HELPER, 0, pick(g, &[5, 7, 8]))),
        _ => Part::Call,
    }
}

fn jump(g: &mut Gen, pc: usize, exit: usize) -> Insn {
    let class = pick(g, &[JMP, JMP32]);
    let op = pick(g, &[JA, JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, JLT, JLE, JSLT, JSLE]);
    // Mostly forward within the main body; sometimes back (a loop the
    // budget ends).
    let back = u8::arbitrary(g) % 4 == 0;
    let target = if back { small(g, 0, pc as i64) } else { small(g, pc as i64 + 1, exit as i64) };
    let off = (target - pc as i64 - 1) as i16;
    match op {
        JA if class == JMP32 => i(JMP32 | JA, 0, 0, 0, off as i32),
        JA => i(JMP | JA, 0, 0, off, 0),
        _ => {
            let x = bool::arbitrary(g);
            i(class | op | if x { X } else { K }, rreg(g), rreg(g), off, imm(g))
        }
    }
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Case {
        // Prologue: r6 = ctx, r2 = data, r3 = data_end, r7 = data_meta.
        let mut insns = vec![
            i(ALU64 | MOV | X, 6, 1, 0, 0),
            i(LDX | MODE_MEM | SIZE_W, 2, 6, 0, 0),
            i(LDX | MODE_MEM | SIZE_W, 3, 6, 4, 0),
            i(LDX | MODE_MEM | SIZE_W, 7, 6, 8, 0),
        ];
        let parts: Vec<Part> = (0..small(g, 1, 40)).map(|_| gen_part(g)).collect();
        let len = |p: &Part| match p {
            Part::Fixed(v) => v.len(),
            _ => 1,
        };
        let verdict = bool::arbitrary(g);
        let exit = insns.len() + parts.iter().map(len).sum::<usize>() + verdict as usize;
        let sub = exit + 1;
        for p in parts {
            let pc = insns.len();
            match p {
                Part::Fixed(v) => insns.extend(v),
                Part::Jump => insns.push(jump(g, pc, exit)),
                Part::Call => insns.push(i(JMP | CALL, 0, PSEUDO_CALL, 0, (sub - pc - 1) as i32)),
            }
        }
        if verdict {
            insns.push(i(ALU64 | MOV | K, 0, 0, 0, small(g, 0, 4) as i32));
        }
        insns.push(i(JMP | EXIT, 0, 0, 0, 0));
        assert_eq!(insns.len(), sub);
        // Subprogram: its own frame, the caller's r1.
        insns.extend([
            i(ALU64 | MOV | X, 0, 1, 0, 0),
            i(STX | MODE_MEM | SIZE_DW, 10, 0, -8, 0),
            i(LDX | MODE_MEM | SIZE_DW, 0, 10, -8, 0),
            i(ALU64 | ADD | K, 0, 0, 0, 1),
            i(JMP | EXIT, 0, 0, 0, 0),
        ]);
        let plen = small(g, 10, 120) as usize;
        let packet = (0..plen).map(|_| u8::arbitrary(g)).collect();
        let budget = if u8::arbitrary(g) % 3 == 0 { small(g, 1, 60) as u64 } else { 500 };
        Case { insns, packet, budget }
    }
}

fn same(case: Case) -> TestResult {
    let prog = Program {
        name: "random".into(),
        section: "xdp".into(),
        frags: false,
        insns: case.insns.clone(),
        lines: Default::default(),
        functions: Vec::new(),
    };
    let cfg = EngineConfig { insn_budget: case.budget, ..Default::default() };
    let Ok(mut interp) = Engine::for_program(&prog, &[], cfg.clone()) else {
        return TestResult::discard();
    };
    let mut jit = Engine::for_program(&prog, &[], EngineConfig { jit: true, ..cfg }).unwrap();
    assert_eq!(jit.exec_mode(), &ExecMode::Jit);
    let pkt = PacketIn { data: &case.packet, ts_ns: 7, ingress_ifindex: 1, rx_queue_index: 0 };
    let a = interp.run_xdp(&pkt);
    let b = jit.run_xdp(&pkt);
    assert_eq!(a.outcome, b.outcome, "outcome");
    assert_eq!(a.output, b.output, "output");
    assert_eq!(a.insns, b.insns, "instruction count");
    assert_eq!(a.events, b.events, "events");
    let seen = match &a.outcome {
        Outcome::Exit { .. } => &EXITS,
        Outcome::Fault(f) if matches!(f.kind, FaultKind::BudgetExhausted { .. }) => &BUDGET,
        Outcome::Fault(_) => &FAULTS,
        Outcome::NotRun { .. } => &NOT_RUN,
    };
    seen.fetch_add(1, Relaxed);
    TestResult::passed()
}

static EXITS: AtomicU64 = AtomicU64::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);
static BUDGET: AtomicU64 = AtomicU64::new(0);
static NOT_RUN: AtomicU64 = AtomicU64::new(0);

#[test]
fn jit_matches_interpreter_on_random_programs() {
    QuickCheck::new().tests(1000).max_tests(10_000).quickcheck(same as fn(Case) -> TestResult);
    let (e, f, b) = (EXITS.load(Relaxed), FAULTS.load(Relaxed), BUDGET.load(Relaxed));
    xdpqual::util::count(format_args!(
        "random programs: {e} exits, {f} memory/other faults, {b} budget faults, {} not run",
        NOT_RUN.load(Relaxed)
    ));
    // The generator must exercise every kind of ending, or the comparison
    // says little.
    assert!(
        e > 50 && f > 50 && b > 20,
        "generator too narrow: {e} exits, {f} faults, {b} budget faults"
    );
}

/// Out-of-bounds accesses fault at the same pc without touching memory.
#[test]
fn out_of_bounds_store_faults_at_its_pc() {
    let prog = Program {
        name: "oob".into(),
        section: "xdp".into(),
        frags: false,
        insns: vec![
            i(LDX | MODE_MEM | SIZE_W, 2, 1, 0, 0),
            i(LDX | MODE_MEM | SIZE_W, 3, 1, 4, 0),
            i(ST | MODE_MEM | SIZE_B, 2, 0, 0, 0x55),
            // One byte past data_end.
            i(STX | MODE_MEM | SIZE_B, 3, 2, 0, 0),
            i(ALU64 | MOV | K, 0, 0, 0, 2),
            i(JMP | EXIT, 0, 0, 0, 0),
        ],
        lines: Default::default(),
        functions: Vec::new(),
    };
    let mut jit =
        Engine::for_program(&prog, &[], EngineConfig { jit: true, ..Default::default() }).unwrap();
    assert_eq!(jit.exec_mode(), &ExecMode::Jit);
    let data = [0u8; 20];
    let r = jit.run_xdp(&PacketIn { data: &data, ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 });
    match r.outcome {
        Outcome::Fault(f) => {
            assert_eq!(f.pc, 3);
            assert!(matches!(f.kind, FaultKind::OutOfBounds { write: true, .. }), "{f}");
        }
        o => panic!("expected a fault, got {o:?}"),
    }
    // The in-bounds store before it happened, nothing past the end did.
    assert_eq!(r.output[0], 0x55);
    assert_eq!(r.output.len(), 20);
    assert_eq!(r.insns, 4);
}
