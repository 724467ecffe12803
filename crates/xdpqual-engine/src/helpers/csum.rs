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

/// `csum_partial` as s390x computes it: a 32-bit end-around-carry sum of
/// big-endian 4-byte words, a trailing 1-3 bytes padded with zeros on the
/// right. The engine uses it for big-endian programs, whose reference
/// machine is s390x. Linux 6.12 (arch/s390/lib/csum-partial.c `csum_copy`)
/// sums with the CKSM instruction (`cksm` in arch/s390/include/asm/checksum.h)
/// on a CPU without the vector facility, and otherwise with VCKSM over
/// 16-byte blocks into four accumulators, the last block loaded with VLL
/// (zero-filled on the right), the accumulators then combined with VCKSM.
/// Both instructions add 32-bit words with the carry out of bit 0 added
/// back in (z/Architecture Principles of Operation), and such a sum does
/// not depend on order or grouping: it is 0 when every word is 0 and
/// otherwise the value in 1..=0xffff_ffff congruent to the plain sum modulo
/// 0xffff_ffff. So one function models both paths (the test
/// `vector_path_sums_as_cksm` runs the vector algorithm against it).
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

/// `csum_add` (include/net/checksum.h): 32-bit ones'-complement addition,
/// the carry out of the top added back in.
pub fn csum_add(sum: u32, addend: u32) -> u32 {
    let (s, carry) = sum.overflowing_add(addend);
    s.wrapping_add(u32::from(carry))
}

/// `csum_sub` (include/net/checksum.h): adds the NOT of `addend`.
pub fn csum_sub(sum: u32, addend: u32) -> u32 {
    csum_add(sum, !addend)
}

/// `csum_from32to16` (include/net/checksum.h, since 6.13): folds a 32-bit
/// partial sum to 16 bits with end-around carry, not inverted. The kernel
/// adds the sum to itself rotated by 16 and keeps the top half, which is
/// the same as adding the halves twice.
pub fn from32to16(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
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
    fn from32to16_adds_the_halves_with_end_around_carry() {
        // Worked by hand: 0x0001_ffff -> 0x0001 + 0xffff = 0x1_0000 -> 0x0001.
        assert_eq!(from32to16(0x0001_ffff), 0x0001);
        assert_eq!(from32to16(0xffff_ffff), 0xffff);
        assert_eq!(from32to16(0x1234_5678), 0x68ac);
        assert_eq!(from32to16(0), 0);
        // The kernel's form: the top half of sum + ror32(sum, 16).
        for sum in [0x0001_ffffu32, 0xffff_ffff, 0x1234_5678, 0x8000_8000, 0xfffe_0001] {
            let kernel = (sum.wrapping_add(sum.rotate_right(16)) >> 16) as u16;
            assert_eq!(from32to16(sum), kernel, "{sum:#x}");
        }
    }

    #[test]
    fn csum_sub_is_ones_complement_subtraction() {
        // a - a is negative zero (all ones) in ones' complement.
        assert_eq!(csum_sub(0x1234_5678, 0x1234_5678), 0xffff_ffff);
        // 5 - 3: 5 + !3 = 5 + 0xffff_fffc = 0x1_0000_0001 -> 1 + carry 1 = 2.
        assert_eq!(csum_sub(5, 3), 2);
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

    /// Linux 6.12's vector path (arch/s390/lib/csum-partial.c), step for
    /// step: VLVGF puts the seed in word 1 of v16, v17-v19 start at zero,
    /// 64-, 32- and 16-byte blocks go through VCKSM into v16-v19, a last
    /// partial block is loaded zero-filled (VLL), then v18+v19, v16+v17,
    /// v16+v18. VCKSM adds the four words of its second operand to word 1
    /// of its third with end-around carry.
    fn vector_path(buf: &[u8], seed: u32) -> u32 {
        let vcksm = |words: [u32; 4], acc: u32| {
            words.iter().fold(acc, |s, &w| {
                let (t, c) = s.overflowing_add(w);
                t.wrapping_add(c as u32)
            })
        };
        let block = |b: &[u8]| -> [u32; 4] {
            let mut v = [0u8; 16];
            v[..b.len()].copy_from_slice(b);
            std::array::from_fn(|i| u32::from_be_bytes(v[4 * i..4 * i + 4].try_into().unwrap()))
        };
        let word1 = |x: u32| [0, x, 0, 0];
        let mut acc = [seed, 0, 0, 0];
        let mut rest = buf;
        while rest.len() >= 64 {
            for (i, a) in acc.iter_mut().enumerate() {
                *a = vcksm(block(&rest[16 * i..16 * i + 16]), *a);
            }
            rest = &rest[64..];
        }
        while rest.len() >= 32 {
            acc[0] = vcksm(block(&rest[..16]), acc[0]);
            acc[1] = vcksm(block(&rest[16..32]), acc[1]);
            rest = &rest[32..];
        }
        while rest.len() >= 16 {
            acc[0] = vcksm(block(&rest[..16]), acc[0]);
            rest = &rest[16..];
        }
        if !rest.is_empty() {
            acc[0] = vcksm(block(rest), acc[0]);
        }
        acc[2] = vcksm(word1(acc[3]), acc[2]);
        acc[0] = vcksm(word1(acc[1]), acc[0]);
        vcksm(word1(acc[2]), acc[0])
    }

    #[test]
    fn vector_path_sums_as_cksm() {
        // reflector's case, worked by hand: TTL 64 and protocol 17 before
        // and after, seed the NOT of the header checksum 0x5393 = 0xac6c.
        // NOT(from) = bf ee ff ff, to = 40 11 00 00: 0xbfeeffff + 0x40110000
        // = 0xffffffff, + 0xac6c = 0x1_0000_ac6b, carry back in: 0x0000ac6c,
        // whose fold complemented is 0x5393 again (the checksum stays).
        let buf = diff_buffer(&[0x40, 0x11, 0, 0], &[0x40, 0x11, 0, 0]);
        assert_eq!(buf, [0xbf, 0xee, 0xff, 0xff, 0x40, 0x11, 0, 0]);
        assert_eq!(csum_partial_s390x(&buf, 0xac6c), 0x0000_ac6c);
        assert_eq!(vector_path(&buf, 0xac6c), 0x0000_ac6c);
        assert_eq!(fold(0x0000_ac6c), 0x5393);
        // All-zero input keeps a zero sum; all-ones words stay 0xffffffff.
        assert_eq!(vector_path(&[0; 40], 0), 0);
        assert_eq!(vector_path(&[0xff; 8], 0), 0xffff_ffff);
        // Every block size and tail length, against the linear sum.
        let data: Vec<u8> =
            (0..300u32).map(|i| (i.wrapping_mul(0x9e37_79b9) >> 13) as u8).collect();
        for len in 0..data.len() {
            for seed in [0, 1, 0xac6c, 0xffff_fffe, 0xffff_ffff] {
                assert_eq!(
                    vector_path(&data[..len], seed),
                    csum_partial_s390x(&data[..len], seed),
                    "len {len} seed {seed:#x}"
                );
            }
        }
    }
}
