//! Sending one frame at a time into the interface and seeing where it went.
//!
//! The tag of a frame is its turn: nothing else is in flight while it is.
//! After sending, we wait for the program's kernel run counter to move
//! (BPF_ENABLE_STATS `run_cnt`, bumped by `bpf_prog_run` after the program
//! returns, include/linux/filter.h `__bpf_prog_run`), then up to `settle`
//! for the frame to show up at the interface's stack or at the peer.
//! Packet taps run after XDP in `__netif_receive_skb_core` (generic XDP is
//! called before the `ptype_all` walk; native XDP runs in the driver before
//! the skb exists), so a packet socket on the interface sees only frames the
//! program passed. Frames that arrive after their window are found when the
//! next frame's turn begins and given back to the frame before it.

use std::os::fd::{OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::attach::Interface;
use super::probe::{Run, VerdictProbe};
use super::sys::{self, Errno};
use super::LiveError;

/// Where a frame was seen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum Seen {
    /// Received by the interface's stack: the program passed it.
    Stack {
        #[serde(with = "crate::util::hex_bytes")]
        frame: Vec<u8>,
    },
    /// Received by the peer: the program sent it back out (XDP_TX, or a
    /// redirect to the interface itself).
    Peer {
        #[serde(with = "crate::util::hex_bytes")]
        frame: Vec<u8>,
    },
    /// Neither: dropped, aborted, or redirected to a device not watched.
    Nowhere,
    /// The program did not run on it within the time limit.
    NotRun { reason: String },
}

impl Seen {
    pub fn label(&self) -> &'static str {
        match self {
            Seen::Stack { .. } => "PASS (stack)",
            Seen::Peer { .. } => "TX (peer)",
            Seen::Nowhere => "DROP/ABORTED/REDIRECT (nowhere)",
            Seen::NotRun { .. } => "NOT_RUN",
        }
    }
}

/// How verdicts were observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The action each run returned, from an fexit probe ([`super::probe`]).
    Fexit,
    /// Where each frame went (stack, peer, nowhere).
    Tagging,
}

/// What one sent frame led to.
#[derive(Debug)]
pub struct Outcome {
    pub seen: Seen,
    /// The program's run on it, when a probe watched it.
    pub run: Option<Run>,
    /// Frames seen in its window that were not the first.
    pub extra: Vec<Seen>,
}

/// How the end of the program's run is known.
enum Fence {
    /// The fexit probe's records, which also carry the action.
    Probe(VerdictProbe),
    /// The kernel's run counter (non-offloaded modes).
    RunCount { _stats: OwnedFd, prog: RawFd },
    /// Offloaded programs run on the NIC and are not counted: only time.
    Settle,
}

pub struct Observer {
    send: OwnedFd,
    send_ifindex: u32,
    at_iface: OwnedFd,
    at_peer: OwnedFd,
    fence: Fence,
    settle: Duration,
    run_timeout: Duration,
    buf: Vec<u8>,
    /// Runs of the program beyond one per frame we sent: other traffic.
    pub foreign_runs: u64,
}

impl Observer {
    /// Opens the sockets (each in its interface's namespace). `prog` is the
    /// attached program's fd, for its run counter; `None` for offload.
    pub fn open(
        iface: &Interface,
        peer: &Interface,
        prog: Option<RawFd>,
        probe: Option<VerdictProbe>,
        settle: Duration,
    ) -> Result<Observer, LiveError> {
        let sock = |ifc: &Interface, receive: bool, what: &str| -> Result<OwnedFd, LiveError> {
            let io = |errno| LiveError::Io {
                step: format!("opening a packet socket to {what}"),
                iface: ifc.describe(),
                errno,
            };
            sys::in_netns(ifc.endpoint.netns.as_deref(), || {
                sys::packet_socket(ifc.ifindex, receive)
            })
            .map_err(io)?
            .map_err(io)
        };
        let send = sock(peer, false, "send from")?;
        let at_iface = sock(iface, true, "watch")?;
        let at_peer = sock(peer, true, "watch")?;
        let fence = match (probe, prog) {
            (Some(mut probe), _) => {
                probe
                    .sync()
                    .map_err(|e| LiveError::Other(format!("reading the fexit probe: {e}")))?;
                Fence::Probe(probe)
            }
            (None, Some(fd)) => {
                let stats = sys::enable_run_stats().map_err(|errno| LiveError::Io {
                    step: "enabling BPF run statistics (BPF_ENABLE_STATS)".into(),
                    iface: iface.describe(),
                    errno,
                })?;
                Fence::RunCount { _stats: stats, prog: fd }
            }
            (None, None) => Fence::Settle,
        };
        Ok(Observer {
            send,
            send_ifindex: peer.ifindex,
            at_iface,
            at_peer,
            fence,
            settle,
            run_timeout: Duration::from_secs(1),
            buf: vec![0; 64 << 10],
            foreign_runs: 0,
        })
    }

