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
//!
//! Other traffic ("foreign" frames, [`super::foreign`]): the peer's and the
//! interface's own stacks send frames too (IPv6 router and neighbour
//! solicitations, MLD reports...). Two more packet sockets watch what each
//! end *transmits*: packet taps see a transmitted frame in
//! `dev_queue_xmit_nit` (net/core/dev.c) before the driver hands it over, so
//! by the time a frame can have run the program or reached the other end,
//! its copy is already queued on the watching socket. Every frame leaving
//! the peer enters the interface and runs the program once: the ones the
//! tool sent are recognised by their bytes, the rest are foreign, and the
//! run counter must reach (our frames + foreign frames) before a frame's
//! run is known to be over. Frames leaving the interface's own stack arrive
//! at the peer and are told apart from XDP_TX by their bytes (XDP_TX frames
//! bypass the packet taps: `veth_xdp_xmit` in native mode and
//! `generic_xdp_tx` in skb mode call the driver directly). The engine
//! predicts each foreign frame's fate too, so that a foreign frame the
//! program passed or sent back, changed or not, is recognised and not taken
//! for ours.

use std::collections::VecDeque;
use std::os::fd::{OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::attach::Interface;
use super::foreign::ForeignSummary;
use super::probe::{Run, VerdictProbe};
use super::sys::{self, Errno, Tap};
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

/// Where a frame ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Stack,
    Peer,
    Nowhere,
}

/// What the engine says becomes of a frame: where it goes, and its bytes
/// when it goes somewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub place: Place,
    pub bytes: Vec<u8>,
}

impl Expect {
    fn matches(&self, place: Place, bytes: &[u8]) -> bool {
        self.place == place && self.bytes == bytes
    }
}

/// The engine's prediction for a frame, given its bytes (used for foreign
/// frames, which also advance the engine's maps the way they advance the
/// kernel's).
pub type Predict<'a> = dyn FnMut(&[u8]) -> Option<Expect> + 'a;

/// How the end of the program's run is known.
enum Fence {
    /// The fexit probe's records, which also carry the action.
    /// (Boxed: the probe is large and the other fences are a word.)
    Probe(Box<VerdictProbe>),
    /// The kernel's run counter (non-offloaded modes).
    RunCount { _stats: OwnedFd, prog: RawFd },
    /// Offloaded programs run on the NIC and are not counted: only time.
    Settle,
}

/// A frame that entered the interface, in the order the peer sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entered {
    Ours,
    Foreign,
}

/// A foreign frame that ran the program and has not been seen since.
struct Unresolved {
    raw: Vec<u8>,
    expect: Option<Expect>,
    /// Our frame count when it was seen entering.
    turn: u64,
}

/// How many turns a foreign frame's outcome is waited for.
const FOREIGN_PATIENCE: u64 = 64;

pub struct Observer {
    send: OwnedFd,
    send_ifindex: u32,
    at_iface: OwnedFd,
    at_peer: OwnedFd,
    /// Frames the peer transmits: ours and foreign ones, all into the interface.
    tx_peer: OwnedFd,
    /// Frames the interface's own stack transmits, toward the peer.
    tx_iface: OwnedFd,
    fence: Fence,
    settle: Duration,
    run_timeout: Duration,
    buf: Vec<u8>,
    /// Program runs counted before the first frame.
    run_base: u64,
    /// Frames seen entering the interface (ours and foreign): the runs due.
    runs_due: u64,
    /// Our frames sent whose copy has not yet been seen leaving the peer.
    unconfirmed: VecDeque<Vec<u8>>,
    /// Frames entering, in order, not yet given a probe record.
    entered: VecDeque<Entered>,
    /// Probe records not yet given to a frame (`None`: overwritten before
    /// it was read).
    probe_runs: VecDeque<Option<Run>>,
    /// Frames the interface's stack sent that the peer has not yet received.
    from_iface: VecDeque<Vec<u8>>,
    unresolved: VecDeque<Unresolved>,
    /// Our frames sent.
    turn: u64,
    pub foreign: ForeignSummary,
    /// Whether the program is attached yet: frames entering before do not
    /// run it and are not replayed through the engine.
    attached: bool,
}

/// What one sent frame led to.
#[derive(Debug)]
pub struct Outcome {
    pub seen: Seen,
    /// The program's run on it, when a probe watched it.
    pub run: Option<Run>,
    /// Frames seen in its window that were not the first and that no
    /// foreign frame explains.
    pub extra: Vec<Seen>,
}

