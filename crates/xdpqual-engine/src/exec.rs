//! One run of a program: its registers' world (stack, packet, ctx, maps)
//! and the only code that turns an engine address into bytes.

use super::fault::{Fault, FaultKind, Region};
use super::maps::MapSet;
use super::memory::*;
use super::trace::Tracer;
use super::xdp::{md, XdpBuff};
use super::{Event, Prepared, RedirectTarget};

/// Why `run_frame` stopped early.
pub(crate) enum Stop {
    /// Boxed so that `Result<(), Stop>`, which every instruction's path
    /// returns through, stays two words: faults are rare, returns are not.
    Fault(Box<Fault>),
    /// The conformance suite's "unwind" helper asked to end the program.
    Unwind,
}

pub(crate) enum HelperOutcome {
    Return(u64),
    TailCall(usize),
    Unwind(u64),
}

/// Which helper table a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperMode {
    /// The kernel's XDP helpers.
    Xdp,
    /// bpf_conformance's runtime: helper 5 returns its argument and, when
    /// that is 0, ends the program with r0 = 0 (ubpf's "unwind" extension).
    Conformance,
}

/// A ringbuf reservation: a record the program fills in place.
pub(crate) struct Reservation {
    pub map: usize,
    pub data: Vec<u8>,
    pub open: bool,
}

pub(crate) struct Exec<'e, T: Tracer> {
    pub programs: &'e [Prepared],
    pub maps: &'e mut MapSet,
    pub stack: &'e mut [u8],
    /// Lowest stack offset the current frame may touch: its own frame and
    /// its callers' (a callee may use a pointer into a caller's frame).
    pub stack_low: usize,
    /// Lowest stack offset written so far in this run (`STACK_SIZE` when
    /// none). The entry frame is all zeros when a run starts; the run
    /// clears only `[stack_dirty, STACK_SIZE)` of it when it ends, instead
    /// of the whole 512 bytes before it starts. Every stack write of the
    /// interpreter and the helpers goes through `slice`, which lowers it;
    /// the JIT's inline stores keep their own (`JitCtx::stack_dirty`),
    /// merged in when compiled code returns.
    pub stack_dirty: usize,
    pub buff: Option<&'e mut XdpBuff>,
    pub mem: Option<&'e mut [u8]>,
    pub ctx_addr: u64,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub executed: u64,
    pub budget: u64,
    /// Everything else the run may consume ([`super::budget`]).
    pub res: super::budget::Budget,
    /// The budget every run starts from (the engine's limits, nothing used).
    pub fresh_res: &'e super::budget::Budget,
    pub tail_calls: u32,
    pub allow_callx: bool,
    pub helper_mode: HelperMode,
    pub cpu: usize,
    pub now_ns: u64,
    /// CONFIG_HZ for `bpf_jiffies64` ([`crate::EngineConfig::hz`]).
    pub hz: u32,
    /// The modelled kernel release ([`crate::EngineConfig::kernel`]).
    pub kernel: crate::KernelRelease,
    pub rng: &'e mut u64,
    pub events: &'e mut Vec<Event>,
    pub redirect: &'e mut Option<RedirectTarget>,
    pub reservations: Vec<Reservation>,
    pub tracer: &'e mut T,
    /// An offload target's helper rules, applied before the kernel's.
    pub target: Option<&'e super::TargetRules>,
    /// Helper calls the target's rules refused: (pc, helper id).
    pub refusals: &'e mut Vec<(usize, i32)>,
    /// The modelled FIB for `bpf_fib_lookup`, when one was given.
    pub fib: Option<&'e super::fib::Fib>,
    /// The program's byte order ([`crate::EngineConfig::byte_order`]):
    /// how 2-, 4- and 8-byte loads and stores map registers to bytes.
    pub order: xdpqual_isa::ByteOrder,
    /// `order.is_big()`, read on every load and store.
    pub big: bool,
    /// The modelled conntrack table, when the program calls conntrack
    /// kfuncs ([`crate::conntrack`]), and this run's references into it.
    pub conntrack: Option<&'e mut crate::conntrack::Table>,
    pub ct_refs: crate::conntrack::Refs,
    /// The object's `__ksym` variables (helpers/ksym.rs).
    pub ksyms: &'e [xdpqual_object::KsymVar],
    /// Zeros handed out for reads of them.
    pub ksym_scratch: Vec<u8>,
}

