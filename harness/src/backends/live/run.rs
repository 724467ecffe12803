//! A live run: attach, send every frame of the captures, compare where each
//! went with what the engine says the program does, detach.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::attach::{Attachment, Interface};
use super::foreign::ForeignSummary;
use super::observe::{Expect, Method, Observer, Place, Seen};
use super::probe::{Run, VerdictProbe};
use super::{offload, require_caps, sys, Endpoint, LiveError, XdpMode};
use crate::backends::engine::run_packet;
use crate::backends::host::{HostBackend, HostSession, SessionOutcome};
use crate::backends::{PacketResult, PacketSource};
use crate::capture::{flow, CaptureReader};
use crate::compare::carried::CarriedNondeterminism;
use crate::compare::{Class, Tally};
use crate::engine::{Engine, EngineConfig, RedirectTarget};
use crate::isa::{self, Insn};
use crate::mapfile::{self, MapInit};
use crate::program::{Object, Program};
use crate::verdict::{Verdict, XdpAction};

#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Where the program is attached.
    pub iface: Endpoint,
    /// Where frames are sent from and XDP_TX frames arrive.
    pub peer: Endpoint,
    pub mode: XdpMode,
    /// Swap out a program already attached (restored afterwards).
    pub replace: bool,
    pub maps: Vec<MapInit>,
    /// How long to wait for a frame after the program ran on it.
    pub settle: Duration,
    /// Details are kept for at most this many mismatches.
    pub max_reported: usize,
    /// Send at most this many frames of each capture.
    pub max_packets: Option<u64>,
}

/// A frame seen that neither a frame sent nor a foreign frame explains.
#[derive(Clone, Debug, Serialize)]
pub struct Unattributed {
    /// The capture index of the frame sent in whose turn it was seen.
    pub turn_of: Option<u64>,
    pub seen: Seen,
    pub protocol: String,
}

