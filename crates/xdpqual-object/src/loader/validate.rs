//! Static checks on a linked program, the ones the kernel makes before it
//! simulates anything (kernel/bpf/verifier.c: `check_subprogs`,
//! `resolve_pseudo_ldimm64`, the opcode and register checks of `do_check`,
//! and `bpf_prog_load`'s length limit). A program that fails one of these
//! would never load, so the engine need not cope with it.

use crate::SourceLine;
use std::fmt;
use xdpqual_isa::{opcode::*, Insn, MAX_INSNS};

/// What is wrong at one instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("program is empty")]
    Empty,
    #[error("program has {0} instructions, more than the kernel's limit of {MAX_INSNS}")]
    TooLong(usize),
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    #[error("unknown atomic operation {0:#x}")]
    UnknownAtomic(i32),
    #[error(
        "legacy packet load (LD_ABS/LD_IND, opcode {0:#04x}) is allowed only in socket filters \
         and tc programs, not XDP"
    )]
    LegacyPacketLoad(u8),
    #[error("register r{0} does not exist (BPF has r0 to r10)")]
    BadRegister(u8),
    #[error("writes r10, the frame pointer, which is read-only")]
    WriteToR10,
    #[error("lddw is missing its second slot")]
    LddwTruncated,
    #[error("the second slot of an lddw must be all zero except its imm")]
    LddwBadSecondSlot,
    #[error("lddw has unknown pseudo source {0}")]
    LddwBadSource(u8),
    #[error("lddw refers to map #{index} but the object defines {count} maps")]
    BadMapIndex { index: i32, count: usize },
    #[error("jump to instruction {target} leaves its function (instructions {start}..{end})")]
    JumpOutOfRange { target: i64, start: usize, end: usize },
    #[error("jump to instruction {0}, the second half of an lddw")]
    JumpIntoLddw(usize),
    #[error("call to instruction {target} is outside the program (0..{len})")]
    CallOutOfRange { target: i64, len: usize },
    #[error("callx (indirect call through a register) is rejected by the kernel verifier")]
    Callx,
    #[error("the last instruction of a function is not exit or goto, so execution would fall off its end")]
    FallsOffEnd,
}

/// A [`Problem`] at an instruction, with its source line when BTF line
/// info covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub insn: usize,
    pub problem: Problem,
    pub line: Option<SourceLine>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}: {}", self.insn, self.problem)?;
        if let Some(l) = &self.line {
            write!(f, " (source {}:{}: `{}`)", l.file, l.line, l.text)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

fn at(insn: usize, problem: Problem) -> ValidationError {
    ValidationError { insn, problem, line: None }
}

/// Checks `insns` against an object with `map_count` maps.
pub fn validate(insns: &[Insn], map_count: usize) -> Result<(), ValidationError> {
    if insns.is_empty() {
        return Err(at(0, Problem::Empty));
    }
    if insns.len() > MAX_INSNS {
        return Err(at(MAX_INSNS, Problem::TooLong(insns.len())));
    }
    let mut second_slot = vec![false; insns.len()];
    let mut starts = vec![0usize];
    let mut pc = 0;
    while pc < insns.len() {
        let i = insns[pc];
        check_insn(i, map_count).map_err(|p| at(pc, p))?;
        if i.is_lddw() {
            let next = insns.get(pc + 1).ok_or(at(pc, Problem::LddwTruncated))?;
            if next.code != 0 || next.dst != 0 || next.src != 0 || next.off != 0 {
                return Err(at(pc + 1, Problem::LddwBadSecondSlot));
            }
            second_slot[pc + 1] = true;
            if i.src == PSEUDO_FUNC {
                starts.push(call_target(insns, pc)?);
            }
            pc += 2;
            continue;
        }
        if i.code == JMP | CALL && i.src == PSEUDO_CALL {
            starts.push(call_target(insns, pc)?);
        }
        pc += 1;
    }
    starts.sort_unstable();
    starts.dedup();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(insns.len());
        check_function(insns, &second_slot, start, end)?;
    }
    Ok(())
}

fn call_target(insns: &[Insn], pc: usize) -> Result<usize, ValidationError> {
    let target = pc as i64 + insns[pc].imm as i64 + 1;
    if target < 0 || target >= insns.len() as i64 {
        return Err(at(pc, Problem::CallOutOfRange { target, len: insns.len() }));
    }
    Ok(target as usize)
}

