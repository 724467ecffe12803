//! A disassembler in the style of the kernel verifier log
//! (kernel/bpf/disasm.c `print_bpf_insn`, as bpftool prints it):
//! `r0 = *(u32 *)(r1 +0)`, `if r2 > r3 goto pc+5`, `call bpf_map_lookup_elem#1`.
//!
//! Where the kernel prints a map's address or id this prints the map's name
//! from the object (`r1 = map[flows]`, `r1 = map[.rodata][0]+4`), and a
//! BPF-to-BPF call names its callee when known (`call pc+5 <weigh>`).

use crate::helpers::helper_name;
use crate::{opcode::*, Insn};

/// What the disassembler knows beyond the instruction bytes.
#[derive(Clone, Copy, Default)]
pub struct Context<'a> {
    /// Names of the object's maps by relocated map index.
    pub map_names: &'a [String],
    /// Function starts and names (`Program::functions`).
    pub functions: &'a [(usize, String)],
}

impl Context<'_> {
    fn map(&self, idx: i32) -> String {
        usize::try_from(idx)
            .ok()
            .and_then(|i| self.map_names.get(i))
            .cloned()
            .unwrap_or_else(|| format!("#{idx}"))
    }

    fn function_at(&self, pc: i64) -> Option<&str> {
        self.functions.iter().find(|(at, _)| *at as i64 == pc).map(|(_, n)| n.as_str())
    }
}

/// A register as ALU/JMP32 (`w`) or 64-bit (`r`) operations name it.
fn reg(wide: bool, r: u8) -> String {
    format!("{}{r}", if wide { 'r' } else { 'w' })
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        SIZE_W => "u32",
        SIZE_H => "u16",
        SIZE_B => "u8",
        _ => "u64",
    }
}

fn alu_op(op: u8, signed: bool) -> Option<&'static str> {
    Some(match op {
        ADD => "+=",
        SUB => "-=",
        MUL => "*=",
        DIV if signed => "s/=",
        DIV => "/=",
        OR => "|=",
        AND => "&=",
        LSH => "<<=",
        RSH => ">>=",
        MOD if signed => "s%=",
        MOD => "%=",
        XOR => "^=",
        MOV => "=",
        ARSH => "s>>=",
        _ => return None,
    })
}

fn jmp_op(op: u8) -> Option<&'static str> {
    Some(match op {
        JEQ => "==",
        JGT => ">",
        JGE => ">=",
        JSET => "&",
        JNE => "!=",
        JSGT => "s>",
        JSGE => "s>=",
        JLT => "<",
        JLE => "<=",
        JSLT => "s<",
        JSLE => "s<=",
        _ => return None,
    })
}

fn bad(i: Insn) -> String {
    format!("(bad) opcode {:#04x}", i.code)
}

/// Disassembles the instruction at `pc`. For `lddw` the next slot supplies
/// the upper half; the second slot itself prints as its raw immediate.
pub fn disasm_insn(insns: &[Insn], pc: usize, ctx: &Context<'_>) -> String {
    let i = insns[pc];
    match i.class() {
        ALU | ALU64 => alu(i),
        LDX => {
            let mode = i.code & 0xe0;
            let sign = match mode {
                MODE_MEM => 'u',
                MODE_MEMSX if i.code & 0x18 != SIZE_DW => 's',
                _ => return bad(i),
            };
            let bits = 8 * mem_size(i.code);
            format!("r{} = *({sign}{bits} *)(r{} {:+})", i.dst, i.src, i.off)
        }
        ST if i.code & 0xe0 == MODE_MEM => {
            format!("*({} *)(r{} {:+}) = {}", size_name(i.code), i.dst, i.off, i.imm)
        }
        STX => stx(i),
        LD => ld(insns, pc, ctx),
        JMP | JMP32 => jmp(i, pc, ctx),
        _ => bad(i),
    }
}

