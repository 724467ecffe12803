//! The XDP buffer as `BPF_PROG_TEST_RUN` builds it, and `struct xdp_md`.
//!
//! Geometry, from `net/bpf/test_run.c` (`bpf_prog_test_run_xdp`, Linux 6.x):
//! the frame is one page; `XDP_PACKET_HEADROOM` (256) bytes of headroom come
//! before the data and `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`
//! of tailroom after the largest linear area. The tailroom depends on the
//! architecture's cache line ([`crate::arch::Arch`]): 320 on x86_64 and
//! aarch64, so at most 4096 - 256 - 320 = 3520 bytes are linear, and 512 on
//! s390x (3328 bytes). Longer input is split: the rest goes into page-sized
//! fragments. Frames shorter
//! than `ETH_HLEN` are refused with EINVAL before the program runs.
//!
//! The helpers that move `data`, `data_meta` and `data_end` check against the
//! same bounds as `net/core/filter.c`: `bpf_xdp_adjust_head` and
//! `bpf_xdp_adjust_meta` may not move below the `struct xdp_frame` (40 bytes)
//! kept at the start of the headroom, and `data_end - data` must stay at least
//! `ETH_HLEN`.

use super::memory::{addr, TAG_PACKET};
use crate::arch::Arch;

pub const PAGE_SIZE: usize = 4096;
pub const XDP_PACKET_HEADROOM: usize = 256;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86_64 (the host's;
/// other architectures: [`Arch::tailroom`]).
pub const TAILROOM: usize = Arch::X86_64.tailroom();
/// `sizeof(struct xdp_frame)`, stored at `data_hard_start` on redirect.
pub const XDP_FRAME_SIZE: usize = 40;
/// The linear area on x86_64 ([`Arch::max_linear`] for the others).
pub const MAX_LINEAR: usize = Arch::X86_64.max_linear();
pub const ETH_HLEN: usize = 14;
/// `MAX_SKB_FRAGS` (default config).
pub const MAX_FRAGS: usize = 17;

/// Offsets of `struct xdp_md` fields (include/uapi/linux/bpf.h).
pub mod md {
    pub const DATA: i64 = 0;
    pub const DATA_END: i64 = 4;
    pub const DATA_META: i64 = 8;
    pub const INGRESS_IFINDEX: i64 = 12;
    pub const RX_QUEUE_INDEX: i64 = 16;
    pub const EGRESS_IFINDEX: i64 = 20;
    pub const SIZE: i64 = 24;
}

/// What the bytes of the page outside a newly laid-out frame must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surroundings {
    /// Zero, as in the kernel's freshly allocated page: a program that
    /// moves `data`, `data_meta` or `data_end` outwards
    /// (`bpf_xdp_adjust_head`, `_meta`, `_tail`) reads them.
    Zeroed,
    /// Never read: no program that can run calls an adjust helper, and
    /// every access is checked against `[data_meta, data_end)`, so what an
    /// earlier frame left outside the new one cannot be observed and need
    /// not be cleared (a memset on every packet whose frame is shorter than
    /// the last).
    Unobservable,
}

/// Why a frame cannot be run at all (the kernel refuses it before the program).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum NotRunReason {
    /// Shorter than an Ethernet header: test-run returns EINVAL.
    TooShort { len: usize },
    /// Needs more fragments than `MAX_SKB_FRAGS`: test-run returns ENOMEM.
    TooLong { len: usize, max: usize },
}

impl std::fmt::Display for NotRunReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRunReason::TooShort { len } => write!(
                f,
                "frame of {len} bytes is shorter than an Ethernet header (14): BPF_PROG_TEST_RUN refuses it with EINVAL"
            ),
            NotRunReason::TooLong { len, max } => write!(
                f,
                "frame of {len} bytes exceeds the {max} bytes test-run can hold (linear part plus {MAX_FRAGS} page fragments)"
            ),
        }
    }
}

/// Why BPF_PROG_TEST_RUN refuses a frame of `len` bytes before running the
/// program, if it does: shorter than an Ethernet header (EINVAL), or more
/// than the linear part plus `MAX_SKB_FRAGS` pages (net/bpf/test_run.c
/// bpf_prog_test_run_xdp). Every backend that runs frames outside the
/// kernel (engine, rbpf) applies this, so none of them runs what the
/// kernel would not. x86_64's linear area; [`refused_on`] for another.
pub fn refused(len: usize) -> Option<NotRunReason> {
    refused_on(len, Arch::X86_64)
}