    pub fn method(&self) -> Method {
        match self.fence {
            Fence::Probe(_) => Method::Fexit,
            Fence::RunCount { .. } | Fence::Settle => Method::Tagging,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self.fence {
            Fence::Probe(_) => "exact verdicts from an fexit probe on the program (the action each run returned, and the frame's length and first bytes when it returned); frames still tagged by their turn (one in flight), PASS also seen by a packet socket on the interface, TX on the peer",
            Fence::RunCount { .. } => "observed by packet tagging (one frame in flight; end of run from the kernel's run_cnt; PASS seen by a packet socket on the interface, TX on the peer)",
            Fence::Settle => "observed by packet tagging (one frame in flight; offloaded runs are not counted, so each frame gets the full settle time; PASS seen by a packet socket on the interface, TX on the peer)",
        }
    }

    fn run_cnt(&self) -> Result<u64, Errno> {
        match &self.fence {
            Fence::RunCount { prog, .. } => sys::prog_stats(*prog).map(|s| s.run_cnt),
            Fence::Settle | Fence::Probe(_) => Ok(0),
        }
    }

    /// Frames queued at either socket now: (at the stack, at the peer).
    pub fn drain(&mut self) -> Result<Vec<Seen>, Errno> {
        let mut out = Vec::new();
        while let Some(f) = sys::packet_recv(&self.at_iface, &mut self.buf)? {
            out.push(Seen::Stack { frame: f });
        }
        while let Some(f) = sys::packet_recv(&self.at_peer, &mut self.buf)? {
            out.push(Seen::Peer { frame: f });
        }
        Ok(out)
    }

    /// Sends `frame` and reports where it went. Extra frames seen in its
    /// window come back in the second element.
    pub fn send(&mut self, frame: &[u8]) -> Result<Outcome, Errno> {
        let before = self.run_cnt()?;
        sys::packet_send(&self.send, self.send_ifindex, frame)?;
        let mut run = None;
        if let Fence::Probe(probe) = &mut self.fence {
            // A probe that cannot be read is a backend failure, not a verdict.
            let (mut runs, lost) =
                probe.wait_runs(self.run_timeout).map_err(|_| Errno(libc::EIO))?;
            if runs.is_empty() {
                return Ok(Outcome {
                    seen: Seen::NotRun {
                        reason: format!(
                            "the program did not run within {:?} of sending",
                            self.run_timeout
                        ),
                    },
                    run: None,
                    extra: self.drain()?,
                });
            }
            self.foreign_runs += runs.len() as u64 - 1 + lost;
            run = Some(runs.remove(0));
        }
        if let Fence::RunCount { .. } = self.fence {
            let start = Instant::now();
            loop {
                let now = self.run_cnt()?;
                if now > before {
                    self.foreign_runs += now - before - 1;
                    break;
                }
                if start.elapsed() > self.run_timeout {
                    return Ok(Outcome {
                        seen: Seen::NotRun {
                            reason: format!(
                                "the program did not run within {:?} of sending",
                                self.run_timeout
                            ),
                        },
                        run: None,
                        extra: self.drain()?,
                    });
                }
                std::thread::yield_now();
            }
        }
        let deadline = Instant::now() + self.settle;
        loop {
            let mut seen = self.drain()?;
            if !seen.is_empty() {
                let first = seen.remove(0);
                return Ok(Outcome { seen: first, run, extra: seen });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Outcome { seen: Seen::Nowhere, run, extra: Vec::new() });
            }
            sys::poll_readable(&[&self.at_iface, &self.at_peer], left)?;
        }
    }
}
