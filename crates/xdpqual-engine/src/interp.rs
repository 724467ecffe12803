//! The interpreter: RFC 9669 semantics, with the kernel's choices where the
//! RFC leaves them open.
//!
//! Kernel-exact points (kernel/bpf/core.c `___bpf_prog_run` and the
//! verifier's rewrites in kernel/bpf/verifier.c `do_misc_fixups`):
//! - ALU32 results are zero-extended into the 64-bit register.
//! - Division by zero gives 0; modulo by zero leaves the dividend (for
//!   ALU32, its low 32 bits zero-extended). Signed division by -1 is
//!   negation (so INT_MIN / -1 = INT_MIN) and signed modulo by -1 is 0.
//! - Shift amounts are masked to the operand width.
//! - BPF-to-BPF calls get a fresh 512-byte frame; r6-r9 are callee-saved;
//!   at most 8 frames (`MAX_CALL_FRAMES`).
//! - Tail calls keep the frame, reset nothing but r1 (ctx, unchanged), and
//!   are limited to 33 per packet (`MAX_TAIL_CALL_CNT`).
//!
//! The program is decoded once, when the engine is built ([`decode`]), into
//! one [`Op`] per instruction slot: the operation and its operand kind are
//! one dense enum, immediates are already sign- or zero-extended, shift
//! amounts masked, jump and call targets absolute, `lddw` one operation
//! holding its 64-bit value, and byte-order conversions resolved for the
//! engine's byte order. The run loop dispatches once per instruction on
//! that enum. Slot numbering is the raw program's: `lddw` occupies two slots
//! (the second decodes as the invalid instruction it is, so a jump into it
//! faults there as before), so faults, traces, jump targets and the
//! instruction budget all see the original instruction indices.

use super::exec::{Exec, HelperOutcome, Stop};
use super::fault::{Fault, FaultKind};
use super::memory::{
    addr, offset_of, swap_width, tag_of, FRAME_SIZE, MAX_FRAMES, STACK_SIZE, TAG_MAP_VALUE_BASE,
    TAG_MEM, TAG_PACKET, TAG_STACK,
};
use super::trace::Tracer;
use xdpqual_isa::opcode::*;
use xdpqual_isa::Insn;

/// `BPF_LOAD_ACQ` / `BPF_STORE_REL` atomic operations (Linux 6.15).
const LOAD_ACQ: i32 = 0x100;
const STORE_REL: i32 = 0x110;

/// Sign-extends the low `bits` of `v`.
#[inline(always)]
fn sext(v: u64, bits: u32) -> u64 {
    let s = 64 - bits;
    (((v << s) as i64) >> s) as u64
}

// The kernel's division rules (RFC 9669 section 4.1; kernel/bpf/core.c
// DIV/MOD with the verifier's zero and -1 patches).

#[inline(always)]
fn udiv64(d: u64, s: u64) -> u64 {
    d.checked_div(s).unwrap_or(0)
}
#[inline(always)]
fn sdiv64(d: u64, s: u64) -> u64 {
    if s == 0 {
        0
    } else {
        (d as i64).wrapping_div(s as i64) as u64
    }
}
#[inline(always)]
fn umod64(d: u64, s: u64) -> u64 {
    if s == 0 {
        d
    } else {
        d % s
    }
}
#[inline(always)]
fn smod64(d: u64, s: u64) -> u64 {
    if s == 0 {
        d
    } else {
        (d as i64).wrapping_rem(s as i64) as u64
    }
}
#[inline(always)]
fn udiv32(d: u32, s: u32) -> u32 {
    d.checked_div(s).unwrap_or(0)
}
#[inline(always)]
fn sdiv32(d: u32, s: u32) -> u32 {
    if s == 0 {
        0
    } else {
        (d as i32).wrapping_div(s as i32) as u32
    }
}
#[inline(always)]
fn umod32(d: u32, s: u32) -> u32 {
    if s == 0 {
        d
    } else {
        d % s
    }
}
#[inline(always)]
fn smod32(d: u32, s: u32) -> u32 {
    if s == 0 {
        d
    } else {
        (d as i32).wrapping_rem(s as i32) as u32
    }
}

/// A register number known to be in range, so indexing the register file
/// with it needs no bounds check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Reg {
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
}

impl Reg {
    fn new(n: u8) -> Option<Reg> {
        use Reg::*;
        const ALL: [Reg; 11] = [R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10];
        ALL.get(n as usize).copied()
    }
}