/// [`refused`] on the architecture `arch`.
pub fn refused_on(len: usize, arch: Arch) -> Option<NotRunReason> {
    if len < ETH_HLEN {
        return Some(NotRunReason::TooShort { len });
    }
    let max = arch.max_linear() + MAX_FRAGS * PAGE_SIZE;
    (len > max).then_some(NotRunReason::TooLong { len, max })
}

/// One frame: a page with headroom, data and tailroom, plus fragments.
#[derive(Clone, Debug)]
pub struct XdpBuff {
    pub page: Vec<u8>,
    /// Offsets into `page`.
    pub data_meta: usize,
    pub data: usize,
    pub data_end: usize,
    /// Bytes beyond the linear part, in page-sized fragments.
    pub frags: Vec<Vec<u8>>,
    /// `page[dirty.0..dirty.1]` holds every byte that may be non-zero: the
    /// data of the last frame and wherever `data_meta`/`data_end` moved to
    /// since (programs can only write between them). `reset` clears just
    /// this range, so laying out a frame costs its length, not a page.
    dirty: (usize, usize),
    /// The architecture whose test-run geometry this buffer has.
    arch: Arch,
}

impl XdpBuff {
    /// Lays out `frame` as test-run does on x86_64.
    pub fn new(frame: &[u8]) -> Result<XdpBuff, NotRunReason> {
        XdpBuff::new_on(frame, Arch::X86_64)
    }

    /// Lays out `frame` as test-run does on `arch`.
    pub fn new_on(frame: &[u8], arch: Arch) -> Result<XdpBuff, NotRunReason> {
        let mut b = XdpBuff::empty_on(arch);
        b.reset(frame)?;
        Ok(b)
    }

    /// A zeroed page with no frame in it yet (x86_64's geometry).
    pub fn empty() -> XdpBuff {
        XdpBuff::empty_on(Arch::X86_64)
    }

    /// A zeroed page with `arch`'s geometry and no frame in it yet.
    pub fn empty_on(arch: Arch) -> XdpBuff {
        XdpBuff {
            arch,
            page: vec![0; PAGE_SIZE],
            data_meta: 0,
            data: 0,
            data_end: 0,
            frags: Vec::new(),
            dirty: (0, 0),
        }
    }

    fn touch(&mut self) {
        self.dirty = (self.dirty.0.min(self.data_meta), self.dirty.1.max(self.data_end));
    }

    /// Reuses this buffer's allocation for a new frame.
    pub fn reset(&mut self, frame: &[u8]) -> Result<(), NotRunReason> {
        self.reset_with(frame, Surroundings::Zeroed)
    }

    /// [`XdpBuff::reset`], where `around` says whether the bytes around the
    /// new frame (headroom, tailroom) must read as zero or may keep what an
    /// earlier frame left there.
    pub fn reset_with(&mut self, frame: &[u8], around: Surroundings) -> Result<(), NotRunReason> {
        if let Some(reason) = refused_on(frame.len(), self.arch) {
            return Err(reason);
        }
        let linear = frame.len().min(self.arch.max_linear());
        if around == Surroundings::Unobservable {
            let (start, end) = (XDP_PACKET_HEADROOM, XDP_PACKET_HEADROOM + linear);
            self.data = start;
            self.data_meta = start;
            self.data_end = end;
            // Stale bytes stay in the dirty range, so a later zeroing reset
            // still clears them.
            self.dirty = (self.dirty.0.min(start), self.dirty.1.max(end));
            self.page[start..end].copy_from_slice(&frame[..linear]);
            self.frags.clear();
            for chunk in frame[linear..].chunks(PAGE_SIZE) {
                self.frags.push(chunk.to_vec());
            }
            return Ok(());
        }
        // The kernel allocates the page zeroed (headroom and tailroom are
        // zero, which matters for bpf_xdp_adjust_tail growth and for
        // metadata the program reads before writing) and copies the data in.
        // Bytes the new frame's copy overwrites need no clearing first:
        // only the parts of the dirty range outside it are zeroed.
        let (start, end) = (XDP_PACKET_HEADROOM, XDP_PACKET_HEADROOM + linear);
        let (d0, d1) = self.dirty;
        if d0 < start {
            self.page[d0..start.min(d1)].fill(0);
        }
        if d1 > end {
            self.page[end.max(d0)..d1].fill(0);
        }
        self.data = start;
        self.data_meta = start;
        self.data_end = end;
        self.dirty = (start, end);
        self.page[start..end].copy_from_slice(&frame[..linear]);
        self.frags.clear();
        for chunk in frame[linear..].chunks(PAGE_SIZE) {
            self.frags.push(chunk.to_vec());
        }
        Ok(())
    }