/// A frame that was not sent.
#[derive(Clone, Debug, Serialize)]
pub struct NotSent {
    pub capture: String,
    pub index: u64,
    pub len: usize,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LiveMismatch {
    pub capture: String,
    pub index: u64,
    pub flow: Option<String>,
    pub engine: PacketResult,
    pub live: Seen,
    /// What the fexit probe saw the program return (fexit runs only).
    pub fexit: Option<Run>,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    pub schema: &'static str,
    pub program: String,
    pub iface: String,
    pub peer: String,
    pub mode: XdpMode,
    /// `ethtool -i` of the interface: driver, version, firmware, bus.
    pub driver: [String; 4],
    pub kernel: String,
    pub mtu: u32,
    /// How verdicts were observed: `fexit` (the action of every run, exact)
    /// or `tagging` (where each frame went: DROP, ABORTED and redirects
    /// elsewhere look the same).
    pub observation_method: Method,
    /// Why fexit was not used, when it was not.
    pub observation_fallback: Option<String>,
    /// How verdicts were observed, in words.
    pub observation: String,
    pub notes: Vec<String>,
    /// Frames read from the captures.
    pub packets: u64,
    pub sent: u64,
    pub not_sent: u64,
    /// The first few frames not sent, with why.
    pub not_sent_examples: Vec<NotSent>,
    /// `agreed`, `nondeterministic` and `mismatch_count`.
    #[serde(flatten)]
    pub tally: Tally,
    pub mismatches: Vec<LiveMismatch>,
    /// Sent frames by where they were seen.
    pub counts: BTreeMap<String, u64>,
    /// Sent frames by the action the fexit probe saw (fexit runs only).
    pub actions: BTreeMap<String, u64>,
    /// Frames that showed up after their settle time (given to their frame).
    pub late_arrivals: u64,
    /// Frames seen that cannot be tied to a sent frame.
    pub unattributed: u64,
    /// The first few of them: where, protocol and bytes.
    pub unattributed_examples: Vec<Unattributed>,
    /// Program runs on frames the tool did not send (foreign frames).
    pub foreign_runs: u64,
    /// Frames the tool did not send, by direction and protocol, and what
    /// became of them.
    pub foreign: ForeignSummary,
    /// Why the map comparison is not exact, when it is not.
    pub maps_inexact: Option<String>,
    /// Map differences found while `maps_inexact` (not called mismatches).
    pub map_differences_inexact: Vec<String>,
    pub elapsed_s: f64,
    /// Sent frames per second, one in flight at a time (latency-bound).
    pub packets_per_s: f64,
    pub map_mismatches: Vec<String>,
    pub map_nondeterministic: Vec<String>,
    pub capture_errors: Vec<String>,
}

impl LiveReport {
    /// The engine and the interface agreed on every frame sent, and nothing
    /// seen was left unexplained. Foreign frames are not ours to judge, but
    /// every run of the program must be explained by a frame seen entering.
    pub fn agrees(&self) -> bool {
        self.tally.agrees(&self.map_mismatches)
            && self.unattributed == 0
            && self.foreign.unexplained_runs == 0
    }
}

fn expected_place(r: &PacketResult, iface_ifindex: u32) -> Option<Place> {
    let Verdict::Action { action } = &r.verdict else { return None };
    Some(match action {
        XdpAction::Pass => Place::Stack,
        XdpAction::Tx => Place::Peer,
        XdpAction::Drop | XdpAction::Aborted | XdpAction::Invalid(_) => Place::Nowhere,
        XdpAction::Redirect => {
            let to_self = match &r.redirect {
                Some(RedirectTarget::Ifindex { ifindex }) => *ifindex == iface_ifindex,
                Some(RedirectTarget::Map { value, .. }) => value
                    .get(..4)
                    .is_some_and(|v| u32::from_le_bytes(v.try_into().expect("4")) == iface_ifindex),
                // The frame came in on this interface, so excluding the
                // ingress excludes it.
                Some(RedirectTarget::Broadcast { ifindexes, exclude_ingress, .. }) => {
                    !exclude_ingress && ifindexes.contains(&iface_ifindex)
                }
                None => false,
            };
            if to_self {
                Place::Peer
            } else {
                Place::Nowhere
            }
        }
    })
}

/// Where the engine says the frame ends and with which bytes (past any
/// metadata, which stays on the host).
fn expect(r: &PacketResult, meta_len: usize, iface_ifindex: u32) -> Option<Expect> {
    let place = expected_place(r, iface_ifindex)?;
    let bytes = match place {
        Place::Nowhere => Vec::new(),
        _ => r.output.get(meta_len..).unwrap_or(&[]).to_vec(),
    };
    Some(Expect { place, bytes })
}

/// The engine's prediction for frames the tool did not send, run as they
/// are seen entering the interface (which also updates the engine's maps,
/// as the kernel's run updates its own).
/// Their runs go through `carried` too: a foreign frame's random or
/// time-dependent write to a map makes later reads of it nondeterministic.
fn predictor<'a>(
    engine: &'a mut Engine,
    carried: &'a mut CarriedNondeterminism,
    ts_ns: u64,
    iface_ifindex: u32,
) -> impl FnMut(&[u8]) -> Option<Expect> + 'a {
    move |frame: &[u8]| {
        let src = PacketSource {
            data: frame.to_vec(),
            ts_ns,
            ingress_ifindex: iface_ifindex,
            rx_queue_index: 0,
        };
        let r = run_packet(engine, &src, carried);
        carried.end_run();
        expect(&r, engine.last_meta_len(), iface_ifindex)
    }
}

