//! The engine's address space: tagged addresses and bounds-checked access.
//!
//! A BPF register that holds a pointer holds an engine address, never a host
//! address: the top bits name a region (packet, stack, ctx, a map's values,
//! ...) and the low 40 bits are an offset inside it. Every load and store goes
//! through [`check_range`], which checks the access lies wholly inside the
//! region's valid range. So no BPF program can touch host memory outside its
//! own regions, whatever it computes, and a fault names the region.
//!
//! Pointer arithmetic and comparisons keep working because offsets inside a
//! region are linear, which is all the verifier lets a program rely on.

use super::fault::Region;

pub const TAG_SHIFT: u32 = 40;
pub const OFFSET_MASK: u64 = (1 << TAG_SHIFT) - 1;

pub const TAG_PACKET: u64 = 1;
pub const TAG_STACK: u64 = 2;
pub const TAG_CTX: u64 = 3;
pub const TAG_MEM: u64 = 4;
pub const TAG_RINGBUF: u64 = 5;
/// A BPF function address (`lddw` with `BPF_PSEUDO_FUNC`), for `bpf_loop`.
pub const TAG_FUNC: u64 = 6;
/// A map handle (`lddw` with `BPF_PSEUDO_MAP_FD`); the offset is the map index.
pub const TAG_MAP: u64 = 7;
/// A byte of a fragment of a multi-buffer frame, where a dynptr slice can
/// point (helpers/dynptr.rs): the offset is `fragment index << 16 | byte
/// in the fragment` (a fragment is at most a page).
pub const TAG_FRAG: u64 = 8;
/// A `struct nf_conn` a conntrack kfunc returned; the offset holds the
/// run's reference index (bits 24..) and the byte in the struct.
pub const TAG_CONNTRACK: u64 = 9;
/// A `__ksym` kernel variable (`Object::ksyms`): the offset holds the
/// variable's index (bits 32..40), the view (bits 20..32: 0 for a plain
/// variable and for a per-CPU variable's own address, which cannot be
/// dereferenced; `1 + cpu` for the copy `bpf_per_cpu_ptr` or
/// `bpf_this_cpu_ptr` returned) and the byte in it (bits 0..20). The
/// engine has no kernel: reads give zeros, writes fault (helpers/ksym.rs).
pub const TAG_KSYM: u64 = 10;
/// Map values: tag `TAG_MAP_VALUE_BASE + map index`.
pub const TAG_MAP_VALUE_BASE: u64 = 16;

/// Bytes of stack per frame (`MAX_BPF_STACK`).
pub const FRAME_SIZE: usize = 512;
/// Nested frames allowed (`MAX_CALL_FRAMES`, include/linux/bpf_verifier.h).
pub const MAX_FRAMES: usize = 8;
pub const STACK_SIZE: usize = FRAME_SIZE * MAX_FRAMES;

#[inline(always)]
pub const fn addr(tag: u64, offset: u64) -> u64 {
    (tag << TAG_SHIFT) | (offset & OFFSET_MASK)
}

#[inline(always)]
pub const fn tag_of(a: u64) -> u64 {
    a >> TAG_SHIFT
}

#[inline(always)]
pub const fn offset_of(a: u64) -> u64 {
    a & OFFSET_MASK
}

pub fn region_of(a: u64) -> Region {
    match tag_of(a) {
        TAG_PACKET | TAG_FRAG => Region::Packet,
        TAG_STACK => Region::Stack,
        TAG_CTX => Region::Ctx,
        TAG_MEM => Region::Mem,
        TAG_RINGBUF => Region::Ringbuf,
        TAG_CONNTRACK => Region::Conntrack,
        TAG_KSYM => Region::Ksym((offset_of(a) >> 32) as u32),
        t if (TAG_MAP_VALUE_BASE..TAG_MAP_VALUE_BASE + (1 << 20)).contains(&t) => {
            Region::MapValue((t - TAG_MAP_VALUE_BASE) as u32)
        }
        _ => Region::Invalid,
    }
}

/// Checks `[off, off+len)` lies inside `[lo, hi)` and returns the range.
#[inline(always)]
pub fn check_range(off: u64, len: usize, lo: u64, hi: u64) -> Option<std::ops::Range<usize>> {
    let end = off.checked_add(len as u64)?;
    if off >= lo && end <= hi {
        Some(off as usize..end as usize)
    } else {
        None
    }
}

#[inline(always)]
pub fn read_le(bytes: &[u8]) -> u64 {
    match bytes.len() {
        1 => bytes[0] as u64,
        2 => u16::from_le_bytes([bytes[0], bytes[1]]) as u64,
        4 => u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as u64,
        _ => u64::from_le_bytes(bytes.try_into().expect("8 bytes")),
    }
}

/// Reverses the low `size` bytes of `v` (1, 2, 4 or 8), clearing the rest:
/// turns a little-endian read of big-endian bytes into their value, and a
/// value into what a little-endian write must store to leave big-endian
/// bytes.
#[inline(always)]
pub fn swap_width(v: u64, size: usize) -> u64 {
    match size {
        1 => v as u8 as u64,
        2 => (v as u16).swap_bytes() as u64,
        4 => (v as u32).swap_bytes() as u64,
        _ => v.swap_bytes(),
    }
}

#[inline(always)]
pub fn write_le(bytes: &mut [u8], v: u64) {
    let n = bytes.len();
    bytes.copy_from_slice(&v.to_le_bytes()[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(check_range(4, 4, 0, 8), Some(4..8));
        assert_eq!(check_range(5, 4, 0, 8), None);
        assert_eq!(check_range(0, 1, 1, 8), None);
        assert_eq!(check_range(u64::MAX - 1, 4, 0, u64::MAX), None);
    }

    #[test]
    fn tags_round_trip() {
        let a = addr(TAG_MAP_VALUE_BASE + 3, 40);
        assert_eq!(region_of(a), Region::MapValue(3));
        assert_eq!(offset_of(a), 40);
        assert_eq!(region_of(0), Region::Invalid);
    }
}