fn alu(i: Insn) -> String {
    let wide = i.class() == ALU64;
    let x = i.code & X == X;
    let op = i.code & 0xf0;
    let d = reg(wide, i.dst);
    match op {
        NEG if !x => format!("{d} = -{d}"),
        END if !wide => format!("r{0} = {1}{2} r{0}", i.dst, if x { "be" } else { "le" }, i.imm),
        END if !x => format!("r{0} = bswap{1} r{0}", i.dst, i.imm),
        // cpu v4 movsx: `off` is the source width (RFC 9669 section 4.1).
        MOV if x && i.off != 0 => format!("{d} = (s{}){}", i.off, reg(wide, i.src)),
        _ => match alu_op(op, i.off == 1) {
            Some(s) if x => format!("{d} {s} {}", reg(wide, i.src)),
            Some(s) => format!("{d} {s} {}", i.imm),
            None => bad(i),
        },
    }
}

fn stx(i: Insn) -> String {
    let sz = size_name(i.code);
    let mem = format!("({sz} *)(r{} {:+})", i.dst, i.off);
    let suffix = if i.code & 0x18 == SIZE_DW { "64" } else { "" };
    match i.code & 0xe0 {
        MODE_MEM => format!("*{mem} = r{}", i.src),
        MODE_ATOMIC => {
            let base = i.imm & !ATOMIC_FETCH;
            let name = match base {
                ATOMIC_ADD => "add",
                ATOMIC_OR => "or",
                ATOMIC_AND => "and",
                ATOMIC_XOR => "xor",
                _ => "",
            };
            match i.imm {
                // BPF_LOAD_ACQ and BPF_STORE_REL (uapi bpf.h, Linux 6.15).
                // Load-acquire reads through src, not dst.
                0x100 => format!("r{} = load_acquire(({sz} *)(r{} {:+}))", i.dst, i.src, i.off),
                0x110 => format!("store_release({mem}, r{})", i.src),
                ATOMIC_XCHG => format!("r{0} = atomic{suffix}_xchg({mem}, r{0})", i.src),
                ATOMIC_CMPXCHG => format!("r0 = atomic{suffix}_cmpxchg({mem}, r0, r{})", i.src),
                _ if name.is_empty() => bad(i),
                _ if i.imm & ATOMIC_FETCH != 0 => {
                    format!("r{0} = atomic{suffix}_fetch_{name}({mem}, r{0})", i.src)
                }
                _ => {
                    let op = alu_op(base as u8, false).expect("add/or/and/xor");
                    format!("lock *{mem} {op} r{}", i.src)
                }
            }
        }
        _ => bad(i),
    }
}

fn ld(insns: &[Insn], pc: usize, ctx: &Context<'_>) -> String {
    let i = insns[pc];
    let sz = size_name(i.code);
    match i.code & 0xe0 {
        MODE_ABS => format!("r0 = *({sz} *)skb[{}]", i.imm),
        MODE_IND => format!("r0 = *({sz} *)skb[r{} + {}]", i.src, i.imm),
        MODE_IMM if i.is_lddw() => {
            let Some(next) = insns.get(pc + 1) else {
                return format!("r{} = <lddw missing its second slot>", i.dst);
            };
            let imm = ((next.imm as u32 as u64) << 32) | i.imm as u32 as u64;
            let rhs = match i.src {
                PSEUDO_MAP_FD => format!("map[{}]", ctx.map(i.imm)),
                PSEUDO_MAP_VALUE => format!("map[{}][0]+{}", ctx.map(i.imm), next.imm),
                PSEUDO_MAP_IDX => format!("map_idx[{}]", i.imm),
                PSEUDO_MAP_IDX_VALUE => format!("map_idx[{}][0]+{}", i.imm, next.imm),
                PSEUDO_BTF_ID => format!("btf_id[{}]", i.imm),
                PSEUDO_FUNC => {
                    let target = pc as i64 + i.imm as i64 + 1;
                    match ctx.function_at(target) {
                        Some(n) => format!("func pc{:+} <{n}>", i.imm),
                        None => format!("func pc{:+}", i.imm),
                    }
                }
                _ => format!("{imm:#x}"),
            };
            format!("r{} = {rhs}", i.dst)
        }
        // The second slot of an lddw, reached directly.
        MODE_IMM if i.code == 0 => format!("(lddw upper half) {:#x}", i.imm as u32),
        _ => bad(i),
    }
}

