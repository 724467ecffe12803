//! Throughput estimate: cycles per packet from an execution-trace summary,
//! then packets per second for a profile's cores, threads and clock.
//!
//! The model (every constant comes from the profile's `[perf]` table, which
//! cites a source or marks an assumption):
//!
//! * compute: each executed eBPF instruction costs its class's cycles
//!   (NFP: the JIT's NFP instructions per class, `[code.cost]`, at one NFP
//!   instruction per cycle; a VLIW target with a modelled compiler: one cycle
//!   per row of its schedule on the packet's path, [`crate::vliw`]; else
//!   instructions ÷ `insns_per_cycle`), plus
//!   helper compute, the adjust_head fast or slow path, and the fixed
//!   per-packet overhead;
//! * memory wait: each access waits the latency of the memory its region
//!   lives in (`region_memory`: packet in CTM, stack in LMEM, map values in
//!   EMEM on the NFP). Packet reads are counted per 64-byte window, as the NFP
//!   JIT batches them (`nfp_bpf_opt_pkt_cache`);
//! * per core: compute bound `clock / compute`, latency bound
//!   `threads × clock / (compute + wait)`; the smaller wins. Then × cores,
//!   capped at the line rate for the trace's average frame size.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::profile::{CodeLimits, Profile};

/// Instruction classes the cost model distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InsnClass {
    Alu32,
    Alu64,
    Mul,
    Div,
    Jmp,
    Load,
    Store,
    HelperCall,
    /// lddw, exit, BPF-to-BPF call, byte swaps.
    Other,
}

/// Which kind of memory an access touches (the engine's regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    Packet,
    Stack,
    Ctx,
    MapValue,
}

/// What one replay did, summed over `packets` packets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TraceSummary {
    pub packets: u64,
    /// Sum of frame lengths (captured bytes, no FCS), for the line-rate cap.
    pub frame_bytes: u64,
    pub insns: BTreeMap<InsnClass, u64>,
    /// Memory accesses by region (packet: distinct 64-byte windows per packet).
    pub mem: BTreeMap<RegionKind, u64>,
    /// Helper calls by id.
    pub helpers: BTreeMap<i32, u64>,
    pub adjust_head_fast: u64,
    pub adjust_head_slow: u64,
    /// VLIW rows issued (targets with a modelled compiler, [`crate::vliw`]):
    /// the rows of every block the packets entered.
    pub vliw_rows: u64,
}

impl TraceSummary {
    pub fn insns_total(&self) -> u64 {
        self.insns.values().sum()
    }

    /// Adds another summary (e.g. one packet's) to this one.
    pub fn merge(&mut self, o: &TraceSummary) {
        self.packets += o.packets;
        self.frame_bytes += o.frame_bytes;
        for (k, v) in &o.insns {
            *self.insns.entry(*k).or_default() += v;
        }
        for (k, v) in &o.mem {
            *self.mem.entry(*k).or_default() += v;
        }
        for (k, v) in &o.helpers {
            *self.helpers.entry(*k).or_default() += v;
        }
        self.adjust_head_fast += o.adjust_head_fast;
        self.adjust_head_slow += o.adjust_head_slow;
        self.vliw_rows += o.vliw_rows;
    }
}

/// What limits the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bottleneck {
    /// Instruction issue on the cores.
    Compute,
    /// Memory waits that the hardware threads cannot hide.
    MemoryLatency,
    /// The wire.
    LineRate,
}