/// One decoded instruction slot. `K` operations carry their immediate
/// already extended as the operation uses it; `X` operations a source
/// register. `t` is an absolute instruction index in the same program.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Add64K {
        d: Reg,
        k: u64,
    },
    Add64X {
        d: Reg,
        s: Reg,
    },
    Sub64K {
        d: Reg,
        k: u64,
    },
    Sub64X {
        d: Reg,
        s: Reg,
    },
    Mul64K {
        d: Reg,
        k: u64,
    },
    Mul64X {
        d: Reg,
        s: Reg,
    },
    Div64K {
        d: Reg,
        k: u64,
    },
    Div64X {
        d: Reg,
        s: Reg,
    },
    SDiv64K {
        d: Reg,
        k: u64,
    },
    SDiv64X {
        d: Reg,
        s: Reg,
    },
    Mod64K {
        d: Reg,
        k: u64,
    },
    Mod64X {
        d: Reg,
        s: Reg,
    },
    SMod64K {
        d: Reg,
        k: u64,
    },
    SMod64X {
        d: Reg,
        s: Reg,
    },
    Or64K {
        d: Reg,
        k: u64,
    },
    Or64X {
        d: Reg,
        s: Reg,
    },
    And64K {
        d: Reg,
        k: u64,
    },
    And64X {
        d: Reg,
        s: Reg,
    },
    Xor64K {
        d: Reg,
        k: u64,
    },
    Xor64X {
        d: Reg,
        s: Reg,
    },
    /// `k` already masked to 0..=63.
    Lsh64K {
        d: Reg,
        k: u64,
    },
    Lsh64X {
        d: Reg,
        s: Reg,
    },
    Rsh64K {
        d: Reg,
        k: u64,
    },
    Rsh64X {
        d: Reg,
        s: Reg,
    },
    Arsh64K {
        d: Reg,
        k: u64,
    },
    Arsh64X {
        d: Reg,
        s: Reg,
    },
    Neg64 {
        d: Reg,
    },
    /// Also every constant move: `mov32` of an immediate (zero-extended)
    /// and `movsx` of an immediate (extended here).
    Mov64K {
        d: Reg,
        k: u64,
    },
    Mov64X {
        d: Reg,
        s: Reg,
    },
    MovSx64 {
        d: Reg,
        s: Reg,
        bits: u8,
    },
    Add32K {
        d: Reg,
        k: u32,
    },
    Add32X {
        d: Reg,
        s: Reg,
    },
    Sub32K {
        d: Reg,
        k: u32,
    },
    Sub32X {
        d: Reg,
        s: Reg,
    },
    Mul32K {
        d: Reg,
        k: u32,
    },
    Mul32X {
        d: Reg,
        s: Reg,
    },
    Div32K {
        d: Reg,
        k: u32,
    },
    Div32X {
        d: Reg,
        s: Reg,
    },
    SDiv32K {
        d: Reg,
        k: u32,
    },
    SDiv32X {
        d: Reg,
        s: Reg,
    },
    Mod32K {
        d: Reg,
        k: u32,
    },
    Mod32X {
        d: Reg,
        s: Reg,
    },
    SMod32K {
        d: Reg,
        k: u32,
    },
    SMod32X {
        d: Reg,
        s: Reg,
    },
    Or32K {
        d: Reg,
        k: u32,
    },
    Or32X {
        d: Reg,
        s: Reg,
    },
    And32K {
        d: Reg,
        k: u32,
    },
    And32X {
        d: Reg,
        s: Reg,
    },
    Xor32K {
        d: Reg,
        k: u32,
    },
    Xor32X {
        d: Reg,
        s: Reg,
    },
    /// `k` already masked to 0..=31.
    Lsh32K {
        d: Reg,
        k: u32,
    },
    Lsh32X {
        d: Reg,
        s: Reg,
    },
    Rsh32K {
        d: Reg,
        k: u32,
    },
    Rsh32X {
        d: Reg,
        s: Reg,
    },
    Arsh32K {
        d: Reg,
        k: u32,
    },
    Arsh32X {
        d: Reg,
        s: Reg,
    },
    Neg32 {
        d: Reg,
    },
    Mov32X {
        d: Reg,
        s: Reg,
    },
    MovSx32 {
        d: Reg,
        s: Reg,
        bits: u8,
    },
    /// Byte swaps and truncations (`bswap`, `be`/`le` resolved for the
    /// engine's byte order).
    Swap16 {
        d: Reg,
    },
    Swap32 {
        d: Reg,
    },
    Swap64 {
        d: Reg,
    },
    Trunc16 {
        d: Reg,
    },
    Trunc32 {
        d: Reg,
    },
    /// `le64` on a little-endian engine (`be64` on a big-endian one): reads
    /// the register, changes nothing.
    Nop,
    Ja {
        t: u32,
    },
    JeqK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JeqX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JneK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JneX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JgtK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JgtX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JgeK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JgeX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JltK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JltX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JleK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JleX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JsetK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JsetX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JsgtK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JsgtX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JsgeK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JsgeX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JsltK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JsltX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    JsleK {
        d: Reg,
        k: u64,
        t: u32,
    },
    JsleX {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jeq32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jeq32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jne32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jne32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jgt32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jgt32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jge32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jge32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jlt32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jlt32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jle32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jle32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jset32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jset32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jsgt32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jsgt32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jsge32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jsge32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jslt32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jslt32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    Jsle32K {
        d: Reg,
        k: u32,
        t: u32,
    },
    Jsle32X {
        d: Reg,
        s: Reg,
        t: u32,
    },
    /// `d = *(size *)(s + off)`; load-acquire decodes to these too.
    LdxB {
        d: Reg,
        s: Reg,
        off: i16,
    },
    LdxH {
        d: Reg,
        s: Reg,
        off: i16,
    },
    LdxW {
        d: Reg,
        s: Reg,
        off: i16,
    },
    LdxDw {
        d: Reg,
        s: Reg,
        off: i16,
    },
    LdxSxB {
        d: Reg,
        s: Reg,
        off: i16,
    },
    LdxSxH {
        d: Reg,
        s: Reg,
        off: i16,
    },
    LdxSxW {
        d: Reg,
        s: Reg,
        off: i16,
    },
    /// `*(size *)(d + off) = s`; store-release decodes to these too.
    StxB {
        d: Reg,
        s: Reg,
        off: i16,
    },
    StxH {
        d: Reg,
        s: Reg,
        off: i16,
    },
    StxW {
        d: Reg,
        s: Reg,
        off: i16,
    },
    StxDw {
        d: Reg,
        s: Reg,
        off: i16,
    },
    StB {
        d: Reg,
        off: i16,
        k: u64,
    },
    StH {
        d: Reg,
        off: i16,
        k: u64,
    },
    StW {
        d: Reg,
        off: i16,
        k: u64,
    },
    StDw {
        d: Reg,
        off: i16,
        k: u64,
    },
    /// Read-modify-write atomics, `op` the instruction's `imm`.
    Atomic {
        d: Reg,
        s: Reg,
        off: i16,
        size: u8,
        op: i32,
    },
    /// Both slots of `lddw`: the next slot is `Invalid { code: 0 }`.
    Lddw {
        d: Reg,
        k: u64,
    },
    /// A helper (or kfunc, rewritten to its helper id by prepare).
    Call {
        id: i32,
    },
    /// A BPF-to-BPF call to `t`.
    CallLocal {
        t: u32,
    },
    /// A BPF-to-BPF call outside the program (prepare refuses these).
    CallOut {
        t: i64,
    },
    Callx {
        d: Reg,
    },
    Exit,
    /// An encoding the interpreter does not run: faults where it is.
    Invalid {
        code: u8,
    },
    /// One past the last instruction: falling off the end faults here.
    End,
}

// A decoded slot stays two words, as the raw instruction pair of lddw.
const _: () = assert!(std::mem::size_of::<Op>() == 16);

/// Decodes a prepared program (see [`crate::prepare::prepare`]) for the
/// interpreter: one [`Op`] per instruction slot plus a final [`Op::End`].
/// `big` is the engine's byte order, which `be`/`le` conversions depend on.
///
/// Every encoding decodes to an operation that does what the raw
/// instruction did in the step-by-step interpreter this replaces, including
/// faulting as an invalid instruction. The exceptions are encodings prepare
/// refuses, so no run meets them: a register number above 10 that the
/// operation uses, and a jump outside the program (it decodes to a jump to
/// the `End` slot, so it faults as out of range, at the end's index).
pub(crate) fn decode(insns: &[Insn], big: bool) -> Vec<Op> {
    let mut out: Vec<Op> = (0..insns.len()).map(|pc| decode_one(insns, pc, big)).collect();
    out.push(Op::End);
    out
}

