//! Compact disassembler in the kernel verifier's log style
//! (kernel/bpf/disasm.c `print_bpf_insn` is the model of the notation, e.g.
//! `r0 = *(u32 *)(r1 +0)`, `if r1 > 0x5 goto pc+3`, `lock *(u64 *)(r1 +0) += r2`).

use crate::opcode::*;
use crate::program::Insn;

fn alu_sym(o: u8) -> Option<&'static str> {
    Some(match o {
        ADD => "+=",
        SUB => "-=",
        MUL => "*=",
        DIV => "/=",
        OR => "|=",
        AND => "&=",
        LSH => "<<=",
        RSH => ">>=",
        MOD => "%=",
        XOR => "^=",
        MOV => "=",
        ARSH => "s>>=",
        _ => return None,
    })
}

fn jmp_sym(o: u8) -> Option<&'static str> {
    Some(match o {
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

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        SIZE_W => "u32",
        SIZE_H => "u16",
        SIZE_B => "u8",
        _ => "u64",
    }
}

fn ssize_name(code: u8) -> &'static str {
    match code & 0x18 {
        SIZE_W => "s32",
        SIZE_H => "s16",
        SIZE_B => "s8",
        _ => "s64",
    }
}

fn hex_imm(imm: i32) -> String {
    if imm < 0 {
        format!("{imm}")
    } else {
        format!("{imm:#x}")
    }
}