    pub fn meta_len(&self) -> usize {
        self.data - self.data_meta
    }

    pub fn frags_len(&self) -> usize {
        self.frags.iter().map(Vec::len).sum()
    }

    /// What test-run copies to `data_out`: metadata, linear data, fragments.
    pub fn output(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data_end - self.data_meta + self.frags_len());
        out.extend_from_slice(&self.page[self.data_meta..self.data_end]);
        for f in &self.frags {
            out.extend_from_slice(f);
        }
        out
    }

    pub fn data_addr(&self) -> u64 {
        addr(TAG_PACKET, self.data as u64)
    }
    pub fn data_end_addr(&self) -> u64 {
        addr(TAG_PACKET, self.data_end as u64)
    }
    pub fn data_meta_addr(&self) -> u64 {
        addr(TAG_PACKET, self.data_meta as u64)
    }

    /// `bpf_xdp_adjust_head` (net/core/filter.c): returns 0 or -EINVAL.
    pub fn adjust_head(&mut self, delta: i32) -> i64 {
        let metalen = self.meta_len() as i64;
        let data_start = (XDP_FRAME_SIZE as i64) + metalen;
        let new_data = self.data as i64 + delta as i64;
        if new_data < data_start || new_data > self.data_end as i64 - ETH_HLEN as i64 {
            return -(libc::EINVAL as i64);
        }
        let new_meta = (self.data_meta as i64 + delta as i64) as usize;
        if metalen > 0 {
            self.page.copy_within(self.data_meta..self.data, new_meta);
        }
        self.data_meta = new_meta;
        self.data = new_data as usize;
        self.touch();
        0
    }

    /// `bpf_xdp_adjust_meta`: 0, -EINVAL (out of range) or -EACCES (length
    /// not a multiple of 4 or above 255, `xdp_metalen_invalid`).
    pub fn adjust_meta(&mut self, delta: i32) -> i64 {
        let meta = self.data_meta as i64 + delta as i64;
        if meta < XDP_FRAME_SIZE as i64 || meta > self.data as i64 {
            return -(libc::EINVAL as i64);
        }
        let metalen = self.data as i64 - meta;
        if metalen % 4 != 0 || metalen > 255 {
            return -(libc::EACCES as i64);
        }
        self.data_meta = meta as usize;
        self.touch();
        0
    }

    /// `bpf_xdp_adjust_tail` (net/core/filter.c). Linear frame: grow up to
    /// the tailroom (new bytes zeroed), shrink down to ETH_HLEN bytes of
    /// data. Multi-buffer frame: shrink takes bytes off the last fragments
    /// first and touches the linear part only once every fragment is gone
    /// (`bpf_xdp_frags_shrink_tail`); grow extends the last fragment within
    /// its page (`bpf_xdp_frags_increase_tail`, test-run's frag_size is a page).
    pub fn adjust_tail(&mut self, delta: i32) -> Result<i64, &'static str> {
        let einval = Ok(-(libc::EINVAL as i64));
        if !self.frags.is_empty() {
            if delta < 0 {
                let mut shrink = -(delta as i64) as usize;
                let total = self.data_end - self.data + self.frags_len();
                if shrink as i64 > total as i64 - ETH_HLEN as i64 {
                    return einval;
                }
                while shrink > 0 {
                    let Some(last) = self.frags.last_mut() else { break };
                    if last.len() <= shrink {
                        shrink -= last.len();
                        self.frags.pop();
                    } else {
                        let n = last.len() - shrink;
                        last.truncate(n);
                        shrink = 0;
                    }
                }
                if self.frags.is_empty() {
                    self.data_end -= shrink;
                }
                return Ok(0);
            }
            let last = self.frags.last_mut().expect("non-empty");
            let grow = delta as usize;
            if grow > PAGE_SIZE - last.len() {
                return einval;
            }
            last.resize(last.len() + grow, 0);
            return Ok(0);
        }
        let new_end = self.data_end as i64 + delta as i64;
        let max_end = (PAGE_SIZE - self.arch.tailroom()) as i64;
        if new_end > max_end || new_end < (self.data + ETH_HLEN) as i64 {
            return einval;
        }
        let new_end = new_end as usize;
        if new_end > self.data_end {
            self.page[self.data_end..new_end].iter_mut().for_each(|b| *b = 0);
        }
        self.data_end = new_end;
        self.touch();
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }

    #[test]
    fn geometry_matches_test_run() {
        assert_eq!(MAX_LINEAR, 3520);
        let b = XdpBuff::new(&frame(60)).unwrap();
        assert_eq!(b.data, 256);
        assert_eq!(b.data_end - b.data, 60);
        assert_eq!(b.output(), frame(60));
        let big = XdpBuff::new(&frame(9000)).unwrap();
        assert_eq!(big.data_end - big.data, 3520);
        assert_eq!(big.frags.len(), 2);
        assert_eq!(big.output(), frame(9000));
        assert_eq!(XdpBuff::new(&frame(13)).unwrap_err(), NotRunReason::TooShort { len: 13 });
    }

    #[test]
    fn s390x_geometry_has_the_smaller_linear_area() {
        // 4096 - 256 - ALIGN(320, 256) = 3328 bytes linear on s390x.
        let b = XdpBuff::new_on(&frame(9000), Arch::S390x).unwrap();
        assert_eq!(b.data_end - b.data, 3328);
        // 9000 - 3328 = 5672 bytes: one full page and 1576 bytes.
        assert_eq!(b.frags.iter().map(Vec::len).collect::<Vec<_>>(), vec![4096, 1576]);
        assert_eq!(b.output(), frame(9000));
        let b = XdpBuff::new_on(&frame(3400), Arch::S390x).unwrap();
        assert_eq!((b.data_end - b.data, b.frags.len()), (3328, 1));
        let b = XdpBuff::new_on(&frame(3400), Arch::X86_64).unwrap();
        assert_eq!((b.data_end - b.data, b.frags.len()), (3400, 0));
        // Tail growth of a linear frame stops at the tailroom: 4096 - 512
        // = 3584 is the last end offset, data starts at 256, so a 60-byte
        // frame grows by at most 3584 - 256 - 60 = 3268 bytes.
        let mut b = XdpBuff::new_on(&frame(60), Arch::S390x).unwrap();
        assert_eq!(b.adjust_tail(3269), Ok(-(libc::EINVAL as i64)));
        assert_eq!(b.adjust_tail(3268), Ok(0));
        // The largest frame test-run takes: linear area plus 17 pages.
        assert_eq!(refused_on(3328 + 17 * 4096, Arch::S390x), None);
        assert!(refused_on(3328 + 17 * 4096 + 1, Arch::S390x).is_some());
    }

    #[test]
    fn adjust_head_window() {
        let mut b = XdpBuff::new(&frame(60)).unwrap();
        // Can grow the head down to the xdp_frame: 256 - 40 = 216 bytes.
        assert_eq!(b.adjust_head(-217), -(libc::EINVAL as i64));
        assert_eq!(b.adjust_head(-216), 0);
        assert_eq!(b.data, 40);
        // Shrink: data may advance until 14 bytes remain.
        let mut b = XdpBuff::new(&frame(60)).unwrap();
        assert_eq!(b.adjust_head(47), -(libc::EINVAL as i64));
        assert_eq!(b.adjust_head(46), 0);
        assert_eq!(b.data_end - b.data, 14);
    }

    #[test]
    fn adjust_meta_rules() {
        let mut b = XdpBuff::new(&frame(60)).unwrap();
        assert_eq!(b.adjust_meta(-3), -(libc::EACCES as i64));
        // Below the xdp_frame at the start of the headroom: range check first.
        assert_eq!(b.adjust_meta(-256), -(libc::EINVAL as i64));
        assert_eq!(b.adjust_meta(-4), 0);
        assert_eq!(b.meta_len(), 4);
        assert_eq!(b.adjust_meta(8), -(libc::EINVAL as i64)); // meta beyond data
                                                              // Head adjustment carries the metadata along.
        b.page[b.data_meta..b.data].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(b.adjust_head(-10), 0);
        assert_eq!(&b.page[b.data_meta..b.data], &[1, 2, 3, 4]);
    }

    #[test]
    fn adjust_tail_on_fragments() {
        // 7543 bytes: 3520 linear + one 4023-byte fragment.
        let mut b = XdpBuff::new(&frame(7543)).unwrap();
        assert_eq!(b.adjust_tail(256 - 3520), Ok(0));
        assert_eq!(b.data_end - b.data, 3520, "linear part untouched");
        assert_eq!(b.output(), frame(7543)[..7543 - 3264].to_vec());
        // Shrinking past the fragments continues into the linear part.
        let mut b = XdpBuff::new(&frame(3600)).unwrap();
        assert_eq!(b.adjust_tail(-100), Ok(0));
        assert!(b.frags.is_empty());
        assert_eq!(b.output(), frame(3500));
        // Grow: within the last fragment's page.
        let mut b = XdpBuff::new(&frame(3600)).unwrap();
        assert_eq!(b.adjust_tail(4096 - 80 + 1), Ok(-(libc::EINVAL as i64)));
        assert_eq!(b.adjust_tail(10), Ok(0));
        assert_eq!(b.output().len(), 3610);
    }

    #[test]
    fn adjust_tail_limits() {
        let mut b = XdpBuff::new(&frame(60)).unwrap();
        assert_eq!(b.adjust_tail(-47), Ok(-(libc::EINVAL as i64)));
        assert_eq!(b.adjust_tail(-46), Ok(0));
        assert_eq!(b.adjust_tail(3520 - 14), Ok(0));
        assert_eq!(b.adjust_tail(1), Ok(-(libc::EINVAL as i64)));
        assert!(b.output()[14..].iter().all(|&x| x == 0), "grown bytes are zeroed");
    }
}

