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

/// The byte order of a BPF target: `bpfel` (every little-endian host) or
/// `bpfeb` (s390x, and the big-endian builds of other architectures).
///
/// It decides how instruction slots are laid out in an object file and how
/// the program's 2-, 4- and 8-byte loads and stores see memory: a BPF
/// program runs with its host's byte order (the kernel executes
/// instructions natively, `include/uapi/linux/bpf.h` declares `struct
/// bpf_insn` with host-order fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ByteOrder {
    #[default]
    Little,
    Big,
}

impl ByteOrder {
    /// The order of the machine this code runs on.
    pub const fn native() -> ByteOrder {
        if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        }
    }

    pub fn is_big(self) -> bool {
        self == ByteOrder::Big
    }

    /// The clang target that produces objects of this order.
    pub fn clang_target(self) -> &'static str {
        match self {
            ByteOrder::Little => "bpfel",
            ByteOrder::Big => "bpfeb",
        }
    }

    /// Reads an unsigned integer of `bytes.len()` (1, 2, 4 or 8) bytes.
    pub fn read_uint(self, bytes: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        match self {
            ByteOrder::Little => {
                b[..n].copy_from_slice(&bytes[..n]);
                u64::from_le_bytes(b)
            }
            ByteOrder::Big => {
                b[8 - n..].copy_from_slice(&bytes[..n]);
                u64::from_be_bytes(b)
            }
        }
    }

    /// Writes the low `bytes.len()` (at most 8) bytes of `v`.
    pub fn write_uint(self, bytes: &mut [u8], v: u64) {
        let n = bytes.len().min(8);
        match self {
            ByteOrder::Little => bytes[..n].copy_from_slice(&v.to_le_bytes()[..n]),
            ByteOrder::Big => bytes[..n].copy_from_slice(&v.to_be_bytes()[8 - n..]),
        }
    }

    pub fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    pub fn u32_from(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }
}

impl fmt::Display for ByteOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ByteOrder::Little => "little-endian",
            ByteOrder::Big => "big-endian",
        })
    }
}

/// One 64-bit instruction slot, decoded (the fields as numbers, whatever
/// byte order the object file stored them in).
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

    /// Decodes one big-endian slot (`bpfeb`). `struct bpf_insn`
    /// (include/uapi/linux/bpf.h) declares `dst_reg:4` before `src_reg:4`;
    /// a big-endian compiler allocates bitfields from the most significant
    /// bit, so dst_reg is the HIGH nibble of byte 1 and src_reg the low one,
    /// and `off`/`imm` are big-endian. libbpf's `bpf_insn_bswap`
    /// (tools/lib/bpf/libbpf.c, cross-endian object support) converts
    /// between the two layouts the same way: swap the nibbles, byte-swap
    /// `off` and `imm`.
    pub fn from_be_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] >> 4,
            src: b[1] & 0x0f,
            off: i16::from_be_bytes([b[2], b[3]]),
            imm: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes one big-endian (`bpfeb`) slot; the inverse of
    /// [`Insn::from_be_bytes`].
    pub fn to_be_bytes(self) -> [u8; 8] {
        let off = self.off.to_be_bytes();
        let imm = self.imm.to_be_bytes();
        [
            self.code,
            ((self.dst & 0x0f) << 4) | (self.src & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    pub fn from_bytes(b: [u8; 8], order: ByteOrder) -> Insn {
        match order {
            ByteOrder::Little => Insn::from_le_bytes(b),
            ByteOrder::Big => Insn::from_be_bytes(b),
        }
    }

    pub fn to_bytes(self, order: ByteOrder) -> [u8; 8] {
        match order {
            ByteOrder::Little => self.to_le_bytes(),
            ByteOrder::Big => self.to_be_bytes(),
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
    decode(bytes, ByteOrder::Little)
}

/// Splits program bytes of the given order into instruction slots.
pub fn decode(bytes: &[u8], order: ByteOrder) -> Result<Vec<Insn>, DecodeError> {
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
        .map(|c| Insn::from_bytes(c.try_into().expect("chunk of 8"), order))
        .collect())
}

pub fn encode_le(insns: &[Insn]) -> Vec<u8> {
    encode(insns, ByteOrder::Little)
}

/// Program bytes in the given order (e.g. native for a big-endian guest's
/// `BPF_PROG_LOAD`).
pub fn encode(insns: &[Insn], order: ByteOrder) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes(order)).collect()
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
    fn big_endian_slot_layout() {
        // `r0 = *(u32 *)(r1 - 4)`: llvm-objdump-19 of the same C built with
        // clang-19 -target bpfeb prints `61 01 ff fc 00 00 00 00`, with
        // -target bpfel `61 10 fc ff 00 00 00 00`: dst in the high nibble,
        // off big-endian.
        let i = Insn::new(0x61, 0, 1, -4, 0);
        assert_eq!(i.to_be_bytes(), [0x61, 0x01, 0xff, 0xfc, 0, 0, 0, 0]);
        assert_eq!(i.to_le_bytes(), [0x61, 0x10, 0xfc, 0xff, 0, 0, 0, 0]);
        // `r0 += 5`: `07 00 00 00 00 00 00 05` against `07 00 00 00 05 00 00 00`.
        let add = Insn::new(0x07, 0, 0, 0, 5);
        assert_eq!(Insn::from_be_bytes([7, 0, 0, 0, 0, 0, 0, 5]), add);
        let j = Insn::new(0x18, 3, 1, -2, -123456);
        assert_eq!(Insn::from_be_bytes(j.to_be_bytes()), j);
        assert_eq!(Insn::from_bytes(j.to_bytes(ByteOrder::Big), ByteOrder::Big), j);
        assert_eq!(decode(&encode(&[i, j], ByteOrder::Big), ByteOrder::Big), Ok(vec![i, j]));
    }

    #[test]
    fn byte_order_ints() {
        let mut b = [0u8; 4];
        ByteOrder::Big.write_uint(&mut b, 0x11223344);
        assert_eq!(b, [0x11, 0x22, 0x33, 0x44]);
        assert_eq!(ByteOrder::Big.read_uint(&b[..2]), 0x1122);
        assert_eq!(ByteOrder::Little.read_uint(&b[..2]), 0x2211);
        ByteOrder::Little.write_uint(&mut b[..2], 0xaabb);
        assert_eq!(b, [0xbb, 0xaa, 0x33, 0x44]);
    }

    #[test]
    fn ragged_and_empty_are_refused() {
        assert_eq!(decode_le(&[0; 7]), Err(DecodeError::Ragged(7)));
        assert_eq!(decode_le(&[]), Err(DecodeError::Empty));
    }
}
