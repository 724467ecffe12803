//! Mnemonic and operands to instruction slots.
//!
//! Opcode values follow RFC 9669 section 3/4/5 and agree with bpf_conformance's
//! `ebpf_inst.h`; the mnemonic spellings and operand orders are those of its
//! assembler (lib/src/bpf_assembler.cc).

use super::lexer::{parse_imm32, parse_imm64, parse_offset, Operand};
use super::AsmErrorKind;
use crate::opcode::*;
use crate::Insn;

/// A jump or call whose target is a label, resolved after all lines are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fixup {
    pub label: String,
    /// Where the pc-relative distance goes: `off` for jumps, `imm` for
    /// `ja32` (gotol) and `call local`.
    pub field: FixupField,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FixupField {
    Off,
    Imm,
}

/// What one instruction line becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Encoded {
    /// One slot, or two for `lddw`.
    pub slots: Vec<Insn>,
    pub fixup: Option<Fixup>,
}

impl Encoded {
    fn one(insn: Insn) -> Encoded {
        Encoded { slots: vec![insn], fixup: None }
    }
}

type R<T> = Result<T, AsmErrorKind>;

pub(super) fn encode(mnemonic: &str, ops: &[Operand]) -> R<Encoded> {
    match mnemonic {
        "exit" => {
            want(mnemonic, ops, 0)?;
            Ok(Encoded::one(Insn::new(JMP | EXIT, 0, 0, 0, 0)))
        }
        "ja" | "ja32" => {
            want(mnemonic, ops, 1)?;
            let gotol = mnemonic == "ja32";
            let (code, field) =
                if gotol { (JMP32 | JA, FixupField::Imm) } else { (JMP | JA, FixupField::Off) };
            jump_target(Insn::new(code, 0, 0, 0, 0), word(&ops[0])?, field)
        }
        "call" => encode_call(ops),
        "lddw" => {
            want(mnemonic, ops, 2)?;
            let dst = reg(&ops[0])?;
            let v = parse_imm64(word(&ops[1])?)?;
            Ok(Encoded {
                slots: vec![
                    Insn::new(LD_DW_IMM, dst, 0, 0, v as u32 as i32),
                    Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32),
                ],
                fixup: None,
            })
        }
        "lock" => encode_atomic(ops),
        m if m.starts_with("ldx") => encode_ldx(m, ops),
        m if m.starts_with("stx") => encode_stx(m, ops),
        m if m.starts_with("st") => encode_st(m, ops),
        m if m.starts_with('j') => encode_cond_jump(m, ops),
        m => encode_alu(m, ops),
    }
}

fn want(mnemonic: &str, ops: &[Operand], n: usize) -> R<()> {
    if ops.len() == n {
        Ok(())
    } else {
        Err(AsmErrorKind::OperandCount {
            mnemonic: mnemonic.to_string(),
            expected: n,
            found: ops.len(),
        })
    }
}

fn reg(op: &Operand) -> R<u8> {
    match op {
        Operand::Reg(r) => Ok(*r),
        other => Err(AsmErrorKind::Expected { what: "a register", found: describe(other) }),
    }
}

fn mem(op: &Operand) -> R<(u8, i16)> {
    match op {
        Operand::Mem { base, off } => Ok((*base, *off)),
        other => Err(AsmErrorKind::Expected {
            what: "a memory operand [%rN+off]",
            found: describe(other),
        }),
    }
}

fn word(op: &Operand) -> R<&str> {
    match op {
        Operand::Word(w) => Ok(w),
        other => Err(AsmErrorKind::Expected { what: "a number or label", found: describe(other) }),
    }
}

fn describe(op: &Operand) -> String {
    match op {
        Operand::Reg(r) => format!("%r{r}"),
        Operand::Mem { base, off } => format!("[%r{base}{off:+}]"),
        Operand::Word(w) => w.clone(),
    }
}

/// `+N`/`-N` is a literal offset; anything else names a label.
fn jump_target(mut insn: Insn, target: &str, field: FixupField) -> R<Encoded> {
    if target.starts_with('+') || target.starts_with('-') {
        let d = parse_offset(target)?;
        match field {
            FixupField::Off => insn.off = d,
            FixupField::Imm => insn.imm = d as i32,
        }
        return Ok(Encoded::one(insn));
    }
    Ok(Encoded { slots: vec![insn], fixup: Some(Fixup { label: target.to_string(), field }) })
}