impl std::fmt::Display for Bottleneck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bottleneck::Compute => "compute (instruction issue)",
            Bottleneck::MemoryLatency => "memory latency (not hidden by the threads)",
            Bottleneck::LineRate => "line rate",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub profile: String,
    /// Average cycles per packet by category (`insn:alu64`, `mem:packet (CTM)`, ...).
    pub cycles_by_category: BTreeMap<String, f64>,
    /// Cycles the core is busy per packet.
    pub compute_cycles: f64,
    /// Cycles a packet waits on memory.
    pub wait_cycles: f64,
    /// compute + wait: the per-packet latency on one thread.
    pub total_cycles: f64,
    pub compute_bound_mpps: f64,
    pub latency_bound_mpps: f64,
    pub line_rate_mpps: Option<f64>,
    pub mpps: f64,
    pub bottleneck: Bottleneck,
    pub avg_insns: f64,
    pub avg_frame_bytes: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EstimateError {
    #[error("offload profile `{profile}` has no `[perf]` constant `{key}`, so no throughput estimate can be made")]
    Missing { profile: String, key: &'static str },
    #[error("the trace summary holds no packets")]
    NoPackets,
    #[error("offload profile `{profile}` models its VLIW compiler, but the trace counted no rows: the tracer was not given the program's schedule")]
    NoSchedule { profile: String },
}

/// `BPF_FUNC_xdp_adjust_head`.
const ADJUST_HEAD_ID: i32 = 44;

/// Bytes on the wire besides the captured frame: FCS 4, preamble+SFD 8, IFG 12.
const WIRE_OVERHEAD: f64 = 24.0;
/// Shortest Ethernet frame without FCS (padding).
const MIN_FRAME: f64 = 60.0;

/// The estimate for `summary` on `profile`.
pub fn estimate(profile: &Profile, summary: &TraceSummary) -> Result<Estimate, EstimateError> {
    let name = profile.profile.name.clone();
    let missing = |key| EstimateError::Missing { profile: name.clone(), key };
    let perf = profile.perf.as_ref().ok_or_else(|| missing("perf"))?;
    if summary.packets == 0 {
        return Err(EstimateError::NoPackets);
    }
    let n = summary.packets as f64;
    let clock = perf.clock_mhz.as_ref().ok_or_else(|| missing("clock_mhz"))?.value;
    let cores = perf.cores.as_ref().ok_or_else(|| missing("cores"))?.value as f64;
    let threads = perf.threads_per_core.as_ref().map_or(1.0, |t| t.value as f64);

    let mut cats: BTreeMap<String, f64> = BTreeMap::new();
    let mut compute = 0.0;
    let mut wait = 0.0;

    // Instructions: the rows of the modelled compiler's schedule, or each
    // instruction's class cost.
    let vliw = profile.vliw_options().is_some();
    if vliw {
        if summary.vliw_rows == 0 && summary.insns_total() > 0 {
            return Err(EstimateError::NoSchedule { profile: name });
        }
        let c = summary.vliw_rows as f64 / n;
        compute += c;
        add(&mut cats, "vliw:rows".into(), c);
    }
    for (class, count) in summary.insns.iter().filter(|_| !vliw) {
        let per = match (&profile.code, &perf.insns_per_cycle) {
            (_, Some(ipc)) => 1.0 / ipc.value,
            (CodeLimits::Nfp { cost, .. }, None) => {
                (match class {
                    InsnClass::Alu32 => cost.alu32.value,
                    InsnClass::Alu64 => cost.alu64.value,
                    InsnClass::Mul => cost.mul.value,
                    InsnClass::Div => cost.div.value,
                    InsnClass::Jmp => cost.jmp.value,
                    InsnClass::Load => cost.load.value,
                    InsnClass::Store => cost.store.value,
                    InsnClass::HelperCall => cost.helper_call.value,
                    InsnClass::Other => cost.other.value,
                }) as f64
            }
            _ => 1.0,
        };
        let c = per * *count as f64 / n;
        compute += c;
        add(&mut cats, format!("insn:{}", class_name(*class)), c);
    }

    // Memory waits.
    for (region, count) in &summary.mem {
        let memory = perf.region_memory.as_ref().and_then(|m| match region {
            RegionKind::Packet => m.packet.as_ref(),
            RegionKind::Stack => m.stack.as_ref(),
            RegionKind::Ctx => m.ctx.as_ref(),
            RegionKind::MapValue => m.map_value.as_ref(),
        });
        let Some(memory) = memory else { continue };
        let lat = perf
            .mem_latency_cycles
            .iter()
            .find(|l| l.memory == memory.value)
            .map(|l| l.cycles.value)
            .unwrap_or(0.0);
        let c = lat * *count as f64 / n;
        if c > 0.0 {
            wait += c;
            add(&mut cats, format!("mem:{} ({})", region_name(*region), memory.value), c);
        }
    }

    // Helpers (the call instruction itself is in insn:helper_call).
    // adjust_head's cost is its fast or slow path, counted below.
    let adjust_head_modelled =
        perf.adjust_head_fast_cycles.is_some() || perf.adjust_head_slow_cycles.is_some();
    for (id, count) in &summary.helpers {
        if *id == ADJUST_HEAD_ID && adjust_head_modelled {
            continue;
        }
        let cost = perf.helper_cycles.iter().find(|h| h.id == *id);
        let (hc, hw) = match cost {
            Some(h) => (h.compute.value, h.wait.as_ref().map_or(0.0, |w| w.value)),
            None => (perf.default_helper_cycles.as_ref().map_or(0.0, |d| d.value), 0.0),
        };
        let k = *count as f64 / n;
        if hc * k > 0.0 {
            compute += hc * k;
            add(&mut cats, format!("helper:{id}"), hc * k);
        }
        if hw * k > 0.0 {
            wait += hw * k;
            add(&mut cats, format!("helper:{id} wait"), hw * k);
        }
    }
    if let Some(f) = &perf.adjust_head_fast_cycles {
        let c = f.value * summary.adjust_head_fast as f64 / n;
        if c > 0.0 {
            compute += c;
            add(&mut cats, "adjust_head:fast".into(), c);
        }
    }
    if let Some(s) = &perf.adjust_head_slow_cycles {
        let c = s.value * summary.adjust_head_slow as f64 / n;
        if c > 0.0 {
            compute += c;
            add(&mut cats, "adjust_head:slow".into(), c);
        }
    }
    if let Some(p) = &perf.per_packet_cycles {
        compute += p.value;
        add(&mut cats, "per_packet".into(), p.value);
    }

    let total = compute + wait;
    let compute_bound = if compute > 0.0 { cores * clock / compute } else { f64::INFINITY };
    let latency_bound = if total > 0.0 { cores * threads * clock / total } else { f64::INFINITY };
    let avg_frame = summary.frame_bytes as f64 / n;
    let line = perf
        .line_rate_gbps
        .as_ref()
        .map(|g| g.value * 1e3 / ((avg_frame.max(MIN_FRAME) + WIRE_OVERHEAD) * 8.0))
        .or_else(|| perf.line_rate_mpps.as_ref().map(|l| l.value));
    let (mut mpps, mut bottleneck) = if compute_bound <= latency_bound {
        (compute_bound, Bottleneck::Compute)
    } else {
        (latency_bound, Bottleneck::MemoryLatency)
    };
    if let Some(l) = line {
        if l < mpps {
            mpps = l;
            bottleneck = Bottleneck::LineRate;
        }
    }
    Ok(Estimate {
        profile: name,
        cycles_by_category: cats,
        compute_cycles: compute,
        wait_cycles: wait,
        total_cycles: total,
        compute_bound_mpps: compute_bound,
        latency_bound_mpps: latency_bound,
        line_rate_mpps: line,
        mpps,
        bottleneck,
        avg_insns: summary.insns_total() as f64 / n,
        avg_frame_bytes: avg_frame,
    })
}

fn add(m: &mut BTreeMap<String, f64>, k: String, v: f64) {
    *m.entry(k).or_default() += v;
}

fn class_name(c: InsnClass) -> &'static str {
    match c {
        InsnClass::Alu32 => "alu32",
        InsnClass::Alu64 => "alu64",
        InsnClass::Mul => "mul",
        InsnClass::Div => "div",
        InsnClass::Jmp => "jmp",
        InsnClass::Load => "load",
        InsnClass::Store => "store",
        InsnClass::HelperCall => "helper_call",
        InsnClass::Other => "other",
    }
}