fn decode_one(insns: &[Insn], pc: usize, big: bool) -> Op {
    let ins = insns[pc];
    let code = ins.code;
    let n = insns.len();
    let bad = Op::Invalid { code };
    let class = code & 0x07;
    let op = code & 0xf0;
    let x = code & X != 0;
    let k64 = ins.imm as i64 as u64;
    let k32 = ins.imm as u32;
    let off = ins.off;
    macro_rules! d {
        () => {
            match Reg::new(ins.dst) {
                Some(r) => r,
                None => return bad,
            }
        };
    }
    macro_rules! s {
        () => {
            match Reg::new(ins.src) {
                Some(r) => r,
                None => return bad,
            }
        };
    }
    // Jump targets: absolute, or the End slot for one outside the program.
    let target = |delta: i64| -> u32 {
        let t = pc as i64 + 1 + delta;
        if t >= 0 && (t as usize) < n {
            t as u32
        } else {
            n as u32
        }
    };
    macro_rules! pick {
        ($k:ident, $x:ident, $kv:expr) => {
            if x {
                Op::$x { d: d!(), s: s!() }
            } else {
                Op::$k { d: d!(), k: $kv }
            }
        };
    }
    match class {
        ALU64 => match op {
            // cpu v4 bswap: unconditional, ALU64 with source K.
            END if x => bad,
            END => match ins.imm {
                16 => Op::Swap16 { d: d!() },
                32 => Op::Swap32 { d: d!() },
                64 => Op::Swap64 { d: d!() },
                _ => bad,
            },
            ADD => pick!(Add64K, Add64X, k64),
            SUB => pick!(Sub64K, Sub64X, k64),
            MUL => pick!(Mul64K, Mul64X, k64),
            DIV if off == 1 => pick!(SDiv64K, SDiv64X, k64),
            DIV => pick!(Div64K, Div64X, k64),
            MOD if off == 1 => pick!(SMod64K, SMod64X, k64),
            MOD => pick!(Mod64K, Mod64X, k64),
            OR => pick!(Or64K, Or64X, k64),
            AND => pick!(And64K, And64X, k64),
            XOR => pick!(Xor64K, Xor64X, k64),
            LSH => pick!(Lsh64K, Lsh64X, k64 & 63),
            RSH => pick!(Rsh64K, Rsh64X, k64 & 63),
            ARSH => pick!(Arsh64K, Arsh64X, k64 & 63),
            NEG => Op::Neg64 { d: d!() },
            MOV => match off {
                0 => pick!(Mov64K, Mov64X, k64),
                8 | 16 | 32 if x => Op::MovSx64 { d: d!(), s: s!(), bits: off as u8 },
                8 | 16 | 32 => Op::Mov64K { d: d!(), k: sext(k64, off as u32) },
                _ => bad,
            },
            _ => bad,
        },
        ALU => match op {
            // BPF_TO_BE (source X) swaps on a little-endian machine and
            // only truncates on a big-endian one; BPF_TO_LE the other way
            // round (kernel/bpf/core.c ALU_END_TO_BE uses cpu_to_be16/32/64,
            // which are no-ops on big-endian hosts).
            END => match (x != big, ins.imm) {
                (true, 16) => Op::Swap16 { d: d!() },
                (true, 32) => Op::Swap32 { d: d!() },
                (true, 64) => Op::Swap64 { d: d!() },
                (false, 16) => Op::Trunc16 { d: d!() },
                (false, 32) => Op::Trunc32 { d: d!() },
                (false, 64) => {
                    d!();
                    Op::Nop
                }
                _ => bad,
            },
            ADD => pick!(Add32K, Add32X, k32),
            SUB => pick!(Sub32K, Sub32X, k32),
            MUL => pick!(Mul32K, Mul32X, k32),
            DIV if off == 1 => pick!(SDiv32K, SDiv32X, k32),
            DIV => pick!(Div32K, Div32X, k32),
            MOD if off == 1 => pick!(SMod32K, SMod32X, k32),
            MOD => pick!(Mod32K, Mod32X, k32),
            OR => pick!(Or32K, Or32X, k32),
            AND => pick!(And32K, And32X, k32),
            XOR => pick!(Xor32K, Xor32X, k32),
            LSH => pick!(Lsh32K, Lsh32X, k32 & 31),
            RSH => pick!(Rsh32K, Rsh32X, k32 & 31),
            ARSH => pick!(Arsh32K, Arsh32X, k32 & 31),
            NEG => Op::Neg32 { d: d!() },
            MOV => match off {
                0 if x => Op::Mov32X { d: d!(), s: s!() },
                0 => Op::Mov64K { d: d!(), k: k32 as u64 },
                8 | 16 if x => Op::MovSx32 { d: d!(), s: s!(), bits: off as u8 },
                8 | 16 => Op::Mov64K { d: d!(), k: sext(k32 as u64, off as u32) as u32 as u64 },
                _ => bad,
            },
            _ => bad,
        },
        JMP | JMP32 => {
            let wide = class == JMP;
            match op {
                JA => Op::Ja { t: target(if wide { off as i64 } else { ins.imm as i64 }) },
                EXIT if wide => Op::Exit,
                CALL if wide => {
                    if x {
                        // callx: only the conformance suite uses it (the
                        // kernel verifier refuses it).
                        Op::Callx { d: d!() }
                    } else if ins.src == PSEUDO_CALL {
                        let t = pc as i64 + 1 + ins.imm as i64;
                        if t >= 0 && (t as usize) < n {
                            Op::CallLocal { t: t as u32 }
                        } else {
                            Op::CallOut { t }
                        }
                    } else if ins.src == CALL_HELPER {
                        Op::Call { id: ins.imm }
                    } else {
                        bad
                    }
                }
                _ => {
                    let t = target(off as i64);
                    macro_rules! jc {
                        ($k:ident, $x:ident, $k32:ident, $x32:ident) => {
                            match (wide, x) {
                                (true, false) => Op::$k { d: d!(), k: k64, t },
                                (true, true) => Op::$x { d: d!(), s: s!(), t },
                                (false, false) => Op::$k32 { d: d!(), k: k32, t },
                                (false, true) => Op::$x32 { d: d!(), s: s!(), t },
                            }
                        };
                    }
                    match op {
                        JEQ => jc!(JeqK, JeqX, Jeq32K, Jeq32X),
                        JNE => jc!(JneK, JneX, Jne32K, Jne32X),
                        JGT => jc!(JgtK, JgtX, Jgt32K, Jgt32X),
                        JGE => jc!(JgeK, JgeX, Jge32K, Jge32X),
                        JLT => jc!(JltK, JltX, Jlt32K, Jlt32X),
                        JLE => jc!(JleK, JleX, Jle32K, Jle32X),
                        JSET => jc!(JsetK, JsetX, Jset32K, Jset32X),
                        JSGT => jc!(JsgtK, JsgtX, Jsgt32K, Jsgt32X),
                        JSGE => jc!(JsgeK, JsgeX, Jsge32K, Jsge32X),
                        JSLT => jc!(JsltK, JsltX, Jslt32K, Jslt32X),
                        JSLE => jc!(JsleK, JsleX, Jsle32K, Jsle32X),
                        _ => bad,
                    }
                }
            }
        }
        LDX => {
            let (d, s) = (d!(), s!());
            match (code & 0xe0, mem_size(code)) {
                (MODE_MEM, 1) => Op::LdxB { d, s, off },
                (MODE_MEM, 2) => Op::LdxH { d, s, off },
                (MODE_MEM, 4) => Op::LdxW { d, s, off },
                (MODE_MEM, _) => Op::LdxDw { d, s, off },
                (MODE_MEMSX, 1) => Op::LdxSxB { d, s, off },
                (MODE_MEMSX, 2) => Op::LdxSxH { d, s, off },
                (MODE_MEMSX, 4) => Op::LdxSxW { d, s, off },
                _ => bad,
            }
        }
        ST => {
            if code & 0xe0 != MODE_MEM {
                return bad;
            }
            let d = d!();
            match mem_size(code) {
                1 => Op::StB { d, off, k: k64 },
                2 => Op::StH { d, off, k: k64 },
                4 => Op::StW { d, off, k: k64 },
                _ => Op::StDw { d, off, k: k64 },
            }
        }
        STX => {
            let (d, s) = (d!(), s!());
            let size = mem_size(code);
            match code & 0xe0 {
                // Load-acquire reads [src + off] into dst, store-release is
                // a plain store: ordering is moot in a single-threaded
                // engine (one map instance per run).
                MODE_ATOMIC if ins.imm == LOAD_ACQ => match size {
                    1 => Op::LdxB { d, s, off },
                    2 => Op::LdxH { d, s, off },
                    4 => Op::LdxW { d, s, off },
                    _ => Op::LdxDw { d, s, off },
                },
                MODE_MEM => match size {
                    1 => Op::StxB { d, s, off },
                    2 => Op::StxH { d, s, off },
                    4 => Op::StxW { d, s, off },
                    _ => Op::StxDw { d, s, off },
                },
                MODE_ATOMIC if ins.imm == STORE_REL => match size {
                    1 => Op::StxB { d, s, off },
                    2 => Op::StxH { d, s, off },
                    4 => Op::StxW { d, s, off },
                    _ => Op::StxDw { d, s, off },
                },
                MODE_ATOMIC => Op::Atomic { d, s, off, size: size as u8, op: ins.imm },
                _ => bad,
            }
        }
        // LD: only lddw; prepare() turned every pseudo source into a plain
        // 64-bit constant. LD_ABS/LD_IND are refused at load.
        _ => {
            if code != LD_DW_IMM {
                return bad;
            }
            let Some(hi) = insns.get(pc + 1) else { return bad };
            Op::Lddw { d: d!(), k: (ins.imm as u32 as u64) | ((hi.imm as u32 as u64) << 32) }
        }
    }
}