impl Observer {
    /// Opens the sockets (each in its interface's namespace). `prog` is the
    /// attached program's fd, for its run counter; `None` for offload.
    pub fn open(
        iface: &Interface,
        peer: &Interface,
        prog: Option<RawFd>,
        probe: Option<VerdictProbe>,
        stats: Option<OwnedFd>,
        settle: Duration,
    ) -> Result<Observer, LiveError> {
        let sock = |ifc: &Interface, tap: Tap, what: &str| -> Result<OwnedFd, LiveError> {
            let io = |errno| LiveError::Io {
                step: format!("opening a packet socket to {what}"),
                iface: ifc.describe(),
                errno,
            };
            sys::in_netns(ifc.endpoint.netns.as_deref(), || sys::packet_socket(ifc.ifindex, tap))
                .map_err(io)?
                .map_err(io)
        };
        // The transmitting ends are watched first, so that no frame can
        // arrive at a watched end without its copy at the sending end.
        let tx_peer = sock(peer, Tap::Both, "watch what it sends")?;
        let tx_iface = sock(iface, Tap::Both, "watch what it sends")?;
        let send = sock(peer, Tap::Send, "send from")?;
        let at_iface = sock(iface, Tap::Incoming, "watch")?;
        let at_peer = sock(peer, Tap::Incoming, "watch")?;
        let fence = match (probe, prog) {
            (Some(probe), _) => Fence::Probe(Box::new(probe)),
            (None, Some(fd)) => {
                let stats = match stats {
                    Some(s) => s,
                    None => sys::enable_run_stats().map_err(|errno| LiveError::Io {
                        step: "enabling BPF run statistics (BPF_ENABLE_STATS)".into(),
                        iface: iface.describe(),
                        errno,
                    })?,
                };
                Fence::RunCount { _stats: stats, prog: fd }
            }
            (None, None) => Fence::Settle,
        };
        let mut o = Observer {
            send,
            send_ifindex: peer.ifindex,
            at_iface,
            at_peer,
            tx_peer,
            tx_iface,
            fence,
            settle,
            run_timeout: Duration::from_secs(1),
            buf: vec![0; 64 << 10],
            run_base: 0,
            runs_due: 0,
            unconfirmed: VecDeque::new(),
            entered: VecDeque::new(),
            probe_runs: VecDeque::new(),
            from_iface: VecDeque::new(),
            unresolved: VecDeque::new(),
            turn: 0,
            foreign: ForeignSummary::default(),
            attached: false,
        };
        o.run_base = o.runs_total().map_err(|errno| LiveError::Io {
            step: "reading the program's run count".into(),
            iface: iface.describe(),
            errno,
        })?;
        o.probe_runs.clear();
        Ok(o)
    }

