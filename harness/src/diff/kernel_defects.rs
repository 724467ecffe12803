//! Kernel defects recognisable in the kernel's own rewrite of a program.
//!
//! When the engine and the kernel disagree, the kernel is usually right and
//! the engine is fixed. A few times the kernel is wrong; those cases are
//! kept in `cli/tests/data/kernel-defects/` with a proof, and this module
//! recognises them from the verifier's rewrite (`bpf_prog_info`'s
//! `xlated_prog_insns`) so that a diff can say "this mismatch comes with a
//! known kernel defect" next to it. It never turns a mismatch into an
//! agreement: on a production kernel the defect is what the program does.

use crate::isa::{opcode as op, Insn};

/// One defect found in a rewritten program.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KernelDefect {
    /// Index in the kernel's rewritten program.
    pub xlated_insn: usize,
    pub what: String,
}

fn is_cmpxchg32(i: &Insn) -> bool {
    i.code == op::STX | op::SIZE_W | op::MODE_ATOMIC && i.imm == op::ATOMIC_CMPXCHG
}

fn is_zext_r0(i: Option<&Insn>) -> bool {
    matches!(i, Some(i) if i.code == op::ALU | op::MOV | op::X && i.dst == 0 && i.src == 0 && i.off == 0 && i.imm == 0)
}

/// 32-bit cmpxchg instructions the verifier left without the `w0 = w0` it
/// inserts after them (kernel/bpf/verifier.c, opt_subreg_zext_lo32_rnd_hi32,
/// where the comment explains why cmpxchg always needs it). On x86-64,
/// `lock cmpxchg` writes EAX only when the comparison fails, so there r0
/// keeps its old upper half after a successful exchange; the ISA (RFC 9669)
/// says r0 is the old value zero-extended. Seen on 6.18 and 7.2 x86-64, not
/// on 6.1 or 6.12 (see tests/data/kernel-defects/README.md).
///
/// Only meaningful on x86-64: other JITs' sequences write the 32-bit
/// register either way.
pub fn cmpxchg32_without_zext(xlated: &[Insn]) -> Vec<KernelDefect> {
    xlated
        .iter()
        .enumerate()
        .filter(|(n, i)| is_cmpxchg32(i) && !is_zext_r0(xlated.get(n + 1)))
        .map(|(n, _)| KernelDefect {
            xlated_insn: n,
            what: "32-bit cmpxchg with no zero-extension of r0 after it: on x86-64 r0 keeps its old upper 32 bits \
                   when the exchange succeeds, which shows wherever r0 is then read as 64 bits (the ISA, the kernel's \
                   interpreter and the engine zero-extend; see cli/tests/data/kernel-defects)"
                .into(),
        })
        .collect()
}

/// Every known defect in `xlated` that applies to this host's architecture.
pub fn known_defects(xlated: &[Insn]) -> Vec<KernelDefect> {
    if cfg!(target_arch = "x86_64") {
        cmpxchg32_without_zext(xlated)
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmpxchg32_needs_the_following_zext() {
        let cx = Insn::new(op::STX | op::SIZE_W | op::MODE_ATOMIC, 10, 4, -8, op::ATOMIC_CMPXCHG);
        let zext = Insn::new(op::ALU | op::MOV | op::X, 0, 0, 0, 0);
        let exit = Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0);
        assert_eq!(cmpxchg32_without_zext(&[cx, exit]).len(), 1);
        assert_eq!(cmpxchg32_without_zext(&[cx, exit])[0].xlated_insn, 0);
        assert!(cmpxchg32_without_zext(&[cx, zext, exit]).is_empty());
        // A 64-bit cmpxchg needs none; `w1 = w1` is not r0's.
        let cx64 = Insn { code: op::STX | op::SIZE_DW | op::MODE_ATOMIC, ..cx };
        assert!(cmpxchg32_without_zext(&[cx64, exit]).is_empty());
        let other = Insn::new(op::ALU | op::MOV | op::X, 1, 1, 0, 0);
        assert_eq!(cmpxchg32_without_zext(&[cx, other]).len(), 1);
        // Nor does a 32-bit atomic add.
        let add = Insn { imm: op::ATOMIC_ADD, ..cx };
        assert!(cmpxchg32_without_zext(&[add, exit]).is_empty());
    }
}