/// The low `N` bytes of `v`'s little-endian form as a value.
#[inline(always)]
fn value_of<const N: usize>(bytes: &[u8; N]) -> u64 {
    let mut b = [0u8; 8];
    b[..N].copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

impl<T: Tracer> Exec<'_, T> {
    #[cold]
    #[inline(never)]
    fn fault(&self, prog: usize, pc: usize, kind: FaultKind) -> Stop {
        let p = &self.programs[prog];
        let line = p.lines.lookup(pc).map(|l| format!("{}:{}", l.file, l.line));
        Stop::Fault(Box::new(Fault { pc, program: p.name.clone(), kind, line }))
    }

    /// The bytes of an `N`-byte access that lies wholly in the stack the
    /// current frame may touch, the packet, or the conformance memory; `None`
    /// for anything else (then `load`/`store` decide, and fault). The stack
    /// is one compare: its valid range is one interval of the tagged address
    /// space. Only for tracers that observe nothing: one that does sees
    /// every access through `slice`.
    #[inline(always)]
    fn fast_bytes<const N: usize>(&mut self, a: u64, write: bool) -> Option<&mut [u8; N]> {
        let lo = self.stack_low;
        let rel = a.wrapping_sub(addr(TAG_STACK, lo as u64));
        if rel <= (STACK_SIZE - N - lo) as u64 {
            let o = lo + rel as usize;
            if write {
                self.stack_dirty = self.stack_dirty.min(o);
            }
            return self.stack.get_mut(o..)?.first_chunk_mut::<N>();
        }
        let off = offset_of(a);
        match tag_of(a) {
            TAG_PACKET => {
                let b = self.buff.as_deref_mut()?;
                if off >= b.data_meta as u64 && off + N as u64 <= b.data_end as u64 {
                    b.page.get_mut(off as usize..)?.first_chunk_mut::<N>()
                } else {
                    None
                }
            }
            TAG_MEM => self.mem.as_deref_mut()?.get_mut(off as usize..)?.first_chunk_mut::<N>(),
            // A map value, where `Exec::slice`'s check is a mask and two
            // compares (the JIT's `FastMap` condition): a power-of-two
            // stride or a single slot, and a writable map for a store. The
            // offset in the slot less this CPU's part (0 but for a per-CPU
            // map on a CPU other than 0) must leave room for the access in
            // the value; before the part it wraps and fails. Anything else,
            // and every access that would fault, goes to `slice`.
            t if t >= TAG_MAP_VALUE_BASE => {
                let cpu = self.cpu;
                let m = self.maps.maps.get_mut((t - TAG_MAP_VALUE_BASE) as usize)?;
                let part = if m.def.map_type.is_percpu() {
                    cpu.checked_mul(m.per_cpu).filter(|p| p + m.per_cpu <= m.stride)?
                } else if m.per_cpu == m.stride {
                    0
                } else {
                    return None;
                };
                let mask = if m.values.len() == m.stride {
                    usize::MAX
                } else if m.stride.is_power_of_two() {
                    m.stride - 1
                } else {
                    return None;
                };
                if write && m.read_only {
                    return None;
                }
                let o = off as usize;
                if (o & mask).wrapping_sub(part).checked_add(N)? > m.def.value_size as usize {
                    return None;
                }
                m.values.get_mut(o..)?.first_chunk_mut::<N>()
            }
            _ => None,
        }
    }

    #[inline(always)]
    fn ld<const N: usize>(&mut self, pc: usize, a: u64) -> Result<u64, FaultKind> {
        if !T::OBSERVES {
            let big = self.big;
            if let Some(b) = self.fast_bytes::<N>(a, false) {
                let v = value_of(b);
                return Ok(if big { swap_width(v, N) } else { v });
            }
        }
        self.load(pc, a, N)
    }

    #[inline(always)]
    fn st<const N: usize>(&mut self, pc: usize, a: u64, v: u64) -> Result<(), FaultKind> {
        if !T::OBSERVES {
            let w = if self.big { swap_width(v, N) } else { v };
            if let Some(b) = self.fast_bytes::<N>(a, true) {
                b.copy_from_slice(&w.to_le_bytes()[..N]);
                return Ok(());
            }
        }
        self.store(pc, a, N, v)
    }

    /// Runs a function from `pc` until its `exit`, with `regs` as its
    /// registers (r10 already set up by the caller). `depth` is the frame
    /// index, 0 for the program's entry.
    pub(crate) fn run_frame(
        &mut self,
        mut prog: usize,
        mut pc: usize,
        regs: &mut [u64; 11],
        depth: usize,
    ) -> Result<(), Stop> {
        let programs = self.programs;
        let mut code = &programs[prog].code[..];
        // A callback address a program computed may point anywhere; inside
        // the program every target was checked when it was decoded.
        if pc >= code.len() - 1 {
            return Err(self.fault(prog, pc, FaultKind::PcOutOfRange { pc: pc as i64 }));
        }
        // The instruction count lives in a local for the loop and is
        // written back whenever something else may read it (a helper, a
        // call, the caller on return).
        let budget = self.budget;
        let mut executed = self.executed;
        macro_rules! leave {
            ($r:expr) => {{
                self.executed = executed;
                return $r;
            }};
        }
        macro_rules! fault {
            ($k:expr) => {{
                let k = $k;
                leave!(Err(self.fault(prog, pc, k)))
            }};
        }
        macro_rules! r {
            ($r:expr) => {
                regs[$r as usize]
            };
        }
        macro_rules! ea {
            ($r:expr, $off:expr) => {
                r!($r).wrapping_add($off as i64 as u64)
            };
        }
        macro_rules! ldx {
            ($n:literal, $d:expr, $s:expr, $off:expr) => {
                match self.ld::<$n>(pc, ea!($s, $off)) {
                    Ok(v) => r!($d) = v,
                    Err(k) => fault!(k),
                }
            };
        }
        macro_rules! ldsx {
            ($n:literal, $d:expr, $s:expr, $off:expr) => {
                match self.ld::<$n>(pc, ea!($s, $off)) {
                    Ok(v) => r!($d) = sext(v, $n * 8),
                    Err(k) => fault!(k),
                }
            };
        }
        macro_rules! st {
            ($n:literal, $d:expr, $off:expr, $v:expr) => {{
                let v = $v;
                if let Err(k) = self.st::<$n>(pc, ea!($d, $off), v) {
                    fault!(k)
                }
            }};
        }
        macro_rules! jump_if {
            ($c:expr, $t:expr) => {
                if $c {
                    pc = $t as usize;
                    continue;
                }
            };
        }
        macro_rules! alu32 {
            ($d:expr, $v:ident => $e:expr) => {{
                let $v = r!($d) as u32;
                r!($d) = ($e) as u64;
            }};
        }
        loop {
            let op = code[pc];
            executed += 1;
            if executed > budget {
                if matches!(op, Op::End) {
                    // Past the end is found before the budget is charged.
                    executed -= 1;
                    fault!(FaultKind::PcOutOfRange { pc: pc as i64 });
                }
                fault!(FaultKind::BudgetExhausted { budget });
            }
            if T::OBSERVES {
                if let Some(&ins) = programs[prog].insns.get(pc) {
                    self.tracer.insn(prog, pc, ins, regs);
                }
            }
            match op {
                Op::Add64K { d, k } => r!(d) = r!(d).wrapping_add(k),
                Op::Add64X { d, s } => r!(d) = r!(d).wrapping_add(r!(s)),
                Op::Sub64K { d, k } => r!(d) = r!(d).wrapping_sub(k),
                Op::Sub64X { d, s } => r!(d) = r!(d).wrapping_sub(r!(s)),
                Op::Mul64K { d, k } => r!(d) = r!(d).wrapping_mul(k),
                Op::Mul64X { d, s } => r!(d) = r!(d).wrapping_mul(r!(s)),
                Op::Div64K { d, k } => r!(d) = udiv64(r!(d), k),
                Op::Div64X { d, s } => r!(d) = udiv64(r!(d), r!(s)),
                Op::SDiv64K { d, k } => r!(d) = sdiv64(r!(d), k),
                Op::SDiv64X { d, s } => r!(d) = sdiv64(r!(d), r!(s)),
                Op::Mod64K { d, k } => r!(d) = umod64(r!(d), k),
                Op::Mod64X { d, s } => r!(d) = umod64(r!(d), r!(s)),
                Op::SMod64K { d, k } => r!(d) = smod64(r!(d), k),
                Op::SMod64X { d, s } => r!(d) = smod64(r!(d), r!(s)),
                Op::Or64K { d, k } => r!(d) |= k,
                Op::Or64X { d, s } => r!(d) |= r!(s),
                Op::And64K { d, k } => r!(d) &= k,
                Op::And64X { d, s } => r!(d) &= r!(s),
                Op::Xor64K { d, k } => r!(d) ^= k,
                Op::Xor64X { d, s } => r!(d) ^= r!(s),
                Op::Lsh64K { d, k } => r!(d) <<= k,
                Op::Lsh64X { d, s } => r!(d) <<= r!(s) & 63,
                Op::Rsh64K { d, k } => r!(d) >>= k,
                Op::Rsh64X { d, s } => r!(d) >>= r!(s) & 63,
                Op::Arsh64K { d, k } => r!(d) = ((r!(d) as i64) >> k) as u64,
                Op::Arsh64X { d, s } => r!(d) = ((r!(d) as i64) >> (r!(s) & 63)) as u64,
                Op::Neg64 { d } => r!(d) = (r!(d) as i64).wrapping_neg() as u64,
                Op::Mov64K { d, k } => r!(d) = k,
                Op::Mov64X { d, s } => r!(d) = r!(s),
                Op::MovSx64 { d, s, bits } => r!(d) = sext(r!(s), bits as u32),
                Op::Add32K { d, k } => alu32!(d, v => v.wrapping_add(k)),
                Op::Add32X { d, s } => alu32!(d, v => v.wrapping_add(r!(s) as u32)),
                Op::Sub32K { d, k } => alu32!(d, v => v.wrapping_sub(k)),
                Op::Sub32X { d, s } => alu32!(d, v => v.wrapping_sub(r!(s) as u32)),
                Op::Mul32K { d, k } => alu32!(d, v => v.wrapping_mul(k)),
                Op::Mul32X { d, s } => alu32!(d, v => v.wrapping_mul(r!(s) as u32)),
                Op::Div32K { d, k } => alu32!(d, v => udiv32(v, k)),
                Op::Div32X { d, s } => alu32!(d, v => udiv32(v, r!(s) as u32)),
                Op::SDiv32K { d, k } => alu32!(d, v => sdiv32(v, k)),
                Op::SDiv32X { d, s } => alu32!(d, v => sdiv32(v, r!(s) as u32)),
                Op::Mod32K { d, k } => alu32!(d, v => umod32(v, k)),
                Op::Mod32X { d, s } => alu32!(d, v => umod32(v, r!(s) as u32)),
                Op::SMod32K { d, k } => alu32!(d, v => smod32(v, k)),
                Op::SMod32X { d, s } => alu32!(d, v => smod32(v, r!(s) as u32)),
                Op::Or32K { d, k } => alu32!(d, v => v | k),
                Op::Or32X { d, s } => alu32!(d, v => v | r!(s) as u32),
                Op::And32K { d, k } => alu32!(d, v => v & k),
                Op::And32X { d, s } => alu32!(d, v => v & r!(s) as u32),
                Op::Xor32K { d, k } => alu32!(d, v => v ^ k),
                Op::Xor32X { d, s } => alu32!(d, v => v ^ r!(s) as u32),
                Op::Lsh32K { d, k } => alu32!(d, v => v << k),
                Op::Lsh32X { d, s } => alu32!(d, v => v << (r!(s) as u32 & 31)),
                Op::Rsh32K { d, k } => alu32!(d, v => v >> k),
                Op::Rsh32X { d, s } => alu32!(d, v => v >> (r!(s) as u32 & 31)),
                Op::Arsh32K { d, k } => alu32!(d, v => (v as i32 >> k) as u32),
                Op::Arsh32X { d, s } => alu32!(d, v => (v as i32 >> (r!(s) as u32 & 31)) as u32),
                Op::Neg32 { d } => alu32!(d, v => (v as i32).wrapping_neg() as u32),
                Op::Mov32X { d, s } => r!(d) = r!(s) as u32 as u64,
                Op::MovSx32 { d, s, bits } => {
                    r!(d) = sext(r!(s) as u32 as u64, bits as u32) as u32 as u64
                }
                Op::Swap16 { d } => r!(d) = (r!(d) as u16).swap_bytes() as u64,
                Op::Swap32 { d } => r!(d) = (r!(d) as u32).swap_bytes() as u64,
                Op::Swap64 { d } => r!(d) = r!(d).swap_bytes(),
                Op::Trunc16 { d } => r!(d) = r!(d) as u16 as u64,
                Op::Trunc32 { d } => r!(d) = r!(d) as u32 as u64,
                Op::Nop => {}
                Op::Ja { t } => {
                    pc = t as usize;
                    continue;
                }
                Op::JeqK { d, k, t } => jump_if!(r!(d) == k, t),
                Op::JeqX { d, s, t } => jump_if!(r!(d) == r!(s), t),
                Op::JneK { d, k, t } => jump_if!(r!(d) != k, t),
                Op::JneX { d, s, t } => jump_if!(r!(d) != r!(s), t),
                Op::JgtK { d, k, t } => jump_if!(r!(d) > k, t),
                Op::JgtX { d, s, t } => jump_if!(r!(d) > r!(s), t),
                Op::JgeK { d, k, t } => jump_if!(r!(d) >= k, t),
                Op::JgeX { d, s, t } => jump_if!(r!(d) >= r!(s), t),
                Op::JltK { d, k, t } => jump_if!(r!(d) < k, t),
                Op::JltX { d, s, t } => jump_if!(r!(d) < r!(s), t),
                Op::JleK { d, k, t } => jump_if!(r!(d) <= k, t),
                Op::JleX { d, s, t } => jump_if!(r!(d) <= r!(s), t),
                Op::JsetK { d, k, t } => jump_if!(r!(d) & k != 0, t),
                Op::JsetX { d, s, t } => jump_if!(r!(d) & r!(s) != 0, t),
                Op::JsgtK { d, k, t } => jump_if!((r!(d) as i64) > k as i64, t),
                Op::JsgtX { d, s, t } => jump_if!((r!(d) as i64) > r!(s) as i64, t),
                Op::JsgeK { d, k, t } => jump_if!((r!(d) as i64) >= k as i64, t),
                Op::JsgeX { d, s, t } => jump_if!((r!(d) as i64) >= r!(s) as i64, t),
                Op::JsltK { d, k, t } => jump_if!((r!(d) as i64) < k as i64, t),
                Op::JsltX { d, s, t } => jump_if!((r!(d) as i64) < r!(s) as i64, t),
                Op::JsleK { d, k, t } => jump_if!((r!(d) as i64) <= k as i64, t),
                Op::JsleX { d, s, t } => jump_if!((r!(d) as i64) <= r!(s) as i64, t),
                Op::Jeq32K { d, k, t } => jump_if!((r!(d) as u32) == k, t),
                Op::Jeq32X { d, s, t } => jump_if!((r!(d) as u32) == r!(s) as u32, t),
                Op::Jne32K { d, k, t } => jump_if!((r!(d) as u32) != k, t),
                Op::Jne32X { d, s, t } => jump_if!((r!(d) as u32) != r!(s) as u32, t),
                Op::Jgt32K { d, k, t } => jump_if!((r!(d) as u32) > k, t),
                Op::Jgt32X { d, s, t } => jump_if!((r!(d) as u32) > r!(s) as u32, t),
                Op::Jge32K { d, k, t } => jump_if!((r!(d) as u32) >= k, t),
                Op::Jge32X { d, s, t } => jump_if!((r!(d) as u32) >= r!(s) as u32, t),
                Op::Jlt32K { d, k, t } => jump_if!((r!(d) as u32) < k, t),
                Op::Jlt32X { d, s, t } => jump_if!((r!(d) as u32) < r!(s) as u32, t),
                Op::Jle32K { d, k, t } => jump_if!((r!(d) as u32) <= k, t),
                Op::Jle32X { d, s, t } => jump_if!((r!(d) as u32) <= r!(s) as u32, t),
                Op::Jset32K { d, k, t } => jump_if!((r!(d) as u32) & k != 0, t),
                Op::Jset32X { d, s, t } => jump_if!((r!(d) as u32) & r!(s) as u32 != 0, t),
                Op::Jsgt32K { d, k, t } => jump_if!((r!(d) as i32) > k as i32, t),
                Op::Jsgt32X { d, s, t } => jump_if!((r!(d) as i32) > r!(s) as i32, t),
                Op::Jsge32K { d, k, t } => jump_if!((r!(d) as i32) >= k as i32, t),
                Op::Jsge32X { d, s, t } => jump_if!((r!(d) as i32) >= r!(s) as i32, t),
                Op::Jslt32K { d, k, t } => jump_if!((r!(d) as i32) < k as i32, t),
                Op::Jslt32X { d, s, t } => jump_if!((r!(d) as i32) < r!(s) as i32, t),
                Op::Jsle32K { d, k, t } => jump_if!((r!(d) as i32) <= k as i32, t),
                Op::Jsle32X { d, s, t } => jump_if!((r!(d) as i32) <= r!(s) as i32, t),
                Op::LdxB { d, s, off } => ldx!(1, d, s, off),
                Op::LdxH { d, s, off } => ldx!(2, d, s, off),
                Op::LdxW { d, s, off } => ldx!(4, d, s, off),
                Op::LdxDw { d, s, off } => ldx!(8, d, s, off),
                Op::LdxSxB { d, s, off } => ldsx!(1, d, s, off),
                Op::LdxSxH { d, s, off } => ldsx!(2, d, s, off),
                Op::LdxSxW { d, s, off } => ldsx!(4, d, s, off),
                Op::StxB { d, s, off } => st!(1, d, off, r!(s)),
                Op::StxH { d, s, off } => st!(2, d, off, r!(s)),
                Op::StxW { d, s, off } => st!(4, d, off, r!(s)),
                Op::StxDw { d, s, off } => st!(8, d, off, r!(s)),
                Op::StB { d, off, k } => st!(1, d, off, k),
                Op::StH { d, off, k } => st!(2, d, off, k),
                Op::StW { d, off, k } => st!(4, d, off, k),
                Op::StDw { d, off, k } => st!(8, d, off, k),
                Op::Atomic { d, s, off, size, op } => {
                    let a = ea!(d, off);
                    if let Err(k) = self.atomic(pc, op, a, size as usize, s as usize, regs) {
                        fault!(k)
                    }
                }
                Op::Lddw { d, k } => {
                    r!(d) = k;
                    pc += 2;
                    continue;
                }
                // Calls leave the loop's registers: out of line, so that
                // their state does not weigh on every other instruction.
                Op::Call { id } => {
                    self.executed = executed;
                    let res = self.call_op(id, prog, pc, regs, depth);
                    executed = self.executed;
                    match res {
                        Ok(None) => {}
                        Ok(Some(target)) => {
                            prog = target;
                            code = &programs[prog].code[..];
                            pc = 0;
                            continue;
                        }
                        Err(stop) => leave!(Err(stop)),
                    }
                }
                Op::CallLocal { t } => {
                    self.executed = executed;
                    let res = self.call_local(prog, pc, t as usize, regs, depth);
                    executed = self.executed;
                    if let Err(stop) = res {
                        leave!(Err(stop));
                    }
                }
                Op::CallOut { t } => {
                    if depth + 1 >= MAX_FRAMES {
                        fault!(FaultKind::CallDepth);
                    }
                    fault!(FaultKind::PcOutOfRange { pc: t });
                }
                Op::Callx { d } => {
                    self.executed = executed;
                    let res = self.callx_op(r!(d) as i32, prog, pc, regs, depth);
                    executed = self.executed;
                    if let Err(stop) = res {
                        leave!(Err(stop));
                    }
                }
                Op::Exit => leave!(Ok(())),
                Op::Invalid { code } => fault!(FaultKind::InvalidInstruction { code }),
                Op::End => {
                    // Not an instruction: it neither counts nor traces.
                    executed -= 1;
                    fault!(FaultKind::PcOutOfRange { pc: pc as i64 });
                }
            }
            pc += 1;
        }
    }

    /// A helper call at `pc`: `Some(program)` when it tail-called.
    #[inline(never)]
    fn call_op(
        &mut self,
        id: i32,
        prog: usize,
        pc: usize,
        regs: &mut [u64; 11],
        depth: usize,
    ) -> Result<Option<usize>, Stop> {
        self.tracer.helper(pc, id);
        let mut tail = None;
        match self.call_helper(id, prog, pc, regs, depth) {
            Ok(HelperOutcome::Return(v)) => regs[0] = v,
            // The frame is reused; r1 (ctx) is what the tail-called
            // program sees.
            Ok(HelperOutcome::TailCall(target)) => tail = Some(target),
            Ok(HelperOutcome::Unwind(v)) => {
                regs[0] = v;
                return Err(Stop::Unwind);
            }
            Err(k) => return Err(self.fault(prog, pc, k)),
        }
        // Helpers clobber the caller-saved registers; the verifier marks
        // them unreadable, so any value is exact. Zero them for determinism.
        regs[1..6].fill(0);
        if tail.is_some() {
            // tail call: r1 must still be the ctx.
            regs[1] = self.ctx_addr;
        }
        Ok(tail)
    }

    /// A BPF-to-BPF call at `pc` to `target`, in a fresh frame.
    #[inline(never)]
    fn call_local(
        &mut self,
        prog: usize,
        pc: usize,
        target: usize,
        regs: &mut [u64; 11],
        depth: usize,
    ) -> Result<(), Stop> {
        if depth + 1 >= MAX_FRAMES {
            return Err(self.fault(prog, pc, FaultKind::CallDepth));
        }
        let saved = [regs[6], regs[7], regs[8], regs[9], regs[10]];
        regs[10] = addr(TAG_STACK, (STACK_SIZE - (depth + 1) * FRAME_SIZE) as u64);
        let saved_low = self.stack_low;
        self.stack_low = STACK_SIZE - (depth + 2) * FRAME_SIZE;
        self.clear_frame(depth + 1);
        let res = self.run_frame(prog, target, regs, depth + 1);
        self.stack_low = saved_low;
        res?;
        regs[6..11].copy_from_slice(&saved);
        Ok(())
    }

    /// `callx` at `pc` of helper `id`: the kernel's verifier refuses it;
    /// bpf_conformance uses it, with no helper that tail-calls.
    #[inline(never)]
    fn callx_op(
        &mut self,
        id: i32,
        prog: usize,
        pc: usize,
        regs: &mut [u64; 11],
        depth: usize,
    ) -> Result<(), Stop> {
        let bad = FaultKind::InvalidInstruction { code: JMP | CALL | X };
        if !self.allow_callx {
            return Err(self.fault(prog, pc, bad));
        }
        match self.call_helper(id, prog, pc, regs, depth) {
            Ok(HelperOutcome::Return(v)) => regs[0] = v,
            Ok(HelperOutcome::Unwind(v)) => {
                regs[0] = v;
                return Err(Stop::Unwind);
            }
            Ok(HelperOutcome::TailCall(_)) => return Err(self.fault(prog, pc, bad)),
            Err(k) => return Err(self.fault(prog, pc, k)),
        }
        Ok(())
    }

    pub(crate) fn atomic(
        &mut self,
        pc: usize,
        op: i32,
        a: u64,
        size: usize,
        src: usize,
        regs: &mut [u64; 11],
    ) -> Result<(), FaultKind> {
        // Store-release (Linux 6.15+) is a plain store here: the engine is
        // single-threaded per map instance.
        if op == STORE_REL {
            return self.store(pc, a, size, regs[src]);
        }
        if size != 4 && size != 8 {
            return Err(FaultKind::InvalidInstruction { code: STX | MODE_ATOMIC });
        }
        self.check_atomic_region(a)?;
        let mask = if size == 4 { u32::MAX as u64 } else { u64::MAX };
        let (s, r0) = (regs[src] & mask, regs[0] & mask);
        // In place where `fast_bytes` reaches the location for writing
        // (stack, conformance memory, a writable map value in its fast
        // form): one bounds check instead of `load` and `store` each
        // going through `slice`. Anything else, including every access
        // that faults, takes the two steps below, so a fault is the one
        // the load or the store gives.
        if !T::OBSERVES {
            let big = self.big;
            let located = if size == 4 {
                self.fast_bytes::<4>(a, true).map(|b| &mut b[..])
            } else {
                self.fast_bytes::<8>(a, true).map(|b| &mut b[..])
            };
            if let Some(bytes) = located {
                let raw = bytes.iter().rev().fold(0u64, |v, &b| v << 8 | b as u64);
                let old = if big { swap_width(raw, size) } else { raw };
                let effect = atomic_effect(op, old, s, r0)?;
                if let Some(new) = effect.store {
                    let w = if big { swap_width(new & mask, size) } else { new & mask };
                    bytes.copy_from_slice(&w.to_le_bytes()[..size]);
                }
                effect.apply(op, old, src, regs);
                return Ok(());
            }
        }
        let old = self.load(pc, a, size)?;
        let effect = atomic_effect(op, old, s, r0)?;
        if let Some(new) = effect.store {
            self.store(pc, a, size, new & mask)?;
        }
        effect.apply(op, old, src, regs);
        Ok(())
    }
}

