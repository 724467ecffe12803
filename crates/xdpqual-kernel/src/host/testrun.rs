//! Running one frame through a loaded program with `BPF_PROG_TEST_RUN`.
//!
//! How the kernel builds the frame (net/bpf/test_run.c,
//! `bpf_prog_test_run_xdp`, 6.x):
//! - The buffer is one page: `XDP_PACKET_HEADROOM` (256) bytes of headroom,
//!   then the frame, then `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`
//!   (320 on 64-bit with 17 frags) of tailroom. The largest linear frame is
//!   therefore `PAGE_SIZE - 256 - 320` = 3520 bytes with 4 KiB pages.
//!   Metadata (`ctx_in->data`) is carved out of the headroom.
//! - A longer frame is not refused: the first 3520 bytes go to the linear
//!   part and the rest into page-sized fragments, at most `MAX_SKB_FRAGS`
//!   (17) of them (ENOMEM beyond). The kernel does this whether or not the
//!   program was loaded with `BPF_F_XDP_HAS_FRAGS`; a program without frags
//!   support simply sees `data_end - data` = 3520 and cannot reach the rest
//!   (see the tests in tests/host_backend.rs, which check this on the
//!   running kernel). `data_out` returns linear part and fragments
//!   concatenated (`bpf_test_finish`).
//! - A frame shorter than `ETH_HLEN` (14) after the metadata is refused with
//!   EINVAL. Metadata must be a multiple of 4 bytes (`xdp_metalen_invalid`,
//!   include/net/xdp.h) and fit in the headroom.
//! - With `ctx_in`, `ingress_ifindex`/`rx_queue_index` must name a real
//!   device (ENODEV otherwise) and a registered queue below
//!   `real_num_rx_queues` (EINVAL otherwise); `egress_ifindex` must be 0.
//!   Without ctx the frame arrives on the loopback device, queue 0.
//! - `repeat` > 1 runs the program that many times on the *same* buffer, so
//!   a program that rewrites the frame sees its own earlier output; the
//!   reported duration is the mean per run and `data_out` is the last run's.
//! - `BPF_F_TEST_XDP_LIVE_FRAMES` (5.18+) sends each result through the real
//!   datapath (PASS up the stack of `ingress_ifindex`, TX back out of it,
//!   REDIRECT where the program says); it refuses `data_out`/`ctx_out` and
//!   frames over the linear limit, and `batch_size` may not exceed 256
//!   (`TEST_XDP_MAX_BATCH`, E2BIG). Its linear limit is smaller because
//!   each page also carries a `struct xdp_page_head`: on 6.18 x86_64 the
//!   largest live frame measured 3408 bytes (3520 - 112).

use super::prog::KernelProgram;
use crate::sys::{self, Errno, XdpMd};

/// `XDP_PACKET_HEADROOM` (include/uapi/linux/bpf.h).
pub const XDP_PACKET_HEADROOM: usize = 256;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on 64-bit kernels with
/// the default `MAX_SKB_FRAGS` of 17.
pub const SHARED_INFO_TAILROOM: usize = 320;
/// `MAX_SKB_FRAGS` default (include/linux/skbuff.h, CONFIG_MAX_SKB_FRAGS).
pub const MAX_SKB_FRAGS: usize = 17;
/// `ETH_HLEN`.
pub const ETH_HLEN: usize = 14;
/// `BPF_F_TEST_XDP_LIVE_FRAMES` (include/uapi/linux/bpf.h).
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// `TEST_XDP_MAX_BATCH` (net/bpf/test_run.c).
pub const MAX_LIVE_BATCH: u32 = 256;

/// The largest frame the kernel keeps linear (`data`..`data_end`), without
/// metadata.
pub fn max_linear_frame() -> usize {
    sys::page_size() - XDP_PACKET_HEADROOM - SHARED_INFO_TAILROOM
}

/// The largest frame test-run accepts: linear part plus 17 page fragments.
pub fn max_frame() -> usize {
    max_linear_frame() + MAX_SKB_FRAGS * sys::page_size()
}

/// Where the frame claims to come from, and how much metadata precedes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpCtx {
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    /// The first `data_meta_len` bytes of the input are metadata (what
    /// `bpf_xdp_adjust_meta` would have put there), the frame follows.
    pub data_meta_len: u32,
}

