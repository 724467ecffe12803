//! The machine a run models, where the kernel's behaviour depends on it.
//!
//! Today that is the size of `BPF_PROG_TEST_RUN`'s linear area for XDP.
//! `bpf_prog_test_run_xdp` (net/bpf/test_run.c) gives the frame one page,
//! with `XDP_PACKET_HEADROOM` (256) in front and, behind the largest linear
//! frame, the tailroom `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`.
//! `SKB_DATA_ALIGN(X)` is `ALIGN(X, SMP_CACHE_BYTES)` (include/linux/skbuff.h),
//! and `SMP_CACHE_BYTES` defaults to `L1_CACHE_BYTES` (include/linux/cache.h):
//! - x86_64: 64 (`L1_CACHE_SHIFT` = `CONFIG_X86_L1_CACHE_SHIFT`, 6 for
//!   x86_64 generic builds such as Debian's, arch/x86/include/asm/cache.h);
//! - aarch64: 64 (`L1_CACHE_SHIFT` 6 in arch/arm64/include/asm/cache.h since
//!   Linux 4.19, "arm64: Revert L1_CACHE_SHIFT back to 6"; it was 7 before,
//!   which no matrix kernel is);
//! - s390x: 256 (`L1_CACHE_BYTES` 256, `L1_CACHE_SHIFT` 8 in
//!   arch/s390/include/asm/cache.h).
//!
//! `sizeof(struct skb_shared_info)` is 320 bytes on every 64-bit
//! architecture of the matrix (48 bytes of fields up to `destructor_arg`
//! and `MAX_SKB_FRAGS` = 17 `skb_frag_t` of 16 bytes), so the tailroom is
//! 320 with 64-byte lines and 512 with 256-byte lines. The kernel's own
//! selftest tools/testing/selftests/bpf/progs/test_xdp_adjust_tail_grow.c
//! uses the same per-architecture numbers.

use crate::xdp::{PAGE_SIZE, XDP_PACKET_HEADROOM};

/// `sizeof(struct skb_shared_info)` on 64-bit Linux 5.x/6.x.
pub const SKB_SHARED_INFO_SIZE: usize = 320;

/// An architecture the engine can stand for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Arch {
    /// The host this project runs on, and the default.
    #[default]
    X86_64,
    Aarch64,
    S390x,
}

impl Arch {
    /// `SMP_CACHE_BYTES` (= `L1_CACHE_BYTES`) of the architecture's kernel.
    pub const fn smp_cache_bytes(self) -> usize {
        match self {
            Arch::X86_64 | Arch::Aarch64 => 64,
            Arch::S390x => 256,
        }
    }

    /// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`: the tailroom
    /// test-run keeps behind the linear area.
    pub const fn tailroom(self) -> usize {
        let a = self.smp_cache_bytes();
        SKB_SHARED_INFO_SIZE.div_ceil(a) * a
    }

    /// The most bytes of a frame test-run puts in the linear area; the rest
    /// goes into page fragments.
    pub const fn max_linear(self) -> usize {
        PAGE_SIZE - XDP_PACKET_HEADROOM - self.tailroom()
    }

    pub const fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::S390x => "s390x",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_area_follows_the_cache_line() {
        // Worked from the formula 4096 - 256 - ALIGN(320, line):
        // 64-byte lines: ALIGN(320, 64) = 320 (5 lines), 4096 - 256 - 320 = 3520;
        // 256-byte lines: ALIGN(320, 256) = 512 (2 lines), 4096 - 256 - 512 = 3328.
        assert_eq!(Arch::X86_64.tailroom(), 320);
        assert_eq!(Arch::X86_64.max_linear(), 3520);
        assert_eq!(Arch::Aarch64.max_linear(), 3520);
        assert_eq!(Arch::S390x.tailroom(), 512);
        assert_eq!(Arch::S390x.max_linear(), 3328);
        assert_eq!(Arch::default(), Arch::X86_64);
    }
}