#[cfg(test)]
mod reuse_tests {
    use super::*;

    /// A reused buffer must look exactly like a fresh one: whatever the
    /// previous frame's program did to headroom, metadata or tailroom.
    #[test]
    fn unobservable_surroundings_keep_the_frame_and_a_later_zeroing_reset_clears_them() {
        let mut b = XdpBuff::new(&[0xaa; 1000]).unwrap();
        b.reset_with(&[1; 60], Surroundings::Unobservable).unwrap();
        // The frame is the new one, exactly where a zeroing reset puts it.
        let fresh = XdpBuff::new(&[1; 60]).unwrap();
        assert_eq!(
            (b.data_meta, b.data, b.data_end),
            (fresh.data_meta, fresh.data, fresh.data_end)
        );
        assert_eq!(b.output(), fresh.output());
        // The old frame's tail is still there (never readable by a program
        // that cannot move data_end) ...
        assert_eq!(b.page[XDP_PACKET_HEADROOM + 60], 0xaa);
        // ... and a zeroing reset after it gives a fresh page again.
        b.reset(&[1; 60]).unwrap();
        assert_eq!(b.page, fresh.page);
    }

    #[test]
    fn reset_after_adjustments_equals_a_fresh_page() {
        let mut b = XdpBuff::new(&[0xaa; 100]).unwrap();
        assert_eq!(b.adjust_head(-200), 0);
        assert_eq!(b.adjust_meta(-16), 0);
        let (lo, hi) = (b.data_meta, b.data_end);
        b.page[lo..hi].fill(0x55);
        assert_eq!(b.adjust_tail(500), Ok(0));
        let end = b.data_end;
        b.page[hi..end].fill(0x66);
        b.reset(&[1; 60]).unwrap();
        let fresh = XdpBuff::new(&[1; 60]).unwrap();
        assert_eq!(b.page, fresh.page);
        assert_eq!(
            (b.data_meta, b.data, b.data_end),
            (fresh.data_meta, fresh.data, fresh.data_end)
        );
    }
}