impl XdpCtx {
    /// The loopback device, queue 0, no metadata: what the kernel uses
    /// when no context is given. Falls back to ifindex 1 (loopback is
    /// always the first device of a network namespace) if `lo` is unnamed.
    pub fn loopback() -> XdpCtx {
        XdpCtx {
            ingress_ifindex: sys::if_nametoindex(c"lo").unwrap_or(1),
            rx_queue_index: 0,
            data_meta_len: 0,
        }
    }
}

impl Default for XdpCtx {
    fn default() -> XdpCtx {
        XdpCtx::loopback()
    }
}

/// Run modifiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFlags {
    /// Pass no `ctx_in`/`ctx_out`: kernels before 5.12 refuse a context
    /// for XDP. The frame then arrives on loopback queue 0 with no
    /// metadata, and the result has no `ctx_out`.
    pub without_ctx: bool,
}

/// `struct xdp_md` as the kernel returns it: `data`/`data_end` are offsets
/// from `data_meta` (which reads as 0), so `data` is the metadata length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpMdOut {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

impl From<XdpMd> for XdpMdOut {
    fn from(m: XdpMd) -> XdpMdOut {
        XdpMdOut {
            data: m.data,
            data_end: m.data_end,
            data_meta: m.data_meta,
            ingress_ifindex: m.ingress_ifindex,
            rx_queue_index: m.rx_queue_index,
            egress_ifindex: m.egress_ifindex,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunResult {
    /// The XDP action (or whatever the program returned).
    pub retval: u32,
    /// Metadata (if any) followed by the frame, after the program.
    pub data_out: Vec<u8>,
    /// Mean nanoseconds per run as the kernel measured it.
    pub duration_ns: u32,
    pub ctx_out: Option<XdpMdOut>,
}

impl TestRunResult {
    /// The output frame without metadata in front.
    pub fn frame(&self) -> &[u8] {
        let meta = self.ctx_out.map_or(0, |c| c.data as usize);
        &self.data_out[meta.min(self.data_out.len())..]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRunResult {
    /// Mean nanoseconds per frame, datapath included.
    pub duration_ns: u32,
}

/// Why a run produced no result. Some are about the frame (the same frame
/// fails on every healthy kernel); the rest are about this backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestRunError {
    #[error("frame of {len} bytes is shorter than an Ethernet header ({ETH_HLEN} bytes); BPF_PROG_TEST_RUN refuses it with EINVAL")]
    FrameTooShort { len: usize },
    #[error("frame of {len} bytes is larger than BPF_PROG_TEST_RUN takes ({limit} bytes: {linear} linear plus {MAX_SKB_FRAGS} page fragments)")]
    FrameTooLarge { len: usize, limit: usize, linear: usize },
    #[error("frame of {len} bytes is too large for live-frames mode, which takes no fragments (the limit is a little over {limit} bytes)")]
    LiveFrameTooLarge { len: usize, limit: usize },
    #[error("{meta_len} bytes of metadata: {reason}")]
    BadMetadata { meta_len: u32, reason: &'static str },
    #[error("live-frames batch size {0} is over the kernel's limit of {MAX_LIVE_BATCH}")]
    BatchTooLarge(u32),
    #[error("ingress ifindex {0} names no network device in this namespace (ENODEV)")]
    NoSuchDevice(u32),
    #[error("the kernel refused the run with {errno}: {context}")]
    Refused { errno: Errno, context: String },
    #[error(
        "the kernel produced {needed} output bytes, more than the {capacity}-byte buffer offered"
    )]
    OutputTooSmall { needed: u32, capacity: usize },
    #[error("BPF_PROG_TEST_RUN failed: {errno}")]
    Kernel { errno: Errno },
}

impl TestRunError {
    /// True when the failure is a property of the frame, not of the backend.
    pub fn is_per_packet(&self) -> bool {
        matches!(
            self,
            TestRunError::FrameTooShort { .. }
                | TestRunError::FrameTooLarge { .. }
                | TestRunError::LiveFrameTooLarge { .. }
                | TestRunError::BadMetadata { .. }
        )
    }
}

/// What is checked before the kernel sees the frame: only what would make
/// the call itself meaningless. Frame-size rules are left to the kernel and
/// recognised in its answer (see [`classify`]), so they are never stricter
/// or looser than the kernel actually running.
fn validate(packet: &[u8], ctx: &XdpCtx, flags: RunFlags) -> Result<(), TestRunError> {
    let meta = if flags.without_ctx { 0 } else { ctx.data_meta_len as usize };
    if meta > packet.len() {
        return Err(TestRunError::BadMetadata {
            meta_len: ctx.data_meta_len,
            reason: "longer than the input",
        });
    }
    if u32::try_from(packet.len()).is_err() {
        return Err(TestRunError::FrameTooLarge {
            len: packet.len(),
            limit: max_frame(),
            linear: max_linear_frame(),
        });
    }
    Ok(())
}

fn md_in(ctx: &XdpCtx, len: usize) -> XdpMd {
    XdpMd {
        data: ctx.data_meta_len,
        data_end: len as u32,
        data_meta: 0,
        ingress_ifindex: ctx.ingress_ifindex,
        rx_queue_index: ctx.rx_queue_index,
        egress_ifindex: 0,
    }
}

/// Turns the kernel's errno into a reason, naming the frame's fault where
/// the kernel's checks (module docs) say that is what it refused.
fn classify(errno: Errno, packet: &[u8], ctx: &XdpCtx, flags: RunFlags) -> TestRunError {
    let meta = if flags.without_ctx { 0 } else { ctx.data_meta_len as usize };
    let frame = packet.len() - meta;
    match errno.0 {
        libc::EINVAL if frame < ETH_HLEN => TestRunError::FrameTooShort { len: frame },
        libc::EINVAL if meta % 4 != 0 => TestRunError::BadMetadata {
            meta_len: ctx.data_meta_len,
            reason: "must be a multiple of 4 (xdp_metalen_invalid)",
        },
        libc::EINVAL if meta > 0 && meta + ETH_HLEN > XDP_PACKET_HEADROOM => {
            TestRunError::BadMetadata {
                meta_len: ctx.data_meta_len,
                reason: "does not fit in the 256-byte headroom",
            }
        }
        libc::ENODEV if !flags.without_ctx => TestRunError::NoSuchDevice(ctx.ingress_ifindex),
        // Only the fragment path allocates per frame; running out of frag
        // slots (nr_frags == MAX_SKB_FRAGS) reads as ENOMEM.
        libc::ENOMEM if packet.len() > max_linear_frame() => TestRunError::FrameTooLarge {
            len: packet.len(),
            limit: max_frame(),
            linear: max_linear_frame(),
        },
        libc::EINVAL | libc::EMSGSIZE => TestRunError::Refused {
            errno,
            context: format!(
                "{}-byte input, {} bytes of metadata, ingress ifindex {} queue {}{}",
                packet.len(),
                ctx.data_meta_len,
                ctx.ingress_ifindex,
                ctx.rx_queue_index,
                if flags.without_ctx { " (no ctx passed)" } else { "" }
            ),
        },
        _ => TestRunError::Kernel { errno },
    }
}

/// Runs `packet` through `prog` `repeat` times (0 counts as 1) and returns
/// the last run's verdict and frame.
pub fn test_run(
    prog: &KernelProgram,
    packet: &[u8],
    ctx: XdpCtx,
    repeat: u32,
    flags: RunFlags,
) -> Result<TestRunResult, TestRunError> {
    validate(packet, &ctx, flags)?;
    // The output can be longer than the input: bpf_xdp_adjust_head and
    // adjust_meta grow into the headroom (the linear part never exceeds a
    // page) and bpf_xdp_adjust_tail grows into the tailroom or the last
    // fragment's page. Input plus two pages covers both, so ENOSPC (which
    // would need a second run, doubling any map side effects) cannot occur.
    let capacity = packet.len() + 2 * sys::page_size();
    let mut out = vec![0u8; capacity];
    let md = md_in(&ctx, packet.len());
    let mut md_out = XdpMd::default();
    let r = sys::prog_test_run(
        prog.fd(),
        sys::TestRunIn {
            data_in: packet,
            data_out: Some(&mut out),
            ctx_in: (!flags.without_ctx).then_some(&md),
            ctx_out: (!flags.without_ctx).then_some(&mut md_out),
            repeat,
            flags: 0,
            batch_size: 0,
        },
    );
    match r {
        Ok(res) => {
            let n = res.data_size_out as usize;
            if n > capacity {
                return Err(TestRunError::OutputTooSmall { needed: res.data_size_out, capacity });
            }
            out.truncate(n);
            Ok(TestRunResult {
                retval: res.retval,
                data_out: out,
                duration_ns: res.duration_ns,
                ctx_out: (!flags.without_ctx).then(|| XdpMdOut::from(md_out)),
            })
        }
        Err(f) if f.errno.0 == libc::ENOSPC => {
            Err(TestRunError::OutputTooSmall { needed: f.data_size_out, capacity })
        }
        Err(f) => Err(classify(f.errno, packet, &ctx, flags)),
    }
}

/// Live-frames mode, for throughput measurements: `repeat` copies of
/// `packet` go through the program in batches of `batch_size` (0: the
/// kernel's default of 64) and then through the real datapath.
pub fn test_run_live(
    prog: &KernelProgram,
    packet: &[u8],
    ctx: XdpCtx,
    repeat: u32,
    batch_size: u32,
) -> Result<LiveRunResult, TestRunError> {
    let flags = RunFlags::default();
    validate(packet, &ctx, flags)?;
    if batch_size > MAX_LIVE_BATCH {
        return Err(TestRunError::BatchTooLarge(batch_size));
    }
    let md = md_in(&ctx, packet.len());
    let r = sys::prog_test_run(
        prog.fd(),
        sys::TestRunIn {
            data_in: packet,
            data_out: None,
            ctx_in: Some(&md),
            ctx_out: None,
            repeat,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size,
        },
    );
    match r {
        Ok(res) => Ok(LiveRunResult { duration_ns: res.duration_ns }),
        // Live mode keeps frames linear and spends part of the headroom on
        // its per-page `struct xdp_page_head`, so its limit is below
        // max_linear_frame(); the kernel says EINVAL past it.
        Err(f) if f.errno.0 == libc::EINVAL && packet.len() > live_frame_floor() => {
            Err(TestRunError::LiveFrameTooLarge { len: packet.len(), limit: live_frame_floor() })
        }
        Err(f) => Err(classify(f.errno, packet, &ctx, flags)),
    }
}

/// A frame size live mode always accepts; a refusal above it is the size.
fn live_frame_floor() -> usize {
    max_linear_frame() - LIVE_PAGE_HEAD_BOUND
}

/// An upper bound for `sizeof(struct xdp_page_head)` (two `xdp_buff`s and a
/// frame header, net/bpf/test_run.c).
const LIVE_PAGE_HEAD_BOUND: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_answers_become_reasons() {
        let ctx = XdpCtx { ingress_ifindex: 1, rx_queue_index: 0, data_meta_len: 0 };
        let f = RunFlags::default();
        let einval = Errno(libc::EINVAL);
        assert_eq!(classify(einval, &[0; 13], &ctx, f), TestRunError::FrameTooShort { len: 13 });
        let meta = XdpCtx { data_meta_len: 4, ..ctx };
        assert_eq!(classify(einval, &[0; 17], &meta, f), TestRunError::FrameTooShort { len: 13 });
        let odd = XdpCtx { data_meta_len: 3, ..ctx };
        assert!(matches!(classify(einval, &[0; 60], &odd, f), TestRunError::BadMetadata { .. }));
        assert!(matches!(classify(einval, &[0; 60], &ctx, f), TestRunError::Refused { .. }));
        let big = vec![0u8; max_frame() + 1];
        assert!(matches!(
            classify(Errno(libc::ENOMEM), &big, &ctx, f),
            TestRunError::FrameTooLarge { .. }
        ));
        assert!(matches!(
            classify(Errno(libc::ENOMEM), &[0; 60], &ctx, f),
            TestRunError::Kernel { .. }
        ));
        assert_eq!(
            validate(&[0; 3], &meta, f),
            Err(TestRunError::BadMetadata { meta_len: 4, reason: "longer than the input" })
        );
        assert!(TestRunError::FrameTooShort { len: 1 }.is_per_packet());
        assert!(!TestRunError::Kernel { errno: Errno(libc::EBADF) }.is_per_packet());
    }

    #[test]
    fn linear_limit_with_4k_pages() {
        if sys::page_size() == 4096 {
            assert_eq!(max_linear_frame(), 3520);
        }
    }
}
