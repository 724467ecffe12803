//! The execution hook: every executed instruction and memory access.
//!
//! The interpreter is generic over a [`Tracer`]; with [`NoTrace`] every hook
//! is an empty inline function and compiles away, so the hook costs nothing
//! when unused. The NIC model's cost model and `replay --trace` plug in here.

use super::fault::Region;
use xdpqual_isa::Insn;

pub trait Tracer {
    /// Whether the hooks below observe anything. A tracer that observes
    /// needs the interpreter (compiled code calls no per-instruction hook);
    /// one that does not lets the engine run its compiled code. The default
    /// is `true`, so a new tracer is never silently skipped by the JIT.
    const OBSERVES: bool = true;
    /// Called before instruction `pc` of program `prog` executes.
    #[inline(always)]
    fn insn(&mut self, _prog: usize, _pc: usize, _insn: Insn, _regs: &[u64; 11]) {}
    /// Called for each load/store the program (or a helper on its behalf) makes.
    #[inline(always)]
    fn mem(&mut self, _pc: usize, _region: Region, _offset: u64, _size: usize, _write: bool) {}
    /// Called when helper `id` is invoked at `pc`.
    #[inline(always)]
    fn helper(&mut self, _pc: usize, _id: i32) {}
    /// Called before each packet access with the buffer offset of `data`
    /// at that moment (it moves with `bpf_xdp_adjust_head`), so a tracer
    /// can show packet offsets as the program sees them: from `data`.
    #[inline(always)]
    fn packet_data(&mut self, _data: u64) {}
    /// Called when a map helper consults or changes which elements map
    /// `map` holds, or writes an element's value (see [`MapOp`]). Reads
    /// and writes of a value through a pointer the program holds come to
    /// [`Tracer::mem`] as `Region::MapValue` accesses instead.
    #[inline(always)]
    fn map_op(&mut self, _map: usize, _op: MapOp) {}
}

/// What a map helper did with a map's elements, as far as the outcome
/// depends on or changes which keys the map holds and what their values
/// are: what a tracer needs to follow a value from one run into the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOp {
    /// A lookup found the element in `slot`.
    Found { slot: usize },
    /// A lookup found nothing.
    Missed,
    /// An update wrote the element in `slot`; `inserted` when it was not
    /// there before.
    Wrote { slot: usize, inserted: bool },
    /// Anything else whose result depends on, or that changes, which keys
    /// the map holds: a failed update, a delete, a queue push or pop, an
    /// iteration.
    Membership,
}

/// The no-op tracer.
pub struct NoTrace;
impl Tracer for NoTrace {
    const OBSERVES: bool = false;
}

/// One step of a recorded trace.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    pub prog: usize,
    pub pc: usize,
    pub insn: [u8; 8],
    /// Registers r0..r10 before the instruction.
    pub regs: [u64; 11],
    pub accesses: Vec<Access>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Access {
    pub region: Region,
    /// Offset in the region's buffer (for the packet: in the page, headroom
    /// included).
    pub offset: u64,
    /// For packet accesses: the offset from `data` at the time (negative
    /// in the metadata area before `data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_data: Option<i64>,
    pub size: usize,
    pub write: bool,
}

/// Records everything, for `--trace` and for finding where backends diverge.
#[derive(Default)]
pub struct Recorder {
    pub steps: Vec<Step>,
    pub helpers: Vec<(usize, i32)>,
    /// Stop recording after this many steps (the run goes on).
    pub limit: usize,
    /// `data`'s buffer offset as last reported by [`Tracer::packet_data`].
    data: u64,
}

impl Recorder {
    pub fn new(limit: usize) -> Recorder {
        Recorder { limit, ..Default::default() }
    }
}

impl Tracer for Recorder {
    fn insn(&mut self, prog: usize, pc: usize, insn: Insn, regs: &[u64; 11]) {
        if self.steps.len() < self.limit {
            self.steps.push(Step {
                prog,
                pc,
                insn: insn.to_le_bytes(),
                regs: *regs,
                accesses: Vec::new(),
            });
        }
    }
    fn mem(&mut self, _pc: usize, region: Region, offset: u64, size: usize, write: bool) {
        if self.steps.len() <= self.limit {
            if let Some(s) = self.steps.last_mut() {
                let from_data =
                    (region == Region::Packet).then(|| offset.wrapping_sub(self.data) as i64);
                s.accesses.push(Access { region, offset, from_data, size, write });
            }
        }
    }
    fn helper(&mut self, pc: usize, id: i32) {
        self.helpers.push((pc, id));
    }
    fn packet_data(&mut self, data: u64) {
        self.data = data;
    }
}
