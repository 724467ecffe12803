//! One instruction in the kernel verifier's notation, for findings and the
//! VLIW schedule: the shared instruction-set crate's disassembler, which
//! the harness's `inspect` and `--trace` print too, so a finding quotes an
//! instruction exactly as the rest of the tool shows it.

use crate::program::Insn;
use xdpqual_isa::disasm::{disasm_insn, Context};

/// Disassembles `insn`; `next` is the following slot (the upper half of an
/// `lddw`).
pub fn disasm(insn: &Insn, next: Option<&Insn>) -> String {
    let pair = [*insn, next.copied().unwrap_or_default()];
    disasm_insn(&pair, 0, &Context::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcode::*;

    fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    #[test]
    fn kernel_style_forms() {
        // The notation of kernel/bpf/disasm.c print_bpf_insn.
        assert_eq!(disasm(&i(LDX | MODE_MEM | SIZE_W, 0, 1, 0, 0), None), "r0 = *(u32 *)(r1 +0)");
        assert_eq!(
            disasm(&i(STX | MODE_MEM | SIZE_DW, 10, 1, -8, 0), None),
            "*(u64 *)(r10 -8) = r1"
        );
        assert_eq!(disasm(&i(ALU | ADD | X, 1, 2, 0, 0), None), "w1 += w2");
        assert_eq!(disasm(&i(JMP | EXIT, 0, 0, 0, 0), None), "exit");
        assert_eq!(disasm(&i(JMP | CALL, 0, 0, 0, 1), None), "call bpf_map_lookup_elem#1");
        assert_eq!(
            disasm(&i(STX | MODE_ATOMIC | SIZE_DW, 1, 2, 0, ATOMIC_ADD), None),
            "lock *(u64 *)(r1 +0) += r2"
        );
        assert_eq!(disasm(&i(ALU | END | X, 3, 0, 0, 16), None), "r3 = be16 r3");
    }
}