/// Disassemble the instruction at `pc`; `next` is the following slot (used by `lddw`).
pub fn disasm(insn: &Insn, next: Option<&Insn>) -> String {
    let c = insn.code;
    let (d, s) = (insn.dst, insn.src);
    match class(c) {
        ALU | ALU64 => {
            let wide = class(c) == ALU64;
            let r = if wide { "r" } else { "w" };
            let o = op(c);
            if o == NEG {
                return format!("{r}{d} = -{r}{d}");
            }
            if o == END {
                let bits = insn.imm;
                return match (wide, is_x(c)) {
                    (false, true) => format!("r{d} = be{bits} r{d}"),
                    (false, false) => format!("r{d} = le{bits} r{d}"),
                    (true, false) => format!("r{d} = bswap{bits} r{d}"),
                    (true, true) => format!("(invalid end {c:#04x})"),
                };
            }
            let Some(sym) = alu_sym(o) else {
                return format!("(invalid alu {c:#04x})");
            };
            let sym = match (o, insn.off) {
                (MOV, 8 | 16 | 32) if is_x(c) => {
                    return format!("{r}{d} = (s{}){r}{s}", insn.off);
                }
                (DIV, 1) => "s/=",
                (MOD, 1) => "s%=",
                _ => sym,
            };
            if is_x(c) {
                format!("{r}{d} {sym} {r}{s}")
            } else {
                format!("{r}{d} {sym} {}", hex_imm(insn.imm))
            }
        }
        LDX => {
            let sx = mode(c) == MODE_MEMSX;
            let ty = if sx { ssize_name(c) } else { size_name(c) };
            format!("r{d} = *({ty} *)(r{s} {:+})", insn.off)
        }
        STX if mode(c) == MODE_ATOMIC => {
            let ty = size_name(c);
            let r = if c & 0x18 == SIZE_DW { "r" } else { "w" };
            let base = insn.imm & !ATOMIC_FETCH;
            let fetch = insn.imm & ATOMIC_FETCH != 0;
            let opname = match base {
                ATOMIC_ADD => "add",
                ATOMIC_OR => "or",
                ATOMIC_AND => "and",
                ATOMIC_XOR => "xor",
                0xe0 => "xchg",
                0xf0 => "cmpxchg",
                _ => return format!("(invalid atomic imm {:#x})", insn.imm),
            };
            if !fetch && base != 0xe0 && base != 0xf0 {
                let sym = match base {
                    ATOMIC_ADD => "+=",
                    ATOMIC_OR => "|=",
                    ATOMIC_AND => "&=",
                    _ => "^=",
                };
                format!("lock *({ty} *)(r{d} {:+}) {sym} {r}{s}", insn.off)
            } else if base == 0xf0 {
                format!("r0 = atomic_cmpxchg(({ty} *)(r{d} {:+}), r0, {r}{s})", insn.off)
            } else {
                format!("{r}{s} = atomic_fetch_{opname}(({ty} *)(r{d} {:+}), {r}{s})", insn.off)
            }
        }
        STX => format!("*({} *)(r{d} {:+}) = r{s}", size_name(c), insn.off),
        ST => format!("*({} *)(r{d} {:+}) = {}", size_name(c), insn.off, insn.imm),
        LD => {
            if c == LD_DW_IMM {
                let hi = next.map(|n| n.imm as u32 as u64).unwrap_or(0);
                let v = (hi << 32) | insn.imm as u32 as u64;
                return match s {
                    PSEUDO_MAP_FD => format!("r{d} = map[id:{}] ll", insn.imm),
                    PSEUDO_MAP_VALUE => format!("r{d} = map[id:{}][0]+{} ll", insn.imm, hi),
                    _ => format!("r{d} = {v:#x} ll"),
                };
            }
            match mode(c) {
                MODE_ABS => format!("r0 = *({} *)skb[{}]", size_name(c), insn.imm),
                MODE_IND => format!("r0 = *({} *)skb[r{s} + {}]", size_name(c), insn.imm),
                _ => format!("(invalid ld {c:#04x})"),
            }
        }
        _ /* JMP | JMP32 */ => {
            let o = op(c);
            let r = if class(c) == JMP32 { "w" } else { "r" };
            match o {
                JA if class(c) == JMP32 => format!("gotol pc{:+}", insn.imm),
                JA => format!("goto pc{:+}", insn.off),
                EXIT => "exit".to_string(),
                CALL => match (is_x(c), s) {
                    (true, _) => format!("callx r{d}"),
                    (false, PSEUDO_CALL) => format!("call pc{:+}", insn.imm),
                    (false, PSEUDO_KFUNC_CALL) => format!("call kernel-function#{}", insn.imm),
                    _ => match crate::opcode::helper::name(insn.imm) {
                        Some(n) => format!("call bpf_{n}#{}", insn.imm),
                        None => format!("call #{}", insn.imm),
                    },
                },
                _ => {
                    let Some(sym) = jmp_sym(o) else {
                        return format!("(invalid jmp {c:#04x})");
                    };
                    if is_x(c) {
                        format!("if {r}{d} {sym} {r}{s} goto pc{:+}", insn.off)
                    } else {
                        format!("if {r}{d} {sym} {} goto pc{:+}", hex_imm(insn.imm), insn.off)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    #[test]
    fn kernel_style_forms() {
        assert_eq!(disasm(&i(LDX | MODE_MEM | SIZE_W, 0, 1, 0, 0), None), "r0 = *(u32 *)(r1 +0)");
        assert_eq!(
            disasm(&i(STX | MODE_MEM | SIZE_DW, 10, 1, -8, 0), None),
            "*(u64 *)(r10 -8) = r1"
        );
        assert_eq!(disasm(&i(ALU64 | MOV | K, 0, 0, 0, 2), None), "r0 = 0x2");
        assert_eq!(disasm(&i(ALU | ADD | X, 1, 2, 0, 0), None), "w1 += w2");
        assert_eq!(disasm(&i(JMP | JGT | K, 1, 0, 3, 5), None), "if r1 > 0x5 goto pc+3");
        assert_eq!(disasm(&i(JMP | EXIT, 0, 0, 0, 0), None), "exit");
        assert_eq!(disasm(&i(JMP | CALL, 0, 0, 0, 1), None), "call bpf_map_lookup_elem#1");
        assert_eq!(
            disasm(&i(STX | MODE_ATOMIC | SIZE_DW, 1, 2, 0, ATOMIC_ADD), None),
            "lock *(u64 *)(r1 +0) += r2"
        );
        assert_eq!(disasm(&i(ALU | END | X, 3, 0, 0, 16), None), "r3 = be16 r3");
        let lo = i(LD_DW_IMM, 1, PSEUDO_MAP_FD, 0, 0);
        assert_eq!(disasm(&lo, Some(&i(0, 0, 0, 0, 0))), "r1 = map[id:0] ll");
    }
}
