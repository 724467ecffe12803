//! `bpf_csum_diff` with the x86_64 kernel's exact 32-bit partial sum.
//!
//! `bpf_csum_diff` (net/core/filter.c) builds a buffer of the bitwise NOT of
//! the `from` words followed by the `to` words, and returns
//! `csum_partial(buf, len, seed)`. `csum_partial` returns an unfolded 32-bit
//! ones'-complement sum whose exact bits are architecture-specific. This is
//! the x86_64 algorithm (arch/x86/lib/csum-partial_64.c): a 64-bit
//! end-around-carry sum of little-endian 8-byte words (a trailing 4 bytes
//! zero-padded), folded by adding the two halves with carry into the top.
//! On other architectures the value may differ while folding to the same
//! 16-bit checksum; the QEMU matrix shows such differences.

fn add_carry(a: u64, b: u64) -> u64 {
    let (s, c) = a.overflowing_add(b);
    s.wrapping_add(c as u64)
}

pub fn csum_partial_x86_64(buf: &[u8], seed: u32) -> u32 {
    let mut sum = seed as u64;
    let mut chunks = buf.chunks_exact(8);
    for c in &mut chunks {
        sum = add_carry(sum, u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        sum = add_carry(sum, u64::from_le_bytes(tail));
    }
    (sum.wrapping_add(sum.rotate_right(32)) >> 32) as u32
}

/// `csum_partial` as s390x computes it (arch/s390/include/asm/checksum.h
/// `cksm`, the CKSM instruction): a 32-bit end-around-carry sum of
/// big-endian 4-byte words, a trailing 1-3 bytes padded with zeros on the
/// right. The engine uses it for big-endian programs, whose reference
/// machine is s390x. Newer s390x kernels sum with vector instructions
/// (arch/s390/lib/csum-partial.c); any difference in the unfolded value
/// folds to the same 16-bit checksum, and the s390x matrix cell shows it.
pub fn csum_partial_s390x(buf: &[u8], seed: u32) -> u32 {
    let add = |a: u32, b: u32| {
        let (s, c) = a.overflowing_add(b);
        s.wrapping_add(c as u32)
    };
    let mut sum = seed;
    let mut chunks = buf.chunks_exact(4);
    for c in &mut chunks {
        sum = add(sum, u32::from_be_bytes(c.try_into().expect("4 bytes")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 4];
        tail[..rest.len()].copy_from_slice(rest);
        sum = add(sum, u32::from_be_bytes(tail));
    }
    sum
}

/// The diff buffer of `bpf_csum_diff`.
pub fn diff_buffer(from: &[u8], to: &[u8]) -> Vec<u8> {
    from.iter().map(|b| !b).chain(to.iter().copied()).collect()
}

/// Folds a 32-bit partial sum to the 16-bit Internet checksum (csum_fold).
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_alone_is_returned() {
        assert_eq!(csum_partial_x86_64(&[], 0x1234_5678), 0x1234_5678);
    }

    #[test]
    fn folds_to_the_rfc1071_checksum() {
        // RFC 1071 section 3 example bytes: 00 01 f2 03 f4 f5 f6 f7 ->
        // ones'-complement sum 0xddf2 (in network order), checksum 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let s = csum_partial_x86_64(&data, 0);
        // The partial sum is in host (little-endian) order, like the kernel's.
        assert_eq!(fold(s).swap_bytes(), !0xddf2u16);
    }

    #[test]
    fn s390x_sum_folds_to_the_rfc1071_checksum() {
        // Same RFC 1071 bytes; on a big-endian machine the partial sum is
        // in network order, so the fold is the checksum as it stands:
        // 0x0001f203 + 0xf4f5f6f7 = 0xf4f7e8fa; 0xf4f7 + 0xe8fa = 0x1ddf1,
        // end-around 0xddf2, complement 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let s = csum_partial_s390x(&data, 0);
        assert_eq!(s, 0xf4f7_e8fa);
        assert_eq!(fold(s), !0xddf2u16);
        // A 5-byte buffer: the last byte is the high byte of its word.
        assert_eq!(csum_partial_s390x(&[0, 0, 0, 1, 0xab], 0), 0xab00_0001);
    }

    #[test]
    fn diff_of_equal_words_is_neutral() {
        let w = [1, 2, 3, 4];
        let s = csum_partial_x86_64(&diff_buffer(&w, &w), 0);
        // x + ~x = all ones = ones'-complement zero.
        assert_eq!(fold(s), 0);
    }
}