fn jmp(i: Insn, pc: usize, ctx: &Context<'_>) -> String {
    let wide = i.class() == JMP;
    let op = i.code & 0xf0;
    let x = i.code & X == X;
    match op {
        JA if !x && wide => format!("goto pc{:+}", i.off),
        // cpu v4 `gotol`: JMP32|JA takes its offset from imm.
        JA if !x => format!("gotol pc{:+}", i.imm),
        CALL if wide && x => format!("callx r{}", i.dst),
        CALL if wide => match i.src {
            PSEUDO_CALL => {
                let target = pc as i64 + i.imm as i64 + 1;
                match ctx.function_at(target) {
                    Some(n) => format!("call pc{:+} <{n}>", i.imm),
                    None => format!("call pc{:+}", i.imm),
                }
            }
            PSEUDO_KFUNC_CALL => format!("call kfunc#{}", i.imm),
            _ => {
                format!("call {}#{}", helper_name(i.imm).unwrap_or_else(|| "unknown".into()), i.imm)
            }
        },
        EXIT if wide && !x => "exit".to_string(),
        _ => match jmp_op(op) {
            Some(s) if x => {
                format!("if {} {s} {} goto pc{:+}", reg(wide, i.dst), reg(wide, i.src), i.off)
            }
            Some(s) => {
                format!("if {} {s} {:#x} goto pc{:+}", reg(wide, i.dst), i.imm as u32, i.off)
            }
            None => bad(i),
        },
    }
}

