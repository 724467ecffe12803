//! Backend `nic:PROFILE`: the datapath of an offload target, emulated.
//!
//! The engine runs the program; around it the profile's rules apply as the
//! NIC applies them (docs/offload-rules.md §1.2 and §5):
//!
//! - RSS: a Toeplitz hash of the 4-tuple (2-tuple for IP without ports,
//!   0 for non-IP) under the standard 40-byte key picks an entry of a
//!   128-entry indirection table over N queues;
//! - queues: one engine with `ncpus = N`, its `cpu` set to the packet's
//!   queue before each run. Per-CPU maps are therefore per queue, while
//!   ordinary maps are shared by all queues as on the device. Packets are
//!   processed in capture order whatever N is, so results are deterministic;
//!   only per-CPU state depends on N;
//! - NFP-M7: with offload active the MTU cannot exceed the packet-split
//!   boundary, so a frame whose L3 part is longer is dropped by the NIC
//!   before the program (counted `oversize`). Assumption: the MTU is set to
//!   the boundary;
//! - NFP-R1: r0 above the profile's largest action (XDP_REDIRECT included)
//!   is an abort: dropped, counted `abort`;
//! - NFP-H4/H5: adjust_head outside the firmware window and adjust_tail
//!   growth return -EINVAL, as the JITed code does;
//! - prandom: the NIC's generator, seeded from the profile, so a program
//!   that draws random numbers sees a different sequence than under `vm`.

pub mod backend;
pub mod summary;

use std::collections::BTreeMap;

use nic_model::rss::{flow_hash, IndirectionTable};
use nic_model::{Profile, Report, RuleId};
use serde::Serialize;

use super::{PacketResult, PacketSource};
use crate::capture::flow;
use crate::engine::helpers::ids::{GET_PRANDOM_U32, XDP_ADJUST_HEAD};
use crate::engine::{Engine, EngineConfig, EngineError, Outcome, PacketIn, TargetRules, Tracer};
use crate::program::{Object, Program};
use crate::verdict::{Verdict, XdpAction};
use summary::SummaryTracer;

/// Receive queues when the profile does not say.
pub const DEFAULT_QUEUES: u16 = 8;

/// ethtool-like per-queue statistics.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct QueueCounters {
    pub rx: u64,
    pub pass: u64,
    pub drop: u64,
    pub tx: u64,
    pub abort: u64,
    /// Dropped before the program: longer than the packet-split boundary.
    pub oversize: u64,
    /// The engine stopped the program (a fault the verifier would have prevented).
    pub fault: u64,
}

/// A profile rule that acted on one packet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Applied {
    /// Rule ID (`NFP-R1`, ...) or `NIC-PRANDOM`.
    pub rule: String,
    pub what: String,
}

/// What the NIC did with one packet.
#[derive(Clone, Debug)]
pub struct NicResult {
    pub result: PacketResult,
    pub queue: u16,
    pub applied: Vec<Applied>,
}

