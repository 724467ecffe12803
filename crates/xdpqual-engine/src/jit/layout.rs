//! Control-flow layout of one BPF function, as the translator needs it:
//! which instructions it reaches, where basic blocks start, and how the
//! instruction budget is charged.
//!
//! Budget charging is per *segment*, not per instruction: a segment is a run
//! of instructions in which only the last one can have an effect beyond the
//! registers (memory access, call, jump, exit, or an invalid instruction that
//! faults). The segment's length is charged before it runs; if that crosses
//! the budget, the fault is reported at the exact instruction where the
//! interpreter would have stopped (`executed > budget` before it runs). That
//! is exact because every instruction the JIT skips is register-only, and a
//! fault never leaves registers visible.

use std::collections::BTreeSet;

use xdpqual_isa::opcode::*;
use xdpqual_isa::Insn;

/// What an instruction means for control flow and budgeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Register-only ALU operation.
    Pure,
    /// Two-slot 64-bit immediate load (counts as one instruction).
    Lddw,
    /// Memory access, atomic or call: may fault or touch state; falls through.
    Effect,
    /// Conditional jump: to `pc + 1 + off` or the next instruction.
    Cond {
        target: usize,
    },
    /// Unconditional jump.
    Ja {
        target: usize,
    },
    Exit,
    /// Not an instruction the interpreter runs (e.g. the second half of an
    /// `lddw` reached by a jump): counted, then faults as invalid.
    Bad,
}

pub(super) fn kind(insns: &[Insn], pc: usize) -> Kind {
    let ins = insns[pc];
    let code = ins.code;
    let op = code & 0xf0;
    let rel = |delta: i64| (pc as i64 + 1 + delta) as usize;
    match code & 7 {
        ALU | ALU64 => Kind::Pure,
        LDX | ST | STX => Kind::Effect,
        LD if code == LD_DW_IMM && pc + 1 < insns.len() => Kind::Lddw,
        JMP if op == EXIT => Kind::Exit,
        JMP if op == CALL => Kind::Effect,
        JMP if op == JA => Kind::Ja { target: rel(ins.off as i64) },
        JMP32 if op == JA => Kind::Ja { target: rel(ins.imm as i64) },
        JMP | JMP32 => Kind::Cond { target: rel(ins.off as i64) },
        _ => Kind::Bad,
    }
}

/// Index of the instruction after `pc` on the fall-through path.
pub(super) fn next_pc(insns: &[Insn], pc: usize) -> usize {
    if kind(insns, pc) == Kind::Lddw {
        pc + 2
    } else {
        pc + 1
    }
}

/// The part of a program one BPF function (entry `entry`) reaches without
/// following calls.
#[derive(Debug)]
pub(super) struct Layout {
    /// Block starts: the entry and every jump target or jump fall-through.
    /// May contain `insns.len()`: falling off the end, which faults.
    pub leaders: BTreeSet<usize>,
}

/// Walks the function from `entry`. Jump targets are in range (checked by
/// `prepare`); falling off the end is a leader of its own (a fault).
pub(super) fn layout(insns: &[Insn], entry: usize) -> Layout {
    let n = insns.len();
    let mut leaders = BTreeSet::from([entry]);
    let mut reached = BTreeSet::new();
    let mut work = vec![entry];
    while let Some(pc) = work.pop() {
        if pc >= n {
            leaders.insert(pc);
            continue;
        }
        if !reached.insert(pc) {
            continue;
        }
        match kind(insns, pc) {
            Kind::Cond { target } => {
                leaders.insert(target);
                leaders.insert(pc + 1);
                work.push(target);
                work.push(pc + 1);
            }
            Kind::Ja { target } => {
                leaders.insert(target);
                work.push(target);
            }
            Kind::Exit | Kind::Bad => {}
            Kind::Pure | Kind::Lddw | Kind::Effect => work.push(next_pc(insns, pc)),
        }
    }
    Layout { leaders }
}

/// The instruction count of the segment starting at `pc` (see the module
/// doc) and the index after its last instruction. A segment also ends where
/// the next instruction starts another block.
pub(super) fn segment(insns: &[Insn], leaders: &BTreeSet<usize>, start: usize) -> (u64, usize) {
    let mut pc = start;
    let mut count = 0;
    loop {
        count += 1;
        let k = kind(insns, pc);
        let next = next_pc(insns, pc);
        if !matches!(k, Kind::Pure | Kind::Lddw) || next >= insns.len() || leaders.contains(&next) {
            return (count, next);
        }
        pc = next;
    }
}

/// The instruction index where the budget runs out, `allowed` instructions
/// into the segment starting at `start` (all register-only before it).
pub(crate) fn nth_in_segment(insns: &[Insn], start: usize, allowed: u64) -> usize {
    let mut pc = start;
    for _ in 0..allowed {
        pc = next_pc(insns, pc);
    }
    pc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    #[test]
    fn blocks_and_segments() {
        // 0: r0 = 0; 1-2: lddw r1; 3: if r1 == 0 goto 5; 4: r0 = *(u8*)(r1+0); 5: exit
        let p = [
            i(ALU64 | MOV, 0, 0, 0, 0),
            i(LD_DW_IMM, 1, 0, 0, 7),
            i(0, 0, 0, 0, 0),
            i(JMP | JEQ, 1, 0, 1, 0),
            i(LDX | MODE_MEM | SIZE_B, 0, 1, 0, 0),
            i(JMP | EXIT, 0, 0, 0, 0),
        ];
        let l = layout(&p, 0);
        assert_eq!(l.leaders, BTreeSet::from([0, 4, 5]));
        // mov, lddw, jeq: three instructions ending at the jump.
        assert_eq!(segment(&p, &l.leaders, 0), (3, 4));
        assert_eq!(segment(&p, &l.leaders, 4), (1, 5));
        assert_eq!(nth_in_segment(&p, 0, 2), 3);
        assert_eq!(nth_in_segment(&p, 0, 1), 1);
    }

    #[test]
    fn falling_off_the_end_is_a_leader() {
        let p = [i(ALU64 | MOV, 0, 0, 0, 0)];
        let l = layout(&p, 0);
        assert!(l.leaders.contains(&1));
        assert_eq!(segment(&p, &l.leaders, 0), (1, 1));
    }
}