    pub fn method(&self) -> Method {
        match self.fence {
            Fence::Probe(_) => Method::Fexit,
            Fence::RunCount { .. } | Fence::Settle => Method::Tagging,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self.fence {
            Fence::Probe(_) => "exact verdicts from an fexit probe on the program (the action each run returned, and the frame's length and first bytes when it returned); frames still tagged by their turn (one in flight), PASS also seen by a packet socket on the interface, TX on the peer; frames the tool did not send are recognised as they leave either end",
            Fence::RunCount { .. } => "observed by packet tagging (one frame in flight; end of run from the kernel's run_cnt, counting the runs of frames the tool did not send, which are recognised as they leave either end; PASS seen by a packet socket on the interface, TX on the peer)",
            Fence::Settle => "observed by packet tagging (one frame in flight; offloaded runs are not counted, so each frame gets the full settle time; frames the tool did not send are recognised as they leave either end; PASS seen by a packet socket on the interface, TX on the peer)",
        }
    }

    /// Runs of the program so far (all of them, ours and foreign), as the
    /// fence counts them; 0 without a counter.
    fn runs_total(&mut self) -> Result<u64, Errno> {
        match &mut self.fence {
            Fence::RunCount { prog, .. } => sys::prog_stats(*prog).map(|s| s.run_cnt),
            Fence::Probe(probe) => {
                // A probe that cannot be read is a backend failure.
                let runs = probe.poll_runs().map_err(|_| Errno(libc::EIO))?;
                self.probe_runs.extend(runs);
                Ok(probe.seen_total())
            }
            Fence::Settle => Ok(0),
        }
    }

    /// Reads what both ends transmitted: our frames are confirmed, foreign
    /// frames entering the interface are recorded (and predicted), frames
    /// the interface's stack sent are remembered until the peer gets them.
    fn pump_tx(&mut self, predict: &mut Predict<'_>) -> Result<(), Errno> {
        while let Some((frame, dir)) = sys::packet_recv(&self.tx_peer, &mut self.buf)? {
            if dir != sys::PACKET_OUTGOING {
                continue;
            }
            if !self.attached {
                self.foreign.before_attach += 1;
                continue;
            }
            if let Some(i) = self.unconfirmed.iter().position(|f| *f == frame) {
                self.unconfirmed.remove(i);
                self.entered.push_back(Entered::Ours);
            } else {
                self.foreign.record_in(&frame);
                let expect = predict(&frame);
                self.unresolved.push_back(Unresolved { raw: frame, expect, turn: self.turn });
                self.entered.push_back(Entered::Foreign);
            }
            self.runs_due += 1;
        }
        while let Some((frame, dir)) = sys::packet_recv(&self.tx_iface, &mut self.buf)? {
            if dir != sys::PACKET_OUTGOING {
                continue;
            }
            self.foreign.record_out(&frame);
            self.from_iface.push_back(frame);
            if self.from_iface.len() > 1024 {
                self.from_iface.pop_front();
            }
        }
        Ok(())
    }

    /// To be called just before the program is attached: what entered the
    /// interface until now did not run it. (Opening the sockets before
    /// attaching means no frame that ran the program goes unseen.)
    pub fn attaching(&mut self) -> Result<(), Errno> {
        self.pump_tx(&mut |_| None)?;
        let _ = self.take_seen(None, &mut |_| None)?;
        self.attached = true;
        Ok(())
    }

    /// Foreign frames whose outcome is given up on.
    fn expire(&mut self, all: bool) {
        while let Some(u) = self.unresolved.front() {
            if !all && self.turn.saturating_sub(u.turn) < FOREIGN_PATIENCE {
                break;
            }
            let u = self.unresolved.pop_front().expect("front");
            let predicted = u.expect.as_ref().is_some_and(|e| e.place == Place::Nowhere);
            self.foreign.outcome("not seen (dropped, aborted or redirected)", predicted);
        }
    }

    /// Whether a foreign frame entered during the current turn and may still
    /// show up somewhere.
    fn foreign_pending_now(&self) -> bool {
        self.unresolved.iter().any(|u| {
            u.turn == self.turn && u.expect.as_ref().is_none_or(|e| e.place != Place::Nowhere)
        })
    }

    /// Frames queued at either end now, with foreign ones taken out; each
    /// comes with whether it is what `ours` expects.
    fn take_seen(
        &mut self,
        ours: Option<&Expect>,
        predict: &mut Predict<'_>,
    ) -> Result<Vec<(Seen, bool)>, Errno> {
        let mut out = Vec::new();
        let mut arrived = Vec::new();
        // A stack's multicast to a group it joined itself comes back to it
        // as PACKET_LOOPBACK (net/core/dev.c dev_loopback_xmit): it never
        // crossed the wire.
        while let Some((f, kind)) = sys::packet_recv(&self.at_iface, &mut self.buf)? {
            if kind == sys::PACKET_LOOPBACK {
                self.foreign.looped_back += 1;
            } else {
                arrived.push((Place::Stack, f));
            }
        }
        while let Some((f, kind)) = sys::packet_recv(&self.at_peer, &mut self.buf)? {
            if kind == sys::PACKET_LOOPBACK {
                self.foreign.looped_back += 1;
            } else {
                arrived.push((Place::Peer, f));
            }
        }
        // Read the transmitting ends after the receiving ones: a frame's
        // copy is queued there before it can arrive anywhere, so every
        // frame just read is accounted for.
        self.pump_tx(predict)?;
        for (place, frame) in arrived {
            if place == Place::Peer {
                if let Some(i) = self.from_iface.iter().position(|f| *f == frame) {
                    self.from_iface.remove(i);
                    continue;
                }
            }
            let is_ours = ours.is_some_and(|e| e.matches(place, &frame));
            if !is_ours {
                let by_prediction = self
                    .unresolved
                    .iter()
                    .position(|u| u.expect.as_ref().is_some_and(|e| e.matches(place, &frame)));
                let by_bytes = || self.unresolved.iter().position(|u| u.raw == frame);
                if let Some(i) = by_prediction.or_else(by_bytes) {
                    self.unresolved.remove(i);
                    let label = match place {
                        Place::Stack => "PASS (stack)",
                        _ => "TX (peer)",
                    };
                    self.foreign.outcome(label, by_prediction.is_some());
                    continue;
                }
            }
            let seen = match place {
                Place::Stack => Seen::Stack { frame },
                _ => Seen::Peer { frame },
            };
            out.push((seen, is_ours));
        }
        Ok(out)
    }

    /// Frames queued now that no foreign frame explains (before a frame's
    /// turn: late arrivals of the frame before).
    pub fn drain(&mut self, predict: &mut Predict<'_>) -> Result<Vec<Seen>, Errno> {
        Ok(self.take_seen(None, predict)?.into_iter().map(|(s, _)| s).collect())
    }

    /// The end of the run: the last foreign frames are given up on.
    pub fn finish(&mut self, predict: &mut Predict<'_>) -> Result<Vec<Seen>, Errno> {
        let late = self.drain(predict)?;
        // Runs counted beyond the frames seen entering.
        let total = self.runs_total()?;
        if !matches!(self.fence, Fence::Settle) {
            let ran = total.saturating_sub(self.run_base);
            self.foreign.unexplained_runs += ran.saturating_sub(self.runs_due);
        }
        self.expire(true);
        Ok(late)
    }

    /// Sends `frame`, which the engine says ends as `ours`, and reports
    /// where it went.
    pub fn send(
        &mut self,
        frame: &[u8],
        ours: Option<&Expect>,
        predict: &mut Predict<'_>,
    ) -> Result<Outcome, Errno> {
        self.turn += 1;
        self.expire(false);
        let ran_before = self.runs_total()?.saturating_sub(self.run_base);
        self.unconfirmed.push_back(frame.to_vec());
        sys::packet_send(&self.send, self.send_ifindex, frame)?;
        let not_run = |why: String| Seen::NotRun { reason: why };
        // Fence: our frame seen leaving the peer, and every frame that
        // entered the interface so far has run.
        let start = Instant::now();
        let mut run = None;
        loop {
            let total = self.runs_total()?;
            self.pump_tx(predict)?;
            let confirmed = !self.unconfirmed.iter().any(|f| f == frame);
            let ran = total.saturating_sub(self.run_base);
            let counted = matches!(self.fence, Fence::Settle) || ran >= self.runs_due;
            if confirmed && counted {
                if ran > self.runs_due {
                    // Runs no frame seen entering explains: move the base so
                    // they are not taken for later frames' runs.
                    self.foreign.unexplained_runs += ran - self.runs_due;
                    self.run_base += ran - self.runs_due;
                }
                break;
            }
            if start.elapsed() > self.run_timeout {
                if !confirmed {
                    self.unconfirmed.retain(|f| f != frame);
                    return Ok(Outcome {
                        seen: not_run(format!(
                            "the frame was not seen leaving the peer within {:?} of sending",
                            self.run_timeout
                        )),
                        run: None,
                        extra: self.drain(predict)?,
                    });
                }
                // Frames entered that did not all run. Ours was sent last;
                // if nothing ran since, it is ours that did not run,
                // otherwise the shortfall is foreign frames the interface
                // dropped before XDP (a full ring, say).
                let missing = self.runs_due - ran;
                self.runs_due = ran;
                if ran == ran_before {
                    self.entered.clear();
                    return Ok(Outcome {
                        seen: not_run(format!(
                            "the program did not run within {:?} of sending",
                            self.run_timeout
                        )),
                        run: None,
                        extra: self.drain(predict)?,
                    });
                }
                self.foreign.not_run += missing;
                break;
            }
            std::thread::yield_now();
        }
        if let Fence::Probe(_) = self.fence {
            // Records come in the order frames entered: ours is at its place.
            while let Some(e) = self.entered.pop_front() {
                let r = self.probe_runs.pop_front().flatten();
                if e == Entered::Ours {
                    run = r;
                    break;
                }
            }
        } else {
            self.entered.clear();
        }
        let deadline = Instant::now() + self.settle;
        let mut mine = None;
        let mut others = Vec::new();
        loop {
            for (seen, is_ours) in self.take_seen(ours, predict)? {
                if is_ours && mine.is_none() {
                    mine = Some(seen);
                } else {
                    others.push(seen);
                }
            }
            if mine.is_some() {
                break;
            }
            // Something arrived that no foreign frame of this turn can
            // explain: it can only be ours (not as the engine said).
            if !others.is_empty() && !self.foreign_pending_now() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sys::poll_readable(&[&self.at_iface, &self.at_peer, &self.tx_iface], left)?;
        }
        let seen = match mine {
            Some(s) => s,
            None if !others.is_empty() => others.remove(0),
            None => Seen::Nowhere,
        };
        // Frames beyond ours while foreign frames of this turn are still
        // unseen are theirs, changed in a way the engine did not predict.
        if !others.is_empty() && self.foreign_pending_now() {
            let n = others.len();
            for _ in 0..n {
                if let Some(i) = self.unresolved.iter().position(|u| u.turn == self.turn) {
                    self.unresolved.remove(i);
                    self.foreign.outcome("seen, not as the engine predicted", false);
                }
            }
            others.clear();
        }
        Ok(Outcome { seen, run, extra: others })
    }
}