/// Disassembles a whole program: one `(pc, text)` per instruction, the
/// second slot of each `lddw` left out.
pub fn disasm_program(insns: &[Insn], ctx: &Context<'_>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pc = 0;
    while pc < insns.len() {
        out.push((pc, disasm_insn(insns, pc, ctx)));
        pc += if insns[pc].is_lddw() { 2 } else { 1 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(i: Insn) -> String {
        disasm_insn(&[i], 0, &Context::default())
    }

    #[test]
    fn alu() {
        assert_eq!(one(Insn::new(ALU64 | MOV | X, 6, 1, 0, 0)), "r6 = r1");
        assert_eq!(one(Insn::new(ALU | MOV | K, 0, 0, 0, 2)), "w0 = 2");
        assert_eq!(one(Insn::new(ALU64 | ADD | K, 1, 0, 0, -8)), "r1 += -8");
        assert_eq!(one(Insn::new(ALU | SUB | X, 1, 2, 0, 0)), "w1 -= w2");
        assert_eq!(one(Insn::new(ALU64 | ARSH | K, 3, 0, 0, 63)), "r3 s>>= 63");
        assert_eq!(one(Insn::new(ALU64 | NEG, 4, 0, 0, 0)), "r4 = -r4");
        assert_eq!(one(Insn::new(ALU | NEG, 4, 0, 0, 0)), "w4 = -w4");
        assert_eq!(one(Insn::new(ALU | END | X, 2, 0, 0, 16)), "r2 = be16 r2");
        assert_eq!(one(Insn::new(ALU | END | K, 2, 0, 0, 64)), "r2 = le64 r2");
    }

    #[test]
    fn cpu_v4_alu() {
        assert_eq!(one(Insn::new(ALU64 | DIV | X, 1, 2, 1, 0)), "r1 s/= r2");
        assert_eq!(one(Insn::new(ALU | MOD | K, 1, 0, 1, 7)), "w1 s%= 7");
        assert_eq!(one(Insn::new(ALU64 | MOV | X, 1, 2, 8, 0)), "r1 = (s8)r2");
        assert_eq!(one(Insn::new(ALU | MOV | X, 1, 2, 16, 0)), "w1 = (s16)w2");
        assert_eq!(one(Insn::new(ALU64 | MOV | X, 1, 2, 32, 0)), "r1 = (s32)r2");
        assert_eq!(one(Insn::new(ALU64 | END | K, 5, 0, 0, 32)), "r5 = bswap32 r5");
        // ALU64 | END | X is not an instruction.
        assert_eq!(one(Insn::new(ALU64 | END | X, 5, 0, 0, 32)), "(bad) opcode 0xdf");
        assert_eq!(one(Insn::new(ALU64 | 0xe0, 5, 0, 0, 32)), "(bad) opcode 0xe7");
    }

    #[test]
    fn memory() {
        assert_eq!(one(Insn::new(0x61, 0, 1, 0, 0)), "r0 = *(u32 *)(r1 +0)");
        assert_eq!(one(Insn::new(0x79, 2, 10, -8, 0)), "r2 = *(u64 *)(r10 -8)");
        assert_eq!(one(Insn::new(0x91, 2, 1, 3, 0)), "r2 = *(s8 *)(r1 +3)");
        assert_eq!(one(Insn::new(0x89, 2, 1, 4, 0)), "r2 = *(s16 *)(r1 +4)");
        assert_eq!(one(Insn::new(0x81, 2, 1, 4, 0)), "r2 = *(s32 *)(r1 +4)");
        assert_eq!(one(Insn::new(0x99, 2, 1, 4, 0)), "(bad) opcode 0x99");
        assert_eq!(one(Insn::new(0x72, 10, 0, -1, 7)), "*(u8 *)(r10 -1) = 7");
        assert_eq!(one(Insn::new(0x6b, 1, 3, 12, 0)), "*(u16 *)(r1 +12) = r3");
        assert_eq!(one(Insn::new(0x20, 0, 0, 0, 14)), "r0 = *(u32 *)skb[14]");
        assert_eq!(one(Insn::new(0x50, 0, 7, 0, 2)), "r0 = *(u8 *)skb[r7 + 2]");
    }

    #[test]
    fn atomics() {
        let a = |size: u8, imm: i32| one(Insn::new(STX | MODE_ATOMIC | size, 1, 2, 8, imm));
        assert_eq!(a(SIZE_DW, ATOMIC_ADD), "lock *(u64 *)(r1 +8) += r2");
        assert_eq!(a(SIZE_W, ATOMIC_OR), "lock *(u32 *)(r1 +8) |= r2");
        assert_eq!(a(SIZE_W, ATOMIC_AND), "lock *(u32 *)(r1 +8) &= r2");
        assert_eq!(a(SIZE_DW, ATOMIC_XOR), "lock *(u64 *)(r1 +8) ^= r2");
        assert_eq!(
            a(SIZE_DW, ATOMIC_ADD | ATOMIC_FETCH),
            "r2 = atomic64_fetch_add((u64 *)(r1 +8), r2)"
        );
        assert_eq!(
            a(SIZE_W, ATOMIC_AND | ATOMIC_FETCH),
            "r2 = atomic_fetch_and((u32 *)(r1 +8), r2)"
        );
        assert_eq!(a(SIZE_W, ATOMIC_OR | ATOMIC_FETCH), "r2 = atomic_fetch_or((u32 *)(r1 +8), r2)");
        assert_eq!(
            a(SIZE_DW, ATOMIC_XOR | ATOMIC_FETCH),
            "r2 = atomic64_fetch_xor((u64 *)(r1 +8), r2)"
        );
        assert_eq!(a(SIZE_DW, ATOMIC_XCHG), "r2 = atomic64_xchg((u64 *)(r1 +8), r2)");
        assert_eq!(a(SIZE_W, ATOMIC_CMPXCHG), "r0 = atomic_cmpxchg((u32 *)(r1 +8), r0, r2)");
        assert_eq!(a(SIZE_B, 0x100), "r1 = load_acquire((u8 *)(r2 +8))");
        assert_eq!(a(SIZE_H, 0x110), "store_release((u16 *)(r1 +8), r2)");
        assert_eq!(a(SIZE_DW, 0x30), "(bad) opcode 0xdb");
    }

    #[test]
    fn lddw_forms() {
        let names = ["flows".to_string(), ".rodata".to_string()];
        let ctx = Context { map_names: &names, functions: &[] };
        let wide = |src: u8, lo: i32, hi: i32| {
            disasm_insn(&[Insn::new(LD_DW_IMM, 1, src, 0, lo), Insn::new(0, 0, 0, 0, hi)], 0, &ctx)
        };
        assert_eq!(wide(0, 0x55667788, 0x11223344), "r1 = 0x1122334455667788");
        assert_eq!(wide(0, -1, -1), "r1 = 0xffffffffffffffff");
        assert_eq!(wide(PSEUDO_MAP_FD, 0, 0), "r1 = map[flows]");
        assert_eq!(wide(PSEUDO_MAP_VALUE, 1, 4), "r1 = map[.rodata][0]+4");
        assert_eq!(wide(PSEUDO_MAP_FD, 7, 0), "r1 = map[#7]");
        assert_eq!(
            disasm_insn(&[Insn::new(LD_DW_IMM, 1, 0, 0, 0)], 0, &ctx),
            "r1 = <lddw missing its second slot>"
        );
    }

    #[test]
    fn jumps_and_calls() {
        assert_eq!(one(Insn::new(JMP | JA, 0, 0, 5, 0)), "goto pc+5");
        assert_eq!(one(Insn::new(JMP32 | JA, 0, 0, 0, -300)), "gotol pc-300");
        assert_eq!(one(Insn::new(JMP | JGT | X, 2, 3, 5, 0)), "if r2 > r3 goto pc+5");
        assert_eq!(one(Insn::new(JMP | JSLE | K, 2, 0, -2, -1)), "if r2 s<= 0xffffffff goto pc-2");
        assert_eq!(one(Insn::new(JMP32 | JNE | K, 1, 0, 2, 2)), "if w1 != 0x2 goto pc+2");
        assert_eq!(one(Insn::new(JMP32 | JSET | X, 1, 4, 0, 0)), "if w1 & w4 goto pc+0");
        assert_eq!(one(Insn::new(JMP | EXIT, 0, 0, 0, 0)), "exit");
        assert_eq!(one(Insn::new(JMP | CALL, 0, 0, 0, 1)), "call bpf_map_lookup_elem#1");
        assert_eq!(one(Insn::new(JMP | CALL, 0, 0, 0, 9999)), "call unknown#9999");
        assert_eq!(one(Insn::new(JMP | CALL, 0, PSEUDO_KFUNC_CALL, 0, 42)), "call kfunc#42");
        assert_eq!(one(Insn::new(JMP | CALL | X, 3, 0, 0, 0)), "callx r3");
        assert_eq!(one(Insn::new(JMP32 | CALL, 0, 0, 0, 1)), "(bad) opcode 0x86");
        assert_eq!(one(Insn::new(JMP | 0xe0, 0, 0, 0, 1)), "(bad) opcode 0xe5");
        let funcs = [(0, "main".to_string()), (3, "weigh".to_string())];
        let ctx = Context { map_names: &[], functions: &funcs };
        let prog = [Insn::new(JMP | CALL, 0, PSEUDO_CALL, 0, 2), Insn::default(), Insn::default()];
        assert_eq!(disasm_insn(&prog, 0, &ctx), "call pc+2 <weigh>");
    }

    #[test]
    fn program_skips_second_lddw_slot() {
        let prog = [
            Insn::new(LD_DW_IMM, 0, 0, 0, 1),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(JMP | EXIT, 0, 0, 0, 0),
        ];
        let lines = disasm_program(&prog, &Context::default());
        assert_eq!(lines, vec![(0, "r0 = 0x1".to_string()), (2, "exit".to_string())]);
    }
}