#[derive(Debug, thiserror::Error)]
pub enum NicError {
    #[error(transparent)]
    Profile(#[from] nic_model::ProfileError),
    #[error("preparing the engine for the NIC backend: {0}")]
    Engine(#[from] EngineError),
    #[error("offload profile {profile}: {message}")]
    Config { profile: String, message: String },
}

/// Either a backend ready to run, or the checker's refusal.
pub enum NicOpen {
    Ready(Box<NicBackend>),
    /// The target would not accept the program: the checker's report.
    Rejected(Box<Report>),
}

pub struct NicBackend {
    pub profile: Profile,
    engine: Engine,
    table: IndirectionTable,
    counters: Vec<QueueCounters>,
    /// L3 bytes beyond which a frame is dropped before the program.
    split_boundary: Option<usize>,
    max_action: Option<u64>,
    adjust_head_fast: bool,
    /// Rows of the target compiler's schedule, by the entry program's block
    /// leaders (nic_model::vliw); empty without a modelled compiler.
    entry_rows: Vec<u32>,
}

impl NicBackend {
    /// Checks `prog` against the profile, then builds the datapath.
    /// `queues`: `None` takes the profile's `rx_queues`, else [`DEFAULT_QUEUES`].
    pub fn open(
        obj: &Object,
        prog: &Program,
        profile: &str,
        queues: Option<u16>,
    ) -> Result<NicOpen, NicError> {
        let profile = Profile::load(profile)?;
        let spec = offload_spec(obj, prog);
        let report = nic_model::check(&spec, &profile);
        if report.verdict.exit_code() != 0 {
            return Ok(NicOpen::Rejected(Box::new(report)));
        }
        let perf = profile.perf.as_ref();
        let queues = queues
            .or_else(|| {
                perf.and_then(|p| p.rx_queues.as_ref()).map(|q| q.value.min(u16::MAX as u32) as u16)
            })
            .unwrap_or(DEFAULT_QUEUES);
        let table = IndirectionTable::round_robin(queues).map_err(|e| NicError::Config {
            profile: profile.profile.name.clone(),
            message: e.to_string(),
        })?;
        let seed = perf.and_then(|p| p.prandom_seed.as_ref()).map_or(0x004e_4943, |s| s.value);
        let cfg = EngineConfig {
            ncpus: queues as usize,
            cpu: 0,
            prandom_seed: seed,
            ..Default::default()
        };
        let mut engine = Engine::new(obj, Some(&prog.name), cfg)?;
        let h = &profile.helpers;
        let min_len = h
            .min_len_after_adjust
            .as_ref()
            .map_or(crate::engine::xdp::ETH_HLEN, |m| m.value as usize);
        let window = h.adjust_head.as_ref().map(|a| {
            // The firmware window is on the packet's offset in its buffer;
            // relative to where the frame started it is shifted by the start.
            let start = a
                .start_offset
                .as_ref()
                .map_or(a.off_min.value + a.guaranteed_sub.value, |s| s.value);
            (a.off_min.value - start, a.off_max.value - start)
        });
        engine.set_target_rules(TargetRules {
            adjust_head_window: window,
            adjust_tail_shrink_only: h.adjust_tail_shrink_only.value,
            min_len_after_adjust: min_len,
        });
        // The checker reports NFP-H4 exactly when adjust_head takes the slow path.
        let adjust_head_fast = !report.findings.iter().any(|f| f.rule == RuleId::H4);
        // The rows the target's compiler makes of each block (hXDP).
        let entry_rows = profile
            .vliw_options()
            .map(|o| nic_model::vliw::schedule(&spec.insns, &o).entry_rows)
            .unwrap_or_default();
        Ok(NicOpen::Ready(Box::new(NicBackend {
            entry_rows,
            split_boundary: profile.packet.split_boundary.as_ref().map(|s| s.value as usize),
            max_action: profile.exit.xdp_max_action.as_ref().map(|m| m.value),
            profile,
            engine,
            table,
            counters: vec![QueueCounters::default(); queues as usize],
            adjust_head_fast,
        })))
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn queues(&self) -> u16 {
        self.counters.len() as u16
    }

    pub fn counters(&self) -> &[QueueCounters] {
        &self.counters
    }

    /// Whether adjust_head takes the JIT's fast path for this program.
    pub fn adjust_head_fast(&self) -> bool {
        self.adjust_head_fast
    }

    /// The RSS queue of a frame.
    pub fn queue_of(&self, frame: &[u8]) -> u16 {
        let hash = flow(frame)
            .and_then(|f| {
                let ports = matches!(f.protocol, 6 | 17).then_some((f.src_port, f.dst_port));
                flow_hash(f.src, f.dst, ports).ok()
            })
            .unwrap_or(0);
        self.table.queue(hash)
    }

    /// Runs one packet.
    pub fn run(&mut self, pkt: &PacketSource) -> NicResult {
        let mut t = SummaryTracer::new(self.adjust_head_fast);
        self.run_traced(pkt, &mut t)
    }

    /// Runs one packet, feeding `tracer` (e.g. a [`SummaryTracer`]).
    pub fn run_traced<T: Tracer + PacketTracer>(
        &mut self,
        pkt: &PacketSource,
        tracer: &mut T,
    ) -> NicResult {
        tracer.start_packet(pkt.data.len());
        let r = self.run_inner(pkt, tracer);
        tracer.end_packet(r.result.insns.is_some());
        r
    }

    fn run_inner<T: Tracer + PacketTracer>(
        &mut self,
        pkt: &PacketSource,
        tracer: &mut T,
    ) -> NicResult {
        let queue = self.queue_of(&pkt.data);
        let q = queue as usize;
        self.counters[q].rx += 1;
        let mut applied = Vec::new();
        let l3 = pkt.data.len().saturating_sub(crate::engine::xdp::ETH_HLEN);
        if let Some(b) = self.split_boundary.filter(|b| l3 > *b) {
            self.counters[q].oversize += 1;
            applied.push(Applied {
                rule: RuleId::M7.id().into(),
                what: format!("{l3}-byte L3 frame exceeds the MTU the packet-split boundary allows ({b}); dropped before the program"),
            });
            return NicResult {
                result: PacketResult {
                    verdict: Verdict::NotRun {
                        reason: format!("longer than the NIC's MTU ({b} bytes of L3)"),
                    },
                    output: Vec::new(),
                    events: Vec::new(),
                    redirect: None,
                    insns: None,
                    duration_ns: None,
                },
                queue,
                applied,
            };
        }
        self.engine.config.cpu = q;
        let input = PacketIn {
            data: &pkt.data,
            ts_ns: pkt.ts_ns,
            ingress_ifindex: pkt.ingress_ifindex,
            rx_queue_index: queue as u32,
        };
        let r = self.engine.run_xdp_traced(&input, tracer);
        for (pc, id) in self.engine.last_refusals() {
            let (rule, name) = if *id == XDP_ADJUST_HEAD {
                (RuleId::H4, "bpf_xdp_adjust_head")
            } else {
                (RuleId::H5, "bpf_xdp_adjust_tail")
            };
            applied.push(Applied {
                rule: rule.id().into(),
                what: format!(
                    "{name} at insn {pc} refused by the firmware's rule: returned -EINVAL"
                ),
            });
        }
        if tracer.helpers_called().contains(&GET_PRANDOM_U32) {
            applied.push(Applied {
                rule: "NIC-PRANDOM".into(),
                what: "bpf_get_prandom_u32 reads the NIC's own generator".into(),
            });
        }
        let verdict = match &r.outcome {
            Outcome::Exit { r0 } => {
                let r0 = *r0 as u32 as u64;
                let action = match self.max_action {
                    Some(max) if r0 > max => {
                        applied.push(Applied {
                            rule: RuleId::R1.id().into(),
                            what: format!(
                                "return code {r0} ({}) is above {max}: abort, dropped",
                                XdpAction::from_retval(r0 as u32)
                            ),
                        });
                        XdpAction::from_retval(0)
                    }
                    _ => XdpAction::from_retval(r0 as u32),
                };
                let c = &mut self.counters[q];
                match action {
                    XdpAction::Drop => c.drop += 1,
                    XdpAction::Pass => c.pass += 1,
                    XdpAction::Tx => c.tx += 1,
                    _ => c.abort += 1,
                }
                Verdict::Action { action }
            }
            Outcome::Fault(f) => {
                self.counters[q].fault += 1;
                Verdict::Fault { message: f.to_string(), insn: f.pc }
            }
            Outcome::NotRun { reason } => Verdict::NotRun { reason: reason.to_string() },
        };
        NicResult {
            result: PacketResult {
                verdict,
                output: r.output,
                events: r.events,
                redirect: r.redirect,
                insns: Some(r.insns),
                duration_ns: None,
            },
            queue,
            applied,
        }
    }

    /// Counters summed over queues.
    pub fn totals(&self) -> QueueCounters {
        let mut t = QueueCounters::default();
        for c in &self.counters {
            t.rx += c.rx;
            t.pass += c.pass;
            t.drop += c.drop;
            t.tx += c.tx;
            t.abort += c.abort;
            t.oversize += c.oversize;
            t.fault += c.fault;
        }
        t
    }

    /// `ethtool -S`-like lines.
    pub fn render_counters(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.counters.iter().enumerate() {
            s.push_str(&format!(
                "  rxq{i}: rx {} pass {} drop {} tx {} abort {} oversize {} fault {}\n",
                c.rx, c.pass, c.drop, c.tx, c.abort, c.oversize, c.fault
            ));
        }
        s
    }
}

/// A tracer that is told where packets begin and end, and remembers which
/// helpers the current packet called.
pub trait PacketTracer {
    fn start_packet(&mut self, frame_len: usize);
    /// `ran`: whether the program ran on it (not dropped before).
    fn end_packet(&mut self, ran: bool);
    fn helpers_called(&self) -> Vec<i32>;
}

/// Rules that explain why the NIC's result differs from the kernel's; one
/// label per rule with the count of packets it explained.
pub type Explanations = BTreeMap<String, u64>;

/// Replays `frames` through the datapath and estimates the throughput on
/// the backend's profile from the trace (averaged over the packets the
/// program ran on).
pub fn estimate_frames(
    nic: &mut NicBackend,
    frames: impl IntoIterator<Item = Vec<u8>>,
) -> Result<nic_model::Estimate, nic_model::perf::EstimateError> {
    let mut tracer = SummaryTracer::with_schedule(nic.adjust_head_fast(), nic.entry_rows.clone());
    for (i, data) in frames.into_iter().enumerate() {
        let src =
            PacketSource { data, ts_ns: i as u64 * 1000, ingress_ifindex: 1, rx_queue_index: 0 };
        nic.run_traced(&src, &mut tracer);
    }
    nic_model::estimate(&nic.profile, &tracer.total)
}

/// Ethernet/IPv4/UDP frames of `len` bytes (at least 42), with source
/// addresses and ports varying by index so RSS spreads them.
pub fn synthetic_udp_frames(len: usize, count: usize) -> Vec<Vec<u8>> {
    let len = len.max(42);
    (0..count)
        .map(|i| {
            let mut f = vec![0u8; len];
            f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut f[14..34];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&[10, 0, (i >> 8) as u8, i as u8]);
            ip[16..20].copy_from_slice(&[10, 1, 0, 1]);
            let mut sum: u32 = ip.chunks(2).map(|w| u16::from_be_bytes([w[0], w[1]]) as u32).sum();
            sum = (sum & 0xffff) + (sum >> 16);
            sum = (sum & 0xffff) + (sum >> 16);
            ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            let udp = &mut f[34..42];
            udp[0..2].copy_from_slice(&(1024u16.wrapping_add(i as u16)).to_be_bytes());
            udp[2..4].copy_from_slice(&53u16.to_be_bytes());
            udp[4..6].copy_from_slice(&((len - 34) as u16).to_be_bytes());
            f
        })
        .collect()
}

/// The NIC model's view of one of our programs: what `offload-check`,
/// qualify's offload units and this backend all check.
pub fn offload_spec(obj: &Object, p: &Program) -> nic_model::ProgramSpec {
    nic_model::ProgramSpec {
        name: p.name.clone(),
        section: p.section.clone(),
        // Every program the loader hands over runs as XDP, whatever its
        // section is called (`--type xdp`, `PROG.o:SECTION`).
        prog_type: nic_model::program::ProgType::Xdp,
        prog_flags: if p.frags { nic_model::program::BPF_F_XDP_HAS_FRAGS } else { 0 },
        // One instruction type on both sides (the xdpqual-isa crate).
        insns: p.insns.clone(),
        maps: obj.maps.clone(),
        lines: Some(
            p.lines.entries.iter().map(|(i, l)| (*i, format!("{}:{}", l.file, l.line))).collect(),
        ),
    }
}