/// Jumps stay inside their function and the function ends in exit or goto
/// (`check_subprogs`).
fn check_function(
    insns: &[Insn],
    second: &[bool],
    start: usize,
    end: usize,
) -> Result<(), ValidationError> {
    for pc in start..end {
        let i = insns[pc];
        if second[pc] || !matches!(i.class(), JMP | JMP32) {
            continue;
        }
        let op = i.code & 0xf0;
        let off = match op {
            CALL | EXIT => continue,
            JA if i.class() == JMP32 => i.imm as i64,
            _ => i.off as i64,
        };
        let target = pc as i64 + off + 1;
        if target < start as i64 || target >= end as i64 {
            return Err(at(pc, Problem::JumpOutOfRange { target, start, end }));
        }
        if second[target as usize] {
            return Err(at(pc, Problem::JumpIntoLddw(target as usize)));
        }
    }
    let last = end - 1;
    let l = insns[last];
    let is_exit_or_goto = l.code == JMP | EXIT || l.code == JMP | JA || l.code == JMP32 | JA;
    if second[last] || !is_exit_or_goto {
        return Err(at(last, Problem::FallsOffEnd));
    }
    Ok(())
}

fn reg(r: u8) -> Result<(), Problem> {
    if r > 10 {
        Err(Problem::BadRegister(r))
    } else {
        Ok(())
    }
}

/// A register the instruction writes.
fn written(r: u8) -> Result<(), Problem> {
    reg(r)?;
    if r == 10 {
        Err(Problem::WriteToR10)
    } else {
        Ok(())
    }
}