/// `call N` / `call helper N` (helper), `call %rN` (callx, register in `dst`
/// as bpf_conformance and LLVM encode it), `call local target` (BPF-to-BPF,
/// src=1, pc-relative imm), `call runtime N` (kfunc, src=2).
fn encode_call(ops: &[Operand]) -> R<Encoded> {
    let (mode, target) = match ops {
        [t] => ("helper", t),
        [Operand::Word(m), t] => (m.as_str(), t),
        _ => {
            return Err(AsmErrorKind::OperandCount {
                mnemonic: "call".into(),
                expected: 2,
                found: ops.len(),
            })
        }
    };
    match (mode, target) {
        ("helper", Operand::Reg(r)) => Ok(Encoded::one(Insn::new(JMP | CALL | X, *r, 0, 0, 0))),
        ("helper", t) => {
            Ok(Encoded::one(Insn::new(JMP | CALL, 0, CALL_HELPER, 0, parse_imm32(word(t)?)?)))
        }
        ("local", t) => {
            jump_target(Insn::new(JMP | CALL, 0, PSEUDO_CALL, 0, 0), word(t)?, FixupField::Imm)
        }
        ("runtime", t) => {
            Ok(Encoded::one(Insn::new(JMP | CALL, 0, PSEUDO_KFUNC_CALL, 0, parse_imm32(word(t)?)?)))
        }
        (m, _) => Err(AsmErrorKind::BadCallMode(m.to_string())),
    }
}

fn size_suffix(s: &str) -> Option<u8> {
    Some(match s {
        "b" => SIZE_B,
        "h" => SIZE_H,
        "w" => SIZE_W,
        "dw" => SIZE_DW,
        _ => return None,
    })
}

fn unknown(m: &str) -> AsmErrorKind {
    AsmErrorKind::UnknownMnemonic(m.to_string())
}

/// `ldx{b,h,w,dw} dst, [src+off]`; `ldxs{b,h,w}` is the sign-extending
/// load (mode MEMSX, RFC 9669 section 5.2).
fn encode_ldx(m: &str, ops: &[Operand]) -> R<Encoded> {
    let rest = &m[3..];
    let (mode, size) = match size_suffix(rest) {
        Some(s) => (MODE_MEM, s),
        None => match rest.strip_prefix('s').and_then(size_suffix) {
            Some(s) if s != SIZE_DW => (MODE_MEMSX, s),
            _ => return Err(unknown(m)),
        },
    };
    want(m, ops, 2)?;
    let dst = reg(&ops[0])?;
    let (src, off) = mem(&ops[1])?;
    Ok(Encoded::one(Insn::new(LDX | mode | size, dst, src, off, 0)))
}

fn encode_stx(m: &str, ops: &[Operand]) -> R<Encoded> {
    let size = size_suffix(&m[3..]).ok_or_else(|| unknown(m))?;
    want(m, ops, 2)?;
    let (dst, off) = mem(&ops[0])?;
    let src = reg(&ops[1])?;
    Ok(Encoded::one(Insn::new(STX | MODE_MEM | size, dst, src, off, 0)))
}

fn encode_st(m: &str, ops: &[Operand]) -> R<Encoded> {
    let size = size_suffix(&m[2..]).ok_or_else(|| unknown(m))?;
    want(m, ops, 2)?;
    let (dst, off) = mem(&ops[0])?;
    let imm = parse_imm32(word(&ops[1])?)?;
    Ok(Encoded::one(Insn::new(ST | MODE_MEM | size, dst, 0, off, imm)))
}

fn jump_op(base: &str) -> Option<u8> {
    Some(match base {
        "jeq" => JEQ,
        "jgt" => JGT,
        "jge" => JGE,
        "jset" => JSET,
        "jne" => JNE,
        "jsgt" => JSGT,
        "jsge" => JSGE,
        "jlt" => JLT,
        "jle" => JLE,
        "jslt" => JSLT,
        "jsle" => JSLE,
        _ => return None,
    })
}

/// `jXX[32] dst, src|imm, target`.
fn encode_cond_jump(m: &str, ops: &[Operand]) -> R<Encoded> {
    let (base, class) = match m.strip_suffix("32") {
        Some(b) => (b, JMP32),
        None => (m, JMP),
    };
    let op = jump_op(base).ok_or_else(|| unknown(m))?;
    want(m, ops, 3)?;
    let dst = reg(&ops[0])?;
    let insn = match &ops[1] {
        Operand::Reg(src) => Insn::new(class | op | X, dst, *src, 0, 0),
        other => Insn::new(class | op | K, dst, 0, 0, parse_imm32(word(other)?)?),
    };
    jump_target(insn, word(&ops[2])?, FixupField::Off)
}