/// `None` when the engine's result and what was seen agree. With an fexit
/// record the action must be the same, and so must the frame the program
/// returned (its length and first bytes; `data` is past any metadata, as
/// the engine's output after `meta_len` is).
fn judge(
    engine: &PacketResult,
    meta_len: usize,
    seen: &Seen,
    run: Option<&Run>,
    iface_ifindex: u32,
) -> Option<String> {
    let want = match expected_place(engine, iface_ifindex) {
        Some(p) => p,
        None => {
            return Some(format!(
                "the engine did not return an action ({}); live: {}",
                engine.verdict,
                seen.label()
            ))
        }
    };
    if let (Some(run), Verdict::Action { action }) = (run, &engine.verdict) {
        let live = XdpAction::from_retval(run.action);
        if live != *action {
            return Some(format!("engine {action}, live {live} (fexit)"));
        }
        let ours = engine.output.get(meta_len..).unwrap_or(&[]);
        let head = &ours[..ours.len().min(super::probe::HEAD)];
        if run.len as usize != ours.len() || run.head != head {
            return Some(format!(
                "the frame when the program returned differs (engine {} bytes, live {} bytes)\n{}",
                ours.len(),
                run.len,
                crate::compare::hexdiff::render("vm", head, "live", &run.head)
            ));
        }
    }
    let (got, frame) = match seen {
        Seen::Stack { frame } => (Place::Stack, Some(frame)),
        Seen::Peer { frame } => (Place::Peer, Some(frame)),
        Seen::Nowhere => (Place::Nowhere, None),
        Seen::NotRun { reason } => {
            return Some(format!("engine {}; live: not run ({reason})", engine.verdict))
        }
    };
    if want != got {
        return Some(format!(
            "engine {} (frame expected {want:?}), live: {}",
            engine.verdict,
            seen.label()
        ));
    }
    let frame = frame?;
    let ours = engine.output.get(meta_len..).unwrap_or(&[]);
    if ours != frame.as_slice() {
        return Some(format!(
            "{}\n{}",
            "output bytes differ",
            crate::compare::hexdiff::render("vm", ours, "live", frame)
        ));
    }
    None
}

/// Counts frames nobody explains, keeping the first few.
fn unattributed(report: &mut LiveReport, turn_of: Option<u64>, frames: Vec<Seen>) {
    for seen in frames {
        report.unattributed += 1;
        if report.unattributed_examples.len() < 10 {
            let protocol = match &seen {
                Seen::Stack { frame } | Seen::Peer { frame } => super::foreign::protocol(frame),
                _ => String::new(),
            };
            report.unattributed_examples.push(Unattributed { turn_of, seen, protocol });
        }
    }
}

/// Why `frame` cannot be sent through an interface with `mtu`, if it can't.
/// AF_PACKET refuses frames over MTU + header (+4 for one VLAN tag), see
/// net/packet/af_packet.c packet_snd / packet_extra_vlan_len_allowed; a
/// frame shorter than an Ethernet header would be padded by the kernel for
/// CAP_SYS_RAWIO callers (dev_validate_header), changing it.
fn unsendable(frame: &[u8], mtu: u32) -> Option<String> {
    if frame.len() < 14 {
        return Some(format!(
            "{} bytes is shorter than an Ethernet header (14 bytes)",
            frame.len()
        ));
    }
    let vlan = matches!(u16::from_be_bytes([frame[12], frame[13]]), 0x8100 | 0x88a8);
    let limit = mtu as usize + 14 + if vlan { 4 } else { 0 };
    if frame.len() > limit {
        return Some(format!("{} bytes is larger than the interface MTU {mtu} allows ({limit} bytes with the Ethernet header{})", frame.len(), if vlan { " and a VLAN tag" } else { "" }));
    }
    None
}

struct Pending {
    capture: String,
    index: u64,
    frame: Vec<u8>,
    engine: PacketResult,
    meta_len: usize,
    nondet: bool,
    seen: Seen,
    run: Option<Run>,
}

/// What a run has loaded: a host session (skb/drv) or device-bound objects (hw).
enum Loaded {
    Host(HostSession),
    Offloaded(offload::Offloaded),
}

impl Loaded {
    fn prog_fd(&self) -> std::os::fd::RawFd {
        match self {
            Loaded::Host(s) => s.program().fd().as_raw_fd(),
            Loaded::Offloaded(o) => o.prog.as_raw_fd(),
        }
    }
}