/// What an atomic operation does, given the location's old value `old`
/// and the source and r0 registers truncated to its size.
struct AtomicEffect {
    /// The value to store, if any (cmpxchg stores only on a match).
    store: Option<u64>,
    /// Whether the old value goes to the source register (the fetch forms
    /// and xchg); cmpxchg puts it in r0 instead.
    fetch: bool,
}

fn atomic_effect(op: i32, old: u64, s: u64, r0: u64) -> Result<AtomicEffect, FaultKind> {
    let fetch = op & ATOMIC_FETCH != 0;
    let new = match op & !ATOMIC_FETCH {
        ATOMIC_ADD => old.wrapping_add(s),
        ATOMIC_OR => old | s,
        ATOMIC_AND => old & s,
        ATOMIC_XOR => old ^ s,
        0xe0 if op == ATOMIC_XCHG => return Ok(AtomicEffect { store: Some(s), fetch: true }),
        0xf0 if op == ATOMIC_CMPXCHG => {
            let store = (old == r0 && s != old).then_some(s);
            return Ok(AtomicEffect { store, fetch: false });
        }
        _ => return Err(FaultKind::InvalidInstruction { code: STX | MODE_ATOMIC }),
    };
    Ok(AtomicEffect { store: Some(new), fetch })
}

impl AtomicEffect {
    /// The register half of the operation, after the store succeeded.
    fn apply(&self, op: i32, old: u64, src: usize, regs: &mut [u64; 11]) {
        if op == ATOMIC_CMPXCHG {
            regs[0] = old;
        } else if self.fetch {
            regs[src] = old;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_division_rules() {
        assert_eq!(udiv64(7, 0), 0);
        assert_eq!(umod64(7, 0), 7);
        assert_eq!(sdiv64(i64::MIN as u64, -1i64 as u64), i64::MIN as u64);
        assert_eq!(smod64(i64::MIN as u64, -1i64 as u64), 0);
        assert_eq!(smod64(-7i64 as u64, 2), -1i64 as u64);
        assert_eq!(sdiv64(7, 0), 0);
        assert_eq!(smod64(-7i64 as u64, 0), -7i64 as u64);
        assert_eq!(umod32(7, 0), 7);
        assert_eq!(sdiv32(i32::MIN as u32, -1i32 as u32), i32::MIN as u32);
        assert_eq!(smod32(i32::MIN as u32, -1i32 as u32), 0);
        assert_eq!(udiv32(7, 0), 0);
    }

    #[test]
    fn movsx_and_shifts_decode_to_their_extended_operands() {
        let one = |ins: Insn| decode(&[ins], false)[0];
        // movsx of an immediate is a constant move of the extended value.
        assert!(matches!(
            one(Insn::new(ALU64 | K | MOV, 1, 0, 8, 0x80)),
            Op::Mov64K { d: Reg::R1, k: 0xffff_ffff_ffff_ff80 }
        ));
        assert!(matches!(
            one(Insn::new(ALU | K | MOV, 1, 0, 16, 0x8000)),
            Op::Mov64K { d: Reg::R1, k: 0xffff_8000 }
        ));
        // mov32 of a negative immediate zero-extends.
        assert!(matches!(
            one(Insn::new(ALU | K | MOV, 2, 0, 0, -1)),
            Op::Mov64K { d: Reg::R2, k: 0xffff_ffff }
        ));
        // Shift amounts are masked to the operand width.
        assert!(matches!(one(Insn::new(ALU64 | K | LSH, 1, 0, 0, 65)), Op::Lsh64K { k: 1, .. }));
        assert!(matches!(one(Insn::new(ALU | K | ARSH, 1, 0, 0, 33)), Op::Arsh32K { k: 1, .. }));
        assert!(matches!(one(Insn::new(ALU64 | K | MOV, 1, 0, 7, 1)), Op::Invalid { code: 0xb7 }));
    }

    #[test]
    fn lddw_keeps_its_two_slots_and_targets_are_absolute() {
        let p = [
            Insn::new(LD_DW_IMM, 1, 0, 0, 0x1122_3344),
            Insn::new(0, 0, 0, 0, 0x5566_7788),
            Insn::new(JMP | K | JEQ, 1, 0, -3, 5),
            Insn::new(JMP32 | K | JSLT, 1, 0, 0, -1),
            Insn::new(JMP | EXIT, 0, 0, 0, 0),
        ];
        let ops = decode(&p, false);
        assert_eq!(ops.len(), 6);
        assert!(matches!(ops[0], Op::Lddw { d: Reg::R1, k: 0x5566_7788_1122_3344 }));
        // A jump into the second half faults there, as an invalid insn.
        assert!(matches!(ops[1], Op::Invalid { code: 0 }));
        assert!(matches!(ops[2], Op::JeqK { t: 0, k: 5, .. }));
        assert!(matches!(ops[3], Op::Jslt32K { t: 4, k: 0xffff_ffff, .. }));
        assert!(matches!(ops[4], Op::Exit));
        assert!(matches!(ops[5], Op::End));
    }

    #[test]
    fn byte_order_conversions_follow_the_engine_order() {
        let be16 = Insn::new(ALU | X | END, 1, 0, 0, 16);
        let le16 = Insn::new(ALU | K | END, 1, 0, 0, 16);
        assert!(matches!(decode(&[be16], false)[0], Op::Swap16 { .. }));
        assert!(matches!(decode(&[be16], true)[0], Op::Trunc16 { .. }));
        assert!(matches!(decode(&[le16], false)[0], Op::Trunc16 { .. }));
        assert!(matches!(decode(&[le16], true)[0], Op::Swap16 { .. }));
        let bswap = Insn::new(ALU64 | K | END, 1, 0, 0, 64);
        assert!(matches!(decode(&[bswap], true)[0], Op::Swap64 { .. }));
    }
}