fn alu_op(base: &str) -> Option<u8> {
    Some(match base {
        "add" => ADD,
        "sub" => SUB,
        "mul" => MUL,
        "div" | "sdiv" => DIV,
        "or" => OR,
        "and" => AND,
        "lsh" => LSH,
        "rsh" => RSH,
        "neg" => NEG,
        "mod" | "smod" => MOD,
        "xor" => XOR,
        "mov" => MOV,
        "arsh" => ARSH,
        _ => return None,
    })
}

fn byte_width(s: &str) -> Option<i32> {
    match s {
        "16" => Some(16),
        "32" => Some(32),
        "64" => Some(64),
        _ => None,
    }
}

/// ALU and ALU64 operations. A `32` suffix selects class ALU, none or `64`
/// selects ALU64. `sdiv`/`smod` set off=1 and `movsxNM` sets off=N (the
/// source width), per RFC 9669 section 4.1.
fn encode_alu(m: &str, ops: &[Operand]) -> R<Encoded> {
    // Byte swaps: `le`/`be` are class ALU with the source bit choosing the
    // target order; `swap`/`bswap` are the ALU64 unconditional swap.
    for (prefix, code) in [
        ("le", ALU | END | K),
        ("be", ALU | END | X),
        ("bswap", ALU64 | END | K),
        ("swap", ALU64 | END | K),
    ] {
        if let Some(width) = m.strip_prefix(prefix).and_then(byte_width) {
            want(m, ops, 1)?;
            return Ok(Encoded::one(Insn::new(code, reg(&ops[0])?, 0, 0, width)));
        }
    }
    let (base, class) = if let Some(b) = m.strip_suffix("32") {
        (b, ALU)
    } else if let Some(b) = m.strip_suffix("64") {
        (b, ALU64)
    } else {
        (m, ALU64)
    };
    let (op, off) = if let Some(width) = base.strip_prefix("movsx") {
        let off = match width {
            "8" => 8,
            "16" => 16,
            "32" if class == ALU64 => 32,
            _ => return Err(unknown(m)),
        };
        (MOV, off)
    } else {
        let op = alu_op(base).ok_or_else(|| unknown(m))?;
        (op, if base == "sdiv" || base == "smod" { 1 } else { 0 })
    };
    if op == NEG {
        want(m, ops, 1)?;
        return Ok(Encoded::one(Insn::new(class | NEG | K, reg(&ops[0])?, 0, off, 0)));
    }
    want(m, ops, 2)?;
    let dst = reg(&ops[0])?;
    Ok(Encoded::one(match &ops[1] {
        Operand::Reg(src) => Insn::new(class | op | X, dst, *src, off, 0),
        other => Insn::new(class | op | K, dst, 0, off, parse_imm32(word(other)?)?),
    }))
}

/// `lock [fetch] op[32] [dst+off], src` (RFC 9669 section 5.3). `xchg` and
/// `cmpxchg` always carry the fetch bit.
fn encode_atomic(ops: &[Operand]) -> R<Encoded> {
    let (fetch, rest) = match ops {
        [Operand::Word(f), rest @ ..] if f == "fetch" => (true, rest),
        _ => (false, ops),
    };
    let [Operand::Word(op), target, src] = rest else {
        return Err(AsmErrorKind::OperandCount {
            mnemonic: "lock".into(),
            expected: 3,
            found: rest.len(),
        });
    };
    let (base, size) = match op.strip_suffix("32") {
        Some(b) => (b, SIZE_W),
        None => (op.as_str(), SIZE_DW),
    };
    let imm = match base {
        "add" => ATOMIC_ADD,
        "or" => ATOMIC_OR,
        "and" => ATOMIC_AND,
        "xor" => ATOMIC_XOR,
        "xchg" => ATOMIC_XCHG,
        "cmpxchg" => ATOMIC_CMPXCHG,
        _ => return Err(unknown(&format!("lock {op}"))),
    } | if fetch { ATOMIC_FETCH } else { 0 };
    let (dst, off) = mem(target)?;
    let src = reg(src)?;
    Ok(Encoded::one(Insn::new(STX | MODE_ATOMIC | size, dst, src, off, imm)))
}