fn pass_program() -> Result<std::os::fd::OwnedFd, sys::Errno> {
    // r0 = XDP_PASS; exit
    let insns = [
        Insn { code: 0xb7, dst: 0, src: 0, off: 0, imm: 2 },
        Insn { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ];
    sys::prog_load_xdp(&isa::encode_le(&insns), "GPL", "xq_peer_pass", 0, &mut [])
}

/// Runs the captures through `program` attached to `opts.iface`.
pub fn run(
    obj: &Object,
    program: &Program,
    captures: &[PathBuf],
    opts: &LiveOptions,
) -> Result<LiveReport, LiveError> {
    require_caps(opts.iface.netns.is_some() || opts.peer.netns.is_some())?;
    // What runs killed with SIGKILL left attached, or their namespaces.
    let stale = super::leftovers::clean_stale(super::attach::detach_recorded);
    let host = HostBackend::open().map_err(|e| LiveError::Host(e.to_string()))?;
    let kernel = host.kernel_release().to_string();
    let iface = Interface::resolve(&opts.iface)?;
    let peer = Interface::resolve(&opts.peer)?;
    if iface.ifindex == peer.ifindex && iface.endpoint.netns == peer.endpoint.netns {
        return Err(LiveError::Other(format!(
            "the peer must be another interface than {} (frames are sent from the peer into it)",
            iface.describe()
        )));
    }
    let mut notes: Vec<String> =
        stale.into_iter().map(|s| format!("cleanup of an earlier run: {s}")).collect();
    // A program built without an ELF gets the BTF clang would have given
    // it, so that the fexit probe can attach to it.
    let synthesized;
    let obj = match (&obj.btf, crate::backends::host::btf::synthesize(program)) {
        (crate::program::ObjectBtf::None, Some(blob)) if opts.mode != XdpMode::Hw => {
            synthesized = Object {
                btf: crate::program::ObjectBtf::Present(std::sync::Arc::new(blob)),
                ..obj.clone()
            };
            &synthesized
        }
        _ => obj,
    };
    let loaded = match opts.mode {
        XdpMode::Hw => Loaded::Offloaded(
            offload::load(obj, program, &iface, &kernel).map_err(LiveError::Offload)?,
        ),
        XdpMode::Skb | XdpMode::Drv => {
            match host.load(obj, program).map_err(|e| LiveError::Host(e.to_string()))? {
                SessionOutcome::Ready(mut s) => {
                    crate::backends::host_run::apply_maps_to_host(&mut s, obj, &opts.maps)
                        .map_err(|e| LiveError::Other(format!("filling kernel maps: {e:#}")))?;
                    Loaded::Host(s)
                }
                SessionOutcome::Rejected(r) => {
                    return Err(LiveError::Rejected {
                        kernel,
                        program: r.program,
                        message: r
                            .rejection
                            .first_error_line
                            .unwrap_or_else(|| r.rejection.errno.to_string()),
                    })
                }
            }
        }
    };
    if opts.mode == XdpMode::Hw && !opts.maps.is_empty() {
        notes.push("map files are not applied in hw mode and maps are not compared".into());
    }

    let fence = (opts.mode != XdpMode::Hw).then(|| loaded.prog_fd());
    // Exact verdicts where a probe can attach; otherwise tagging, and why.
    let (probe, fallback) = match &loaded {
        Loaded::Host(s) => match VerdictProbe::attach(s.program()) {
            Ok(p) => (Some(p), None),
            Err(why) => (None, Some(why)),
        },
        Loaded::Offloaded(_) => (
            None,
            Some(
                "offloaded programs run on the NIC, where no fexit probe can follow them"
                    .to_string(),
            ),
        ),
    };
    if let Some(why) = &fallback {
        notes.push(format!("verdicts observed by packet tagging, not fexit: {why}; XDP_DROP and XDP_ABORTED cannot be told apart"));
    }
    // Run statistics on before the program is attached, so that runs
    // before the observer is ready are counted too.
    let stats = match (&probe, opts.mode) {
        (None, XdpMode::Skb | XdpMode::Drv) => {
            Some(sys::enable_run_stats().map_err(|errno| LiveError::Io {
                step: "enabling BPF run statistics (BPF_ENABLE_STATS)".into(),
                iface: iface.describe(),
                errno,
            })?)
        }
        _ => None,
    };
    // The wire is watched before the program is attached, so that no frame
    // that runs it goes unseen.
    let mut observer = Observer::open(&iface, &peer, fence, probe, stats, opts.settle)?;
    observer.attaching().map_err(|errno| LiveError::Io {
        step: "reading the packet sockets".into(),
        iface: iface.describe(),
        errno,
    })?;
    let interrupt = sys::InterruptGuard::install(xdpqual_kernel::signal::SecondSignal::Deferred);
    let attached = Attachment::attach(&iface, loaded.prog_fd(), opts.mode, opts.replace, &kernel)?;
    // veth delivers XDP_TX and redirected frames to its peer only when the
    // peer's NAPI runs, i.e. when the peer has an XDP program or GRO
    // (drivers/net/veth.c veth_xdp_xmit); give it a pass-through program.
    let peer_pass = if opts.mode == XdpMode::Drv && peer.driver() == "veth" && peer.xdp.is_empty() {
        let fd = pass_program().map_err(|errno| LiveError::Io {
            step: "loading the peer's XDP_PASS program".into(),
            iface: peer.describe(),
            errno,
        })?;
        let a = Attachment::attach(&peer, fd.as_raw_fd(), XdpMode::Drv, false, &kernel)?;
        notes.push(format!("attached an XDP_PASS program to the peer {} for the run: veth hands XDP_TX frames to its peer only when the peer runs NAPI (drivers/net/veth.c veth_xdp_xmit)", peer.describe()));
        Some((a, fd))
    } else {
        None
    };

    // Best effort: where CPU 0 is not allowed the counts still hold, only
    // per-CPU slots may differ from the engine's.
    let _ = sys::pin_to_cpu(0);

    let conntrack = crate::conntrackfile::setup_for(obj, None, None)
        .map_err(|e| LiveError::Other(format!("{e:#}")))?;
    let cfg = EngineConfig {
        ncpus: crate::backends::engine::possible_cpus(),
        cpu: 0,
        conntrack,
        kernel: crate::backends::engine::host_kernel_release(),
        ..Default::default()
    };
    let mut engine = Engine::new(obj, Some(&program.name), cfg)
        .map_err(|e| LiveError::Other(format!("preparing the engine: {e}")))?;
    mapfile::apply(&mut engine, obj, &opts.maps).map_err(|e| LiveError::Other(format!("{e:#}")))?;
    let nondet_prog = crate::compare::calls_nondeterministic_helper(&program.insns);
    let mut carried = CarriedNondeterminism::new(&engine);

    let mut report = LiveReport {
        schema: "xdpqual.live/1",
        program: program.name.clone(),
        iface: iface.describe(),
        peer: peer.describe(),
        mode: opts.mode,
        driver: iface.driver.clone(),
        kernel: kernel.clone(),
        mtu: iface.mtu,
        observation_method: observer.method(),
        observation_fallback: fallback,
        observation: observer.describe().to_string(),
        notes,
        packets: 0,
        sent: 0,
        not_sent: 0,
        not_sent_examples: Vec::new(),
        tally: Tally::default(),
        mismatches: Vec::new(),
        counts: BTreeMap::new(),
        actions: BTreeMap::new(),
        late_arrivals: 0,
        unattributed: 0,
        unattributed_examples: Vec::new(),
        foreign_runs: 0,
        foreign: ForeignSummary::default(),
        maps_inexact: None,
        map_differences_inexact: Vec::new(),
        elapsed_s: 0.0,
        packets_per_s: 0.0,
        map_mismatches: Vec::new(),
        map_nondeterministic: Vec::new(),
        capture_errors: Vec::new(),
    };
    let io = |errno| LiveError::Io {
        step: "sending or receiving frames".into(),
        iface: iface.describe(),
        errno,
    };
    let iface_ifindex = iface.ifindex;
    // Foreign frames that enter the interface run through the engine too,
    // as they are seen entering, so that its maps follow the kernel's.
    let mut last_ts = 0u64;
    let stray = observer
        .drain(&mut predictor(&mut engine, &mut carried, last_ts, iface_ifindex))
        .map_err(io)?
        .len();
    if stray > 0 {
        report.notes.push(format!(
            "{stray} frames were queued before the first was sent and no foreign frame explains them (ignored)"
        ));
    }
    let finalize = |report: &mut LiveReport, p: Pending| {
        *report.counts.entry(p.seen.label().to_string()).or_default() += 1;
        if let Some(r) = &p.run {
            *report.actions.entry(XdpAction::from_retval(r.action).to_string()).or_default() += 1;
        }
        let problem = judge(&p.engine, p.meta_len, &p.seen, p.run.as_ref(), iface_ifindex);
        // `p.nondet`: this frame's run called a nondeterministic helper or
        // read what such a run left in a map (CarriedNondeterminism), as in
        // `diff`.
        let class = report.tally.record(&problem, p.nondet, true);
        let keep = report.mismatches.len() < opts.max_reported;
        if let (Class::Mismatch, Some(detail), true) = (class, problem, keep) {
            report.mismatches.push(LiveMismatch {
                capture: p.capture,
                index: p.index,
                flow: flow(&p.frame).map(|f| f.to_string()),
                engine: p.engine,
                live: p.seen,
                fexit: p.run,
                detail,
            });
        }
    };
    let mut pending: Option<Pending> = None;
    let mut last_index: Option<u64> = None;
    let started = Instant::now();
    let bar = crate::util::progress::packets("live");
    for path in captures {
        let reader = CaptureReader::open(path).map_err(|e| LiveError::Other(e.to_string()))?;
        bar.set_message(path.display().to_string());
        for (taken, item) in reader.enumerate() {
            if interrupt.interrupted() {
                return Err(LiveError::Interrupted { iface: iface.describe() });
            }
            let pkt = match item {
                Ok(p) => p,
                Err(e) => {
                    report.capture_errors.push(e.to_string());
                    break;
                }
            };
            if opts.max_packets.is_some_and(|m| taken as u64 >= m) {
                break;
            }
            report.packets += 1;
            bar.inc(1);
            if let Some(reason) = unsendable(&pkt.data, iface.mtu) {
                report.not_sent += 1;
                if report.not_sent_examples.len() < 10 {
                    report.not_sent_examples.push(NotSent {
                        capture: path.display().to_string(),
                        index: pkt.index,
                        len: pkt.data.len(),
                        reason,
                    });
                }
                continue;
            }
            // Anything that arrived since the last frame's window closed
            // belongs to that frame: nothing else was in flight.
            let late = observer
                .drain(&mut predictor(&mut engine, &mut carried, last_ts, iface_ifindex))
                .map_err(io)?;
            if let Some(mut p) = pending.take() {
                if p.seen == Seen::Nowhere && late.len() == 1 {
                    p.seen = late.into_iter().next().expect("one");
                    report.late_arrivals += 1;
                } else {
                    unattributed(&mut report, last_index, late);
                }
                finalize(&mut report, p);
            } else {
                unattributed(&mut report, last_index, late);
            }
            let src = PacketSource {
                data: pkt.data,
                ts_ns: pkt.ts_ns,
                ingress_ifindex: iface.ifindex,
                rx_queue_index: 0,
            };
            let engine_result = run_packet(&mut engine, &src, &mut carried);
            let nondet = carried.end_run();
            let meta_len = engine.last_meta_len();
            let ours = expect(&engine_result, meta_len, iface_ifindex);
            last_ts = src.ts_ns;
            let out = observer
                .send(
                    &src.data,
                    ours.as_ref(),
                    &mut predictor(&mut engine, &mut carried, last_ts, iface_ifindex),
                )
                .map_err(io)?;
            report.sent += 1;
            last_index = Some(pkt.index);
            unattributed(&mut report, last_index, out.extra);
            pending = Some(Pending {
                capture: path.display().to_string(),
                index: pkt.index,
                frame: src.data,
                engine: engine_result,
                meta_len,
                nondet,
                seen: out.seen,
                run: out.run,
            });
        }
    }
    std::thread::sleep(opts.settle);
    let late = observer
        .finish(&mut predictor(&mut engine, &mut carried, last_ts, iface_ifindex))
        .map_err(io)?;
    if let Some(mut p) = pending.take() {
        if p.seen == Seen::Nowhere && late.len() == 1 {
            p.seen = late.into_iter().next().expect("one");
            report.late_arrivals += 1;
        } else {
            unattributed(&mut report, last_index, late);
        }
        finalize(&mut report, p);
    } else {
        unattributed(&mut report, last_index, late);
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.packets_per_s =
        if report.elapsed_s > 0.0 { report.sent as f64 / report.elapsed_s } else { 0.0 };
    report.foreign = observer.foreign.clone();
    report.foreign_runs = report.foreign.into_iface;
    report.notes.extend(report.foreign.describe(&iface.describe()));
    if report.foreign.into_iface > 0 {
        report.notes.push(format!(
            "the {} foreign frames that entered {} were run through the engine as they entered, so that its maps follow the kernel's; {} of them went where the engine said",
            report.foreign.into_iface,
            iface.describe(),
            report.foreign.as_engine_predicted
        ));
    }
    if report.foreign.not_run > 0 {
        report.notes.push(format!(
            "{} foreign frames left the peer but never ran the program",
            report.foreign.not_run
        ));
    }
    if report.foreign.unexplained_runs > 0 {
        report.notes.push(format!(
            "the program ran {} times more than the frames seen entering {} explain",
            report.foreign.unexplained_runs,
            iface.describe()
        ));
    }
    if let Loaded::Host(s) = &loaded {
        let diffs = crate::compare::compare_maps(
            &engine,
            "the kernel",
            &crate::backends::host_run::session_maps(s),
        );
        if nondet_prog {
            report.map_nondeterministic = diffs;
        } else if !diffs.is_empty() && report.foreign_runs > 0 {
            // Foreign frames were replayed in the order they were seen, which
            // around our own frame is not exact, and runs before the
            // observer was ready were not replayed at all.
            report.maps_inexact = Some(format!(
                "maps not compared exactly: {} foreign frames ran the program",
                report.foreign_runs
            ));
            report.map_differences_inexact = diffs;
        } else {
            report.map_mismatches = diffs;
        }
    }
    drop(observer);
    if let Some((a, _fd)) = peer_pass {
        a.finish()?;
    }
    attached.finish()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(action: XdpAction, output: &[u8]) -> PacketResult {
        PacketResult {
            verdict: Verdict::Action { action },
            output: output.to_vec(),
            events: vec![],
            redirect: None,
            insns: None,
            duration_ns: None,
        }
    }

    #[test]
    fn unsendable_frames_name_the_limit() {
        let mut f = vec![0u8; 1515];
        assert!(unsendable(&f, 1500).unwrap().contains("MTU 1500"));
        f.truncate(1514);
        assert_eq!(unsendable(&f, 1500), None);
        // One VLAN tag may ride on top of the MTU.
        let mut v = vec![0u8; 1518];
        v[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(unsendable(&v, 1500), None);
        assert!(unsendable(&[0u8; 13], 1500).unwrap().contains("shorter"));
    }

    #[test]
    fn fexit_tells_aborted_from_drop() {
        let f = [1u8, 2, 3];
        let run = |action| Run { action, len: 3, head: f.to_vec() };
        assert_eq!(
            judge(&result(XdpAction::Aborted, &f), 0, &Seen::Nowhere, Some(&run(0)), 7),
            None
        );
        let d = judge(&result(XdpAction::Aborted, &f), 0, &Seen::Nowhere, Some(&run(1)), 7)
            .expect("DROP is not ABORTED");
        assert!(d.contains("engine ABORTED, live DROP (fexit)"), "{d}");
        // The frame the program returned is compared too.
        let mut short = run(1);
        short.len = 2;
        short.head.pop();
        assert!(judge(&result(XdpAction::Drop, &f), 0, &Seen::Nowhere, Some(&short), 7)
            .unwrap()
            .contains("differs"));
    }

    #[test]
    fn verdicts_map_to_places() {
        let f = [1u8, 2, 3];
        assert_eq!(
            judge(&result(XdpAction::Pass, &f), 0, &Seen::Stack { frame: f.to_vec() }, None, 7),
            None
        );
        assert!(judge(&result(XdpAction::Pass, &f), 0, &Seen::Peer { frame: f.to_vec() }, None, 7)
            .is_some());
        assert_eq!(judge(&result(XdpAction::Aborted, &f), 0, &Seen::Nowhere, None, 7), None);
        assert!(judge(&result(XdpAction::Tx, &f), 0, &Seen::Nowhere, None, 7).is_some());
        // Metadata stays on the host: only the bytes after it leave.
        assert_eq!(
            judge(
                &result(XdpAction::Tx, &[9, 9, 9, 9, 1, 2, 3]),
                4,
                &Seen::Peer { frame: f.to_vec() },
                None,
                7
            ),
            None
        );
        assert!(judge(
            &result(XdpAction::Tx, &f),
            0,
            &Seen::Peer { frame: vec![1, 2, 4] },
            None,
            7
        )
        .unwrap()
        .contains("differ"));
        let mut to_self = result(XdpAction::Redirect, &f);
        to_self.redirect = Some(RedirectTarget::Ifindex { ifindex: 7 });
        assert_eq!(judge(&to_self, 0, &Seen::Peer { frame: f.to_vec() }, None, 7), None);
        assert_eq!(judge(&to_self, 0, &Seen::Nowhere, None, 8), None);
    }
}
