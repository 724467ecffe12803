//! Opcode fields and the full opcodes the engine dispatches on.
//!
//! Names follow the kernel's UAPI (`BPF_ALU64`, `BPF_JMP32`, ...) and RFC 9669
//! section 3. An opcode byte is `class | (op or size|mode) | source`.

// Instruction classes (low 3 bits).
pub const LD: u8 = 0x00;
pub const LDX: u8 = 0x01;
pub const ST: u8 = 0x02;
pub const STX: u8 = 0x03;
pub const ALU: u8 = 0x04;
pub const JMP: u8 = 0x05;
pub const JMP32: u8 = 0x06;
pub const ALU64: u8 = 0x07;

// Source bit for ALU/JMP.
pub const K: u8 = 0x00;
pub const X: u8 = 0x08;

// ALU operations (high 4 bits).
pub const ADD: u8 = 0x00;
pub const SUB: u8 = 0x10;
pub const MUL: u8 = 0x20;
pub const DIV: u8 = 0x30;
pub const OR: u8 = 0x40;
pub const AND: u8 = 0x50;
pub const LSH: u8 = 0x60;
pub const RSH: u8 = 0x70;
pub const NEG: u8 = 0x80;
pub const MOD: u8 = 0x90;
pub const XOR: u8 = 0xa0;
pub const MOV: u8 = 0xb0;
pub const ARSH: u8 = 0xc0;
/// Byte swap. In class ALU the source bit picks to-le (K) or to-be (X);
/// in class ALU64 with source K it is the unconditional `bswap` of cpu v4.
pub const END: u8 = 0xd0;

// Jump operations (high 4 bits).
pub const JA: u8 = 0x00;
pub const JEQ: u8 = 0x10;
pub const JGT: u8 = 0x20;
pub const JGE: u8 = 0x30;
pub const JSET: u8 = 0x40;
pub const JNE: u8 = 0x50;
pub const JSGT: u8 = 0x60;
pub const JSGE: u8 = 0x70;
pub const CALL: u8 = 0x80;
pub const EXIT: u8 = 0x90;
pub const JLT: u8 = 0xa0;
pub const JLE: u8 = 0xb0;
pub const JSLT: u8 = 0xc0;
pub const JSLE: u8 = 0xd0;

// Memory sizes (bits 3-4).
pub const SIZE_W: u8 = 0x00;
pub const SIZE_H: u8 = 0x08;
pub const SIZE_B: u8 = 0x10;
pub const SIZE_DW: u8 = 0x18;

// Memory modes (high 3 bits).
pub const MODE_IMM: u8 = 0x00;
pub const MODE_ABS: u8 = 0x20;
pub const MODE_IND: u8 = 0x40;
pub const MODE_MEM: u8 = 0x60;
/// Sign-extending load (cpu v4 `ldsx`).
pub const MODE_MEMSX: u8 = 0x80;
pub const MODE_ATOMIC: u8 = 0xc0;

/// `lddw dst, imm64` (first slot).
pub const LD_DW_IMM: u8 = LD | SIZE_DW | MODE_IMM;

// Atomic operations, carried in `imm` (RFC 9669 section 5.3).
pub const ATOMIC_ADD: i32 = 0x00;
pub const ATOMIC_OR: i32 = 0x40;
pub const ATOMIC_AND: i32 = 0x50;
pub const ATOMIC_XOR: i32 = 0xa0;
pub const ATOMIC_FETCH: i32 = 0x01;
pub const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
pub const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;

// `src` of an `lddw` (pseudo sources, UAPI `BPF_PSEUDO_*`).
pub const PSEUDO_MAP_FD: u8 = 1;
pub const PSEUDO_MAP_VALUE: u8 = 2;
pub const PSEUDO_BTF_ID: u8 = 3;
pub const PSEUDO_FUNC: u8 = 4;
pub const PSEUDO_MAP_IDX: u8 = 5;
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;

// `src` of a `call`.
pub const CALL_HELPER: u8 = 0;
pub const PSEUDO_CALL: u8 = 1;
pub const PSEUDO_KFUNC_CALL: u8 = 2;

/// The instruction class (low 3 bits).
pub const fn class(code: u8) -> u8 {
    code & 0x07
}

/// The ALU or jump operation (high 4 bits).
pub const fn op(code: u8) -> u8 {
    code & 0xf0
}

/// The memory mode of a load or store (high 3 bits).
pub const fn mode(code: u8) -> u8 {
    code & 0xe0
}

/// True when an ALU or jump instruction takes its operand from `src`.
pub const fn is_x(code: u8) -> bool {
    code & X != 0
}

/// Where a jump or BPF-to-BPF call at `pc` goes: `pc + 1 + off` (or `+ imm`
/// for `gotol` and calls); `None` for exits, helper and kfunc calls and
/// instructions that are not control flow, and for a target before the
/// program.
pub fn jump_target(pc: usize, i: &crate::Insn) -> Option<usize> {
    let c = class(i.code);
    if c != JMP && c != JMP32 {
        return None;
    }
    let rel = match op(i.code) {
        EXIT => return None,
        CALL if i.src == PSEUDO_CALL => i.imm as i64,
        CALL => return None,
        JA if c == JMP32 => i.imm as i64, // gotol
        _ => i.off as i64,
    };
    let t = pc as i64 + 1 + rel;
    (t >= 0).then_some(t as usize)
}

/// Size in bytes of a load/store with this opcode.
pub fn mem_size(code: u8) -> usize {
    match code & 0x18 {
        SIZE_W => 4,
        SIZE_H => 2,
        SIZE_B => 1,
        _ => 8,
    }
}
