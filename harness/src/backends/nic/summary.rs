//! The tracer that turns a replay into the NIC model's [`TraceSummary`]:
//! instruction classes, memory accesses by region, helper calls, and which
//! adjust_head path ran. The estimate averages it over packets.

use std::collections::HashSet;

use nic_model::perf::{classify, RegionKind};
use nic_model::TraceSummary;

use super::PacketTracer;
use crate::engine::helpers::ids::XDP_ADJUST_HEAD;
use crate::engine::{Region, Tracer};
use crate::isa::Insn;

/// Packet reads within one window are one CPP read on the NFP
/// (nfp/bpf/jit.c nfp_bpf_opt_pkt_cache batches reads of up to 64 bytes).
pub const PACKET_WINDOW: u64 = 64;

pub struct SummaryTracer {
    /// The program's adjust_head takes the JIT's fast path.
    adjust_head_fast: bool,
    /// Rows of the VLIW schedule charged when the entry program enters the
    /// block a slot leads (nic_model::vliw); empty when the target has no
    /// modelled compiler.
    entry_rows: Vec<u32>,
    /// Everything so far, over packets the program ran on.
    pub total: TraceSummary,
    packet: TraceSummary,
    windows: HashSet<u64>,
    helpers: Vec<i32>,
}

impl SummaryTracer {
    pub fn new(adjust_head_fast: bool) -> Self {
        Self::with_schedule(adjust_head_fast, Vec::new())
    }

    pub fn with_schedule(adjust_head_fast: bool, entry_rows: Vec<u32>) -> Self {
        SummaryTracer {
            adjust_head_fast,
            entry_rows,
            total: TraceSummary::default(),
            packet: TraceSummary::default(),
            windows: HashSet::new(),
            helpers: Vec::new(),
        }
    }
}

impl Tracer for SummaryTracer {
    fn insn(&mut self, prog: usize, pc: usize, insn: Insn, _regs: &[u64; 11]) {
        // Tail-called programs have no schedule here; the hXDP profile has
        // no PROG_ARRAY, so none runs there.
        if prog == 0 {
            self.packet.vliw_rows += self.entry_rows.get(pc).copied().unwrap_or(0) as u64;
        }
        *self.packet.insns.entry(classify(insn.code, insn.src)).or_default() += 1;
    }

    fn mem(&mut self, _pc: usize, region: Region, offset: u64, size: usize, _write: bool) {
        let kind = match region {
            Region::Packet => {
                let first = offset / PACKET_WINDOW;
                let last = (offset + size.max(1) as u64 - 1) / PACKET_WINDOW;
                for w in first..=last {
                    if self.windows.insert(w) {
                        *self.packet.mem.entry(RegionKind::Packet).or_default() += 1;
                    }
                }
                return;
            }
            Region::Stack => RegionKind::Stack,
            Region::Ctx => RegionKind::Ctx,
            Region::MapValue(_) => RegionKind::MapValue,
            Region::Ringbuf
            | Region::Mem
            | Region::Conntrack
            | Region::Ksym(_)
            | Region::Invalid => return,
        };
        *self.packet.mem.entry(kind).or_default() += 1;
    }

    fn helper(&mut self, _pc: usize, id: i32) {
        *self.packet.helpers.entry(id).or_default() += 1;
        self.helpers.push(id);
        if id == XDP_ADJUST_HEAD {
            if self.adjust_head_fast {
                self.packet.adjust_head_fast += 1;
            } else {
                self.packet.adjust_head_slow += 1;
            }
        }
    }
}

impl PacketTracer for SummaryTracer {
    fn start_packet(&mut self, frame_len: usize) {
        self.packet =
            TraceSummary { packets: 1, frame_bytes: frame_len as u64, ..Default::default() };
        self.windows.clear();
        self.helpers.clear();
    }

    fn end_packet(&mut self, ran: bool) {
        if ran {
            let p = std::mem::take(&mut self.packet);
            self.total.merge(&p);
        }
    }

    fn helpers_called(&self) -> Vec<i32> {
        self.helpers.clone()
    }
}
