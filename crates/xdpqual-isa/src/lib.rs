//! The eBPF instruction set: encoding, opcode constants and decoding.
//!
//! Everything here follows RFC 9669 ("BPF Instruction Set Architecture") and
//! the Linux UAPI header `include/uapi/linux/bpf.h`. The engine, the loader,
//! the assembler, the NIC model and the QEMU guest agent all share these
//! definitions, so there is one place that says what an opcode means.
//!
//! This crate owns: [`Insn`] and its byte encoding, the opcode fields
//! ([`opcode`]), helper ids and names ([`helpers`]), map type names
//! ([`map_types`]), the disassembler ([`disasm`]), the assembler ([`asm`],
//! the text form the tests and the conformance suite write programs in) and
//! control flow ([`cfg`]). It must not depend on
//! any other xdpqual crate, and makes no system calls.

pub mod asm;
pub mod cfg;
pub mod disasm;
pub mod helpers;
pub mod map_types;
pub mod opcode;

use std::fmt;

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

/// The kernel's limit on a program's length (`BPF_COMPLEXITY_LIMIT_INSNS`,
/// `include/linux/bpf.h`), which also bounds what the loader accepts.
pub const MAX_INSNS: usize = 1_000_000;

/// One 64-bit instruction slot, as stored in an object file (little-endian).
///
/// A wide `lddw` occupies two slots; the second holds the upper 32 bits of the
/// immediate in its `imm` and has `code == 0`.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    /// Decodes one little-endian slot (`bpfel`).
    pub fn from_le_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_le_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// From the 64-bit integer form used by bpf_conformance's `-- raw`
    /// sections (the slot's bytes read as one little-endian u64).
    pub fn from_u64(v: u64) -> Insn {
        Insn::from_le_bytes(v.to_le_bytes())
    }

    pub fn class(self) -> u8 {
        self.code & 0x07
    }

    /// True for the first slot of a 16-byte `lddw`.
    pub fn is_lddw(self) -> bool {
        self.code == opcode::LD_DW_IMM
    }
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: r{}, src: r{}, off: {}, imm: {} }}",
            self.code, self.dst, self.src, self.off, self.imm
        )
    }
}

/// Why a byte string is not a sequence of instructions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("program size {0} bytes is not a multiple of 8")]
    Ragged(usize),
    #[error("program is empty")]
    Empty,
    #[error("program has {0} instructions, more than the kernel's limit of {MAX_INSNS}")]
    TooLong(usize),
}

/// Splits little-endian program bytes into instruction slots.
pub fn decode_le(bytes: &[u8]) -> Result<Vec<Insn>, DecodeError> {
    if !bytes.len().is_multiple_of(INSN_SIZE) {
        return Err(DecodeError::Ragged(bytes.len()));
    }
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let n = bytes.len() / INSN_SIZE;
    if n > MAX_INSNS {
        return Err(DecodeError::TooLong(n));
    }
    Ok(bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| Insn::from_le_bytes(c.try_into().expect("chunk of 8")))
        .collect())
}

pub fn encode_le(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trip() {
        let i = Insn::new(0x18, 3, 1, -2, -123456);
        assert_eq!(Insn::from_le_bytes(i.to_le_bytes()), i);
    }

    #[test]
    fn conformance_raw_form() {
        // lddw r0, 0x1122334455667788 as written in bpf_conformance's lddw.data
        let lo = Insn::from_u64(0x5566778800000018);
        assert_eq!(lo.code, opcode::LD_DW_IMM);
        assert_eq!(lo.imm as u32, 0x55667788);
        let hi = Insn::from_u64(0x1122334400000000);
        assert_eq!(hi.imm as u32, 0x11223344);
    }

    #[test]
    fn ragged_and_empty_are_refused() {
        assert_eq!(decode_le(&[0; 7]), Err(DecodeError::Ragged(7)));
        assert_eq!(decode_le(&[]), Err(DecodeError::Empty));
    }
}