/// Opcode and register checks for one instruction.
fn check_insn(i: Insn, map_count: usize) -> Result<(), Problem> {
    let unknown = Err(Problem::UnknownOpcode(i.code));
    let x = i.code & X == X;
    match i.class() {
        ALU | ALU64 => {
            let wide = i.class() == ALU64;
            let ok = match i.code & 0xf0 {
                ADD | SUB | MUL | OR | AND | LSH | RSH | XOR | ARSH => true,
                DIV | MOD => true,
                MOV => true,
                NEG => !x,
                END => !(wide && x),
                _ => false,
            };
            if !ok {
                return unknown;
            }
            if x {
                reg(i.src)?;
            }
            written(i.dst)
        }
        LDX => {
            let ok = match i.code & 0xe0 {
                MODE_MEM => true,
                MODE_MEMSX => i.code & 0x18 != SIZE_DW,
                _ => false,
            };
            if !ok {
                return unknown;
            }
            reg(i.src)?;
            written(i.dst)
        }
        ST => {
            if i.code & 0xe0 != MODE_MEM {
                return unknown;
            }
            reg(i.dst)
        }
        STX => match i.code & 0xe0 {
            MODE_MEM => reg(i.dst).and(reg(i.src)),
            MODE_ATOMIC => {
                reg(i.dst)?;
                reg(i.src)?;
                let wide_enough = matches!(i.code & 0x18, SIZE_W | SIZE_DW);
                match i.imm {
                    ATOMIC_ADD | ATOMIC_OR | ATOMIC_AND | ATOMIC_XOR if wide_enough => Ok(()),
                    _ if !wide_enough && !matches!(i.imm, 0x100 | 0x110) => {
                        Err(Problem::UnknownOpcode(i.code))
                    }
                    ATOMIC_XCHG => written(i.src),
                    ATOMIC_CMPXCHG => Ok(()),
                    imm if imm & ATOMIC_FETCH != 0
                        && matches!(imm & !ATOMIC_FETCH, ATOMIC_ADD | ATOMIC_OR | ATOMIC_AND | ATOMIC_XOR) =>
                    {
                        written(i.src)
                    }
                    // BPF_LOAD_ACQ writes dst; BPF_STORE_REL writes memory.
                    0x100 => written(i.dst),
                    0x110 => Ok(()),
                    imm => Err(Problem::UnknownAtomic(imm)),
                }
            }
            _ => unknown,
        },
        LD => match i.code & 0xe0 {
            MODE_ABS | MODE_IND if i.code & 0x18 != SIZE_DW => Err(Problem::LegacyPacketLoad(i.code)),
            MODE_IMM if i.is_lddw() => {
                written(i.dst)?;
                match i.src {
                    0 | PSEUDO_BTF_ID | PSEUDO_FUNC | PSEUDO_MAP_IDX | PSEUDO_MAP_IDX_VALUE => Ok(()),
                    PSEUDO_MAP_FD | PSEUDO_MAP_VALUE => {
                        if i.imm < 0 || i.imm as usize >= map_count {
                            Err(Problem::BadMapIndex { index: i.imm, count: map_count })
                        } else {
                            Ok(())
                        }
                    }
                    s => Err(Problem::LddwBadSource(s)),
                }
            }
            _ => unknown,
        },
        _ /* JMP | JMP32 */ => {
            let wide = i.class() == JMP;
            match i.code & 0xf0 {
                JA if !x => Ok(()),
                CALL if wide && x => Err(Problem::Callx),
                CALL | EXIT if wide && !x => Ok(()),
                JEQ | JGT | JGE | JSET | JNE | JSGT | JSGE | JLT | JLE | JSLT | JSLE => {
                    reg(i.dst)?;
                    if x {
                        reg(i.src)?;
                    }
                    Ok(())
                }
                _ => unknown,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT_I: Insn = Insn::new(JMP | EXIT, 0, 0, 0, 0);
    const MOV0: Insn = Insn::new(ALU64 | MOV | K, 0, 0, 0, 0);

    fn problem(insns: &[Insn]) -> (usize, Problem) {
        let e = validate(insns, 2).unwrap_err();
        (e.insn, e.problem)
    }

    #[test]
    fn good_program_passes() {
        let prog = [
            MOV0,
            Insn::new(LD_DW_IMM, 1, PSEUDO_MAP_FD, 0, 1),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(JMP | JEQ | K, 0, 0, 1, 0),
            Insn::new(JMP | CALL, 0, PSEUDO_CALL, 0, 1),
            EXIT_I,
            MOV0,
            EXIT_I,
        ];
        validate(&prog, 2).unwrap();
    }

    #[test]
    fn unknown_opcodes() {
        assert_eq!(
            problem(&[Insn::new(0xe7, 0, 0, 0, 0), EXIT_I]),
            (0, Problem::UnknownOpcode(0xe7))
        );
        assert_eq!(
            problem(&[MOV0, Insn::new(0xdf, 0, 0, 0, 0), EXIT_I]),
            (1, Problem::UnknownOpcode(0xdf))
        );
        // JMP32 has no call or exit.
        assert_eq!(problem(&[Insn::new(0x96, 0, 0, 0, 0)]), (0, Problem::UnknownOpcode(0x96)));
        // ldsx has no 64-bit form.
        assert_eq!(
            problem(&[Insn::new(0x99, 0, 1, 0, 0), EXIT_I]),
            (0, Problem::UnknownOpcode(0x99))
        );
        assert_eq!(
            problem(&[Insn::new(STX | MODE_ATOMIC | SIZE_DW, 1, 2, 0, 0x31), EXIT_I]),
            (0, Problem::UnknownAtomic(0x31))
        );
        // Atomic add exists only for 32 and 64 bits.
        assert_eq!(
            problem(&[Insn::new(STX | MODE_ATOMIC | SIZE_B, 1, 2, 0, 0), EXIT_I]),
            (0, Problem::UnknownOpcode(0xd3))
        );
        assert_eq!(
            problem(&[Insn::new(0x30, 0, 0, 0, 12), EXIT_I]),
            (0, Problem::LegacyPacketLoad(0x30))
        );
    }

    #[test]
    fn lddw_shape() {
        assert_eq!(problem(&[MOV0, Insn::new(LD_DW_IMM, 1, 0, 0, 0)]), (1, Problem::LddwTruncated));
        assert_eq!(
            problem(&[Insn::new(LD_DW_IMM, 1, 0, 0, 0), Insn::new(0, 1, 0, 0, 0), EXIT_I]),
            (1, Problem::LddwBadSecondSlot)
        );
        assert_eq!(
            problem(&[Insn::new(LD_DW_IMM, 1, 9, 0, 0), Insn::new(0, 0, 0, 0, 0), EXIT_I]),
            (0, Problem::LddwBadSource(9))
        );
        assert_eq!(
            problem(&[Insn::new(LD_DW_IMM, 1, PSEUDO_MAP_VALUE, 0, 2), Insn::default(), EXIT_I]),
            (0, Problem::BadMapIndex { index: 2, count: 2 })
        );
    }

    #[test]
    fn jump_and_call_targets() {
        assert_eq!(
            problem(&[Insn::new(JMP | JA, 0, 0, 5, 0), EXIT_I]),
            (0, Problem::JumpOutOfRange { target: 6, start: 0, end: 2 })
        );
        assert_eq!(
            problem(&[Insn::new(JMP32 | JA, 0, 0, 0, -2), EXIT_I]),
            (0, Problem::JumpOutOfRange { target: -1, start: 0, end: 2 })
        );
        assert_eq!(
            problem(&[
                Insn::new(JMP | JEQ | K, 0, 0, 1, 0),
                Insn::new(LD_DW_IMM, 0, 0, 0, 0),
                Insn::default(),
                EXIT_I
            ]),
            (0, Problem::JumpIntoLddw(2))
        );
        assert_eq!(
            problem(&[Insn::new(JMP | CALL, 0, PSEUDO_CALL, 0, 7), EXIT_I]),
            (0, Problem::CallOutOfRange { target: 8, len: 2 })
        );
        // A jump from main into the subprogram that starts at 3.
        assert_eq!(
            problem(&[
                Insn::new(JMP | CALL, 0, PSEUDO_CALL, 0, 2),
                Insn::new(JMP | JA, 0, 0, 1, 0),
                EXIT_I,
                MOV0,
                EXIT_I
            ]),
            (1, Problem::JumpOutOfRange { target: 3, start: 0, end: 3 })
        );
        assert_eq!(problem(&[Insn::new(JMP | CALL | X, 1, 0, 0, 0), EXIT_I]), (0, Problem::Callx));
    }

    #[test]
    fn registers() {
        assert_eq!(
            problem(&[Insn::new(ALU64 | MOV | K, 11, 0, 0, 0), EXIT_I]),
            (0, Problem::BadRegister(11))
        );
        assert_eq!(
            problem(&[Insn::new(ALU64 | MOV | X, 1, 15, 0, 0), EXIT_I]),
            (0, Problem::BadRegister(15))
        );
        assert_eq!(
            problem(&[Insn::new(ALU64 | ADD | K, 10, 0, 0, 8), EXIT_I]),
            (0, Problem::WriteToR10)
        );
        assert_eq!(problem(&[Insn::new(0x79, 10, 1, 0, 0), EXIT_I]), (0, Problem::WriteToR10));
        assert_eq!(
            problem(&[Insn::new(STX | MODE_ATOMIC | SIZE_DW, 1, 10, 0, ATOMIC_XCHG), EXIT_I]),
            (0, Problem::WriteToR10)
        );
        // Stores through r10 are how the stack is written: fine.
        validate(&[Insn::new(0x7a, 10, 0, -8, 1), MOV0, EXIT_I], 0).unwrap();
    }

    #[test]
    fn length_and_ending() {
        assert_eq!(problem(&[]), (0, Problem::Empty));
        assert_eq!(problem(&[MOV0]), (0, Problem::FallsOffEnd));
        let long = vec![Insn::new(JMP | JA, 0, 0, 0, 0); MAX_INSNS + 1];
        assert_eq!(problem(&long), (MAX_INSNS, Problem::TooLong(MAX_INSNS + 1)));
        // The subprogram at 2 falls off the end.
        assert_eq!(
            problem(&[Insn::new(JMP | CALL, 0, PSEUDO_CALL, 0, 1), EXIT_I, MOV0]),
            (2, Problem::FallsOffEnd)
        );
    }

    #[test]
    fn message_names_source_line() {
        let mut e = validate(&[MOV0], 0).unwrap_err();
        e.line =
            Some(SourceLine { file: "a.c".into(), line: 12, column: 3, text: "return x;".into() });
        assert_eq!(
            e.to_string(),
            "instruction 0: the last instruction of a function is not exit or goto, so execution \
             would fall off its end (source a.c:12: `return x;`)"
        );
    }
}