impl<T: Tracer> Exec<'_, T> {
    /// Sets up the next run, for packet `pkt`: everything a run changes
    /// back to how a run starts (frame 0 and the counters), with a fresh
    /// copy of the engine's budget. Maps, the random state and the stack's
    /// contents carry over, as between two runs in the kernel. The frame
    /// itself is the caller's to lay out. Inlined: it is on every packet's
    /// path, and as a call it cost the batch's floor 2-3 ns a packet
    /// (`perf`: 9% of `builtin:floor` in a call of its own).
    #[inline]
    pub(crate) fn begin_run(&mut self, pkt: &crate::PacketIn) {
        self.stack_low = STACK_SIZE - FRAME_SIZE;
        self.stack_dirty = STACK_SIZE;
        self.ingress_ifindex = pkt.ingress_ifindex;
        self.rx_queue_index = pkt.rx_queue_index;
        self.executed = 0;
        self.res.clone_from(self.fresh_res);
        self.tail_calls = 0;
        self.now_ns = pkt.ts_ns;
        self.reservations.clear();
        self.ct_refs.refs.clear();
        self.refusals.clear();
    }

    /// Ends a run: frame 0 back to all zeros, which is how the next run
    /// expects it (deeper frames are cleared when a call enters them,
    /// `clear_frame`, and frame 0 cannot reach them). Only the bytes at or
    /// above the lowest write can differ from zero: bytes of frame 0 below
    /// it were not written by this run and were zero before it.
    #[inline]
    pub(crate) fn end_run(&mut self) {
        let dirty = self.stack_dirty.max(STACK_SIZE - FRAME_SIZE);
        // Most runs write no stack: skip the call to memset then.
        if dirty < STACK_SIZE {
            self.stack[dirty..].fill(0);
        }
    }

    /// The fault of a run that panicked outside the helpers and slow
    /// paths (which contain their own): the last line that keeps one packet
    /// from taking the process down. Where the run wrote is not known then,
    /// so all of frame 0 is cleared at `end_run`.
    pub(crate) fn engine_panicked(
        &mut self,
        entry: usize,
        payload: &(dyn std::any::Any + Send),
    ) -> Stop {
        self.stack_dirty = 0;
        Stop::Fault(Box::new(Fault {
            pc: 0,
            program: self.programs[entry].name.clone(),
            line: None,
            kind: FaultKind::Internal {
                what: format!("the engine: {}", crate::panic_message(payload)),
            },
        }))
    }

    pub(crate) fn clear_frame(&mut self, depth: usize) {
        let hi = STACK_SIZE - depth * FRAME_SIZE;
        self.stack[hi - FRAME_SIZE..hi].iter_mut().for_each(|b| *b = 0);
    }

    pub(crate) fn load(&mut self, pc: usize, a: u64, size: usize) -> Result<u64, FaultKind> {
        if tag_of(a) == TAG_CTX {
            return self.ctx_load(a, size);
        }
        let big = self.big;
        let v = read_le(self.slice(pc, a, size, false)?);
        // Big-endian memory: the bytes read little-endian, reversed. One
        // predictable branch, and a byte swap only in big-endian runs.
        Ok(if big { swap_width(v, size) } else { v })
    }

    pub(crate) fn store(
        &mut self,
        pc: usize,
        a: u64,
        size: usize,
        v: u64,
    ) -> Result<(), FaultKind> {
        if tag_of(a) == TAG_CTX {
            return Err(FaultKind::ReadOnly { addr: a, region: Region::Ctx });
        }
        let v = if self.big { swap_width(v, size) } else { v };
        write_le(self.slice(pc, a, size, true)?, v);
        Ok(())
    }

    /// Atomics are only valid on stack and map values; the verifier refuses
    /// them on packet and ctx pointers (check_atomic in verifier.c).
    pub(crate) fn check_atomic_region(&self, a: u64) -> Result<(), FaultKind> {
        match region_of(a) {
            Region::Stack | Region::MapValue(_) | Region::Mem => Ok(()),
            r => Err(FaultKind::NotModelled {
                what: format!("atomic operation on {r} memory (the verifier refuses it)"),
            }),
        }
    }

    /// `struct xdp_md` reads, rewritten as the kernel's
    /// `xdp_convert_ctx_access` does: data/data_end/data_meta become
    /// pointers, the ifindex fields come from the receive queue.
    fn ctx_load(&mut self, a: u64, size: usize) -> Result<u64, FaultKind> {
        let off = offset_of(a) as i64 - offset_of(self.ctx_addr) as i64;
        let bad = FaultKind::InvalidCtxAccess { offset: off, size: size as u8 };
        if size != 4 || off % 4 != 0 {
            return Err(bad);
        }
        let Some(b) = self.buff.as_ref() else { return Err(bad) };
        match off {
            md::DATA => Ok(b.data_addr()),
            md::DATA_END => Ok(b.data_end_addr()),
            md::DATA_META => Ok(b.data_meta_addr()),
            md::INGRESS_IFINDEX => Ok(self.ingress_ifindex as u64),
            md::RX_QUEUE_INDEX => Ok(self.rx_queue_index as u64),
            // egress_ifindex is only readable by BPF_XDP_DEVMAP programs
            // (xdp_is_valid_access); anything else is out of the struct.
            _ => Err(bad),
        }
    }

    /// Resolves `[a, a+len)` to bytes, or faults. This is the sandbox.
    pub(crate) fn slice(
        &mut self,
        pc: usize,
        a: u64,
        len: usize,
        write: bool,
    ) -> Result<&mut [u8], FaultKind> {
        let tag = tag_of(a);
        let off = offset_of(a);
        let oob = |region: Region, lo: u64, hi: u64| FaultKind::OutOfBounds {
            addr: a,
            size: len.min(255) as u8,
            write,
            region,
            valid: (lo, hi),
        };
        let (region, range) = match tag {
            TAG_PACKET => {
                let Some(b) = self.buff.as_deref() else {
                    return Err(oob(Region::Packet, 0, 0));
                };
                let (lo, hi) = (b.data_meta as u64, b.data_end as u64);
                self.tracer.packet_data(b.data as u64);
                (
                    Region::Packet,
                    check_range(off, len, lo, hi).ok_or_else(|| oob(Region::Packet, lo, hi))?,
                )
            }
            TAG_STACK => {
                let (lo, hi) = (self.stack_low as u64, STACK_SIZE as u64);
                let range =
                    check_range(off, len, lo, hi).ok_or_else(|| oob(Region::Stack, lo, hi))?;
                if write {
                    self.stack_dirty = self.stack_dirty.min(range.start);
                }
                (Region::Stack, range)
            }
            TAG_MEM => {
                let hi = self.mem.as_deref().map_or(0, |m| m.len()) as u64;
                (Region::Mem, check_range(off, len, 0, hi).ok_or_else(|| oob(Region::Mem, 0, hi))?)
            }
            TAG_RINGBUF => {
                let id = (off >> 24) as usize;
                let inner = off & 0xff_ffff;
                let Some(r) = self.reservations.get(id).filter(|r| r.open) else {
                    return Err(oob(Region::Ringbuf, 0, 0));
                };
                let hi = r.data.len() as u64;
                let range =
                    check_range(inner, len, 0, hi).ok_or_else(|| oob(Region::Ringbuf, 0, hi))?;
                self.tracer.mem(pc, Region::Ringbuf, inner, len, write);
                return Ok(&mut self.reservations[id].data[range]);
            }
            TAG_FRAG => {
                // Fragment memory (a dynptr slice, helpers/dynptr.rs),
                // checked against the fragment as it is now: adjust_tail
                // may have shortened or removed it since.
                let (i, inner) = ((off >> 16) as usize, off & 0xffff);
                let Some(f) = self.buff.as_deref().and_then(|b| b.frags.get(i)) else {
                    return Err(oob(Region::Packet, 0, 0));
                };
                let hi = f.len() as u64;
                let range =
                    check_range(inner, len, 0, hi).ok_or_else(|| oob(Region::Packet, 0, hi))?;
                // Tracers see packet offsets in the page; a fragment has
                // none, so they are not told of these accesses.
                return Ok(&mut self.buff.as_deref_mut().expect("checked").frags[i][range]);
            }
            t if t >= TAG_MAP_VALUE_BASE => {
                let idx = (t - TAG_MAP_VALUE_BASE) as usize;
                let region = Region::MapValue(idx as u32);
                let cpu = self.cpu;
                let Some(m) = self.maps.maps.get_mut(idx) else {
                    return Err(oob(region, 0, 0));
                };
                if write && m.read_only {
                    return Err(FaultKind::ReadOnly { addr: a, region });
                }
                if m.stride == 0 {
                    return Err(oob(region, 0, 0));
                }
                let o = off as usize;
                // Slot, per-CPU part and byte within it. Two divisions by
                // run-time values cost tens of cycles on every map-value
                // access that misses the callers' fast paths (the
                // interpreter's, all helpers'), and the usual maps need
                // none: a power-of-two stride is a shift and a mask, and a
                // map with one part per slot (every non-per-CPU map) has
                // part 0; an offset inside the first slot (every access to
                // a map of one slot: `.bss`, `.data`, a totals struct) is
                // its own remainder. The general case divides.
                let (slot, within) = if o < m.stride {
                    (0, o)
                } else if m.stride.is_power_of_two() {
                    (o >> m.stride.trailing_zeros(), o & (m.stride - 1))
                } else {
                    (o / m.stride, o % m.stride)
                };
                let (part, inner) = if m.per_cpu == m.stride {
                    (0, within)
                } else {
                    (within / m.per_cpu, within % m.per_cpu)
                };
                let base = (slot * m.stride + part * m.per_cpu) as u64;
                let vs = m.def.value_size as u64;
                // Checked sums: `len` can be any helper size argument.
                let ok = (!m.def.map_type.is_percpu() || part == cpu)
                    && (inner as u64).checked_add(len as u64).is_some_and(|e| e <= vs)
                    && o.checked_add(len).is_some_and(|e| e <= m.values.len());
                if !ok {
                    return Err(oob(region, base, base + vs));
                }
                self.tracer.mem(pc, region, off, len, write);
                return Ok(&mut m.values[o..o + len]);
            }
            TAG_CONNTRACK => {
                self.tracer.mem(pc, Region::Conntrack, off, len, write);
                return self.conntrack_slice(a, len, write);
            }
            TAG_KSYM => return self.ksym_slice(pc, a, len, write),
            TAG_CTX => {
                return Err(FaultKind::InvalidCtxAccess {
                    offset: off as i64,
                    size: len.min(255) as u8,
                })
            }
            _ => return Err(FaultKind::NotAPointer { addr: a }),
        };
        self.tracer.mem(pc, region, off, len, write);
        Ok(match region {
            Region::Packet => &mut self.buff.as_deref_mut().expect("checked").page[range],
            Region::Stack => &mut self.stack[range],
            _ => &mut self.mem.as_deref_mut().expect("checked")[range],
        })
    }

    /// The bytes `slice(pc, a, len, false)` returns, borrowed in place with
    /// the maps beside them, for a lookup's key in the stack or the packet
    /// (where keys are): `None` for any other region, for a range `slice`
    /// would refuse, and whenever the tracer observes (`slice` tells it of
    /// the access). The caller then calls `slice`, which decides, and
    /// faults, exactly as for any access; this only skips the copy of the
    /// key and lets the map read it where it is.
    #[inline]
    pub(crate) fn key_in_place(&mut self, a: u64, len: usize) -> Option<(&[u8], &mut MapSet)> {
        if T::OBSERVES {
            return None;
        }
        let off = offset_of(a);
        let key = match tag_of(a) {
            TAG_STACK => {
                let range = check_range(off, len, self.stack_low as u64, STACK_SIZE as u64)?;
                self.stack.get(range)?
            }
            TAG_PACKET => {
                let b = self.buff.as_deref()?;
                let range = check_range(off, len, b.data_meta as u64, b.data_end as u64)?;
                b.page.get(range)?
            }
            _ => return None,
        };
        Some((key, &mut *self.maps))
    }

    /// Copies `len` bytes from an engine address (for helper arguments),
    /// charged as helper work before anything is copied. `len` is the
    /// helper's size argument as the program passed it: a size no region
    /// can hold faults as out of bounds, it never reaches an allocation.
    pub(crate) fn read_bytes(&mut self, pc: usize, a: u64, len: u64) -> Result<Vec<u8>, FaultKind> {
        if len == 0 {
            return Ok(Vec::new());
        }
        self.res.work(len)?;
        let Ok(len) = usize::try_from(len) else {
            return Err(FaultKind::OutOfBounds {
                addr: a,
                size: 255,
                write: false,
                region: region_of(a),
                valid: (0, 0),
            });
        };
        Ok(self.slice(pc, a, len, false)?.to_vec())
    }
}