fn region_name(r: RegionKind) -> &'static str {
    match r {
        RegionKind::Packet => "packet",
        RegionKind::Stack => "stack",
        RegionKind::Ctx => "ctx",
        RegionKind::MapValue => "map value",
    }
}

/// The class of an instruction by its opcode byte.
pub fn classify(code: u8, src: u8) -> InsnClass {
    let class = code & 0x07;
    let op = code & 0xf0;
    match class {
        0x04 | 0x07 => match op {
            0x20 => InsnClass::Mul,
            0x30 | 0x90 => InsnClass::Div,
            0xd0 => InsnClass::Other,
            _ if class == 0x04 => InsnClass::Alu32,
            _ => InsnClass::Alu64,
        },
        0x05 | 0x06 => match op {
            0x80 if src == 0 => InsnClass::HelperCall,
            0x80 | 0x90 => InsnClass::Other,
            _ => InsnClass::Jmp,
        },
        0x01 => InsnClass::Load,
        0x02 | 0x03 => InsnClass::Store,
        _ => InsnClass::Other,
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "throughput estimate on {}: {:.2} Mpps (bound: {})",
            self.profile, self.mpps, self.bottleneck
        )?;
        writeln!(
            f,
            "  per packet: {:.1} insns, {:.1} cycles busy + {:.1} cycles waiting = {:.1} cycles; average frame {:.0} B",
            self.avg_insns, self.compute_cycles, self.wait_cycles, self.total_cycles, self.avg_frame_bytes
        )?;
        let line = match self.line_rate_mpps {
            Some(l) => format!("line rate {l:.2} Mpps"),
            None => "no line rate in the profile, so the estimate is not capped by the wire".into(),
        };
        writeln!(
            f,
            "  bounds: compute {:.2} Mpps, latency {:.2} Mpps, {line}",
            self.compute_bound_mpps, self.latency_bound_mpps
        )?;
        writeln!(f, "  cycles by category:")?;
        let mut cats: Vec<_> = self.cycles_by_category.iter().collect();
        cats.sort_by(|a, b| b.1.partial_cmp(a.1).unwrap_or(std::cmp::Ordering::Equal));
        for (k, v) in cats {
            writeln!(f, "    {k:<28} {v:>8.1}")?;
        }
        Ok(())
    }
}
