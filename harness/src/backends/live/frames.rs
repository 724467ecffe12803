//! Throughput of the host kernel in live-frames mode
//! (`BPF_F_TEST_XDP_LIVE_FRAMES`, net/bpf/test_run.c): the kernel builds
//! real `xdp_frame`s from one template and carries out each verdict (TX and
//! REDIRECT really transmit; on loopback, the default ingress device, they
//! go nowhere), so the time per frame includes the datapath after the
//! program. A measurement mode for `xdpqual bench`.

use crate::backends::host::{testrun, HostBackend, SessionOutcome, XdpCtx};
use crate::program::{Object, Program};

use super::LiveError;

/// One live-frames measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LiveFramesRate {
    pub program: String,
    pub kernel: String,
    pub frame_len: usize,
    pub frames: u64,
    /// Mean nanoseconds per frame as the kernel measured it.
    pub ns_per_frame: u32,
    /// `1e9 / ns_per_frame`; `None` when the kernel reports 0 ns.
    pub packets_per_s: Option<f64>,
}

/// Loads `program` into the host kernel and runs `frame` `repeat` times in
/// live-frames mode, `batch` frames per kernel batch (at most 256).
pub fn measure(
    obj: &Object,
    program: &Program,
    frame: &[u8],
    repeat: u32,
    batch: u32,
) -> Result<LiveFramesRate, LiveError> {
    let host = HostBackend::open().map_err(|e| LiveError::Host(e.to_string()))?;
    let session = match host.load(obj, program).map_err(|e| LiveError::Host(e.to_string()))? {
        SessionOutcome::Ready(s) => s,
        SessionOutcome::Rejected(r) => {
            return Err(LiveError::Rejected {
                kernel: host.kernel_release().to_string(),
                program: r.program,
                message: r
                    .rejection
                    .first_error_line
                    .unwrap_or_else(|| r.rejection.errno.to_string()),
            })
        }
    };
    let r = testrun::test_run_live(session.program(), frame, XdpCtx::loopback(), repeat, batch)
        .map_err(|e| LiveError::Other(format!("live-frames run of `{}`: {e}", program.name)))?;
    Ok(LiveFramesRate {
        program: program.name.clone(),
        kernel: host.kernel_release().to_string(),
        frame_len: frame.len(),
        frames: u64::from(repeat.max(1)),
        ns_per_frame: r.duration_ns,
        packets_per_s: (r.duration_ns > 0).then(|| 1e9 / f64::from(r.duration_ns)),
    })
}
