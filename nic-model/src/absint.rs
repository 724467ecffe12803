//! A small abstract interpreter for range and pointer-kind facts.
//!
//! It follows the ideas of the kernel verifier (kernel/bpf/verifier.c): each
//! register holds either an unsigned scalar range or a pointer of a known kind
//! with an offset range; conditional jumps refine ranges on each side and
//! prune infeasible sides; map lookups return a maybe-NULL map value pointer
//! that a NULL test resolves (by id, like the verifier's `reg->id`); 8-byte
//! stack spills keep pointers. It explores paths one by one, pruning a state
//! that an already-explored state at the same instruction subsumes (the
//! verifier's `states_equal`). Unlike the verifier it is bounded: when an
//! instruction has seen `state_cap` distinct states, further arrivals are
//! joined into one (and widened after repeated joins), so loops terminate.
//!
//! Soundness direction: every range over-approximates what the concrete
//! program can hold on the explored paths; `Top` means "kind unknown".

use crate::opcode::*;
use crate::program::{Insn, ProgType, ProgramSpec};
use std::collections::BTreeMap;

/// Unsigned 64-bit range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

impl Range {
    pub const FULL: Range = Range { min: 0, max: u64::MAX };
    pub const U32: Range = Range { min: 0, max: u32::MAX as u64 };
    pub fn exact(v: u64) -> Range {
        Range { min: v, max: v }
    }
    pub fn bits(n: u32) -> Range {
        if n >= 64 {
            Range::FULL
        } else {
            Range { min: 0, max: (1u64 << n) - 1 }
        }
    }
    pub fn constant(&self) -> Option<u64> {
        (self.min == self.max).then_some(self.min)
    }
    fn join(self, o: Range) -> Range {
        Range { min: self.min.min(o.min), max: self.max.max(o.max) }
    }
    fn contains(self, o: Range) -> bool {
        self.min <= o.min && o.max <= self.max
    }
}

/// Signed offset range of a pointer, inclusive; saturating at the i64 ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Off {
    pub min: i64,
    pub max: i64,
}

impl Off {
    pub const ZERO: Off = Off { min: 0, max: 0 };
    pub const ANY: Off = Off { min: i64::MIN, max: i64::MAX };
    pub fn exact(v: i64) -> Off {
        Off { min: v, max: v }
    }
    pub fn constant(&self) -> Option<i64> {
        (self.min == self.max).then_some(self.min)
    }
    fn add(self, o: Off) -> Off {
        Off { min: self.min.saturating_add(o.min), max: self.max.saturating_add(o.max) }
    }
    fn neg(self) -> Off {
        Off { min: self.max.saturating_neg(), max: self.min.saturating_neg() }
    }
    fn join(self, o: Off) -> Off {
        Off { min: self.min.min(o.min), max: self.max.max(o.max) }
    }
    fn contains(self, o: Off) -> bool {
        self.min <= o.min && o.max <= self.max
    }
    /// A scalar range read as a signed addend.
    fn from_scalar(r: Range) -> Off {
        if r.max <= i64::MAX as u64 {
            Off { min: r.min as i64, max: r.max as i64 }
        } else if let Some(c) = r.constant() {
            Off::exact(c as i64)
        } else {
            Off::ANY
        }
    }
}

/// Abstract value of a register or spilled stack slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    Uninit,
    Scalar(Range),
    /// Context pointer (`xdp_md` / `__sk_buff`) at a constant offset.
    Ctx(i64),
    /// Packet pointer: offset from `data`.
    Pkt(Off),
    PktEnd,
    PktMeta(Off),
    /// Stack pointer into frame `frame` (0 = main), offset from that frame's r10.
    Stack {
        frame: u8,
        off: Off,
    },
    /// Map value pointer (object map index); `id` ties copies for NULL checks.
    MapValue {
        map: u32,
        off: Off,
        maybe_null: bool,
        id: u32,
    },
    /// `CONST_PTR_TO_MAP` from `lddw` with `BPF_PSEUDO_MAP_FD`.
    MapPtr(u32),
    /// Unknown kind (paths with different kinds were joined).
    Top,
}

/// Pointer kinds, numbered as the kernel's `enum bpf_reg_type`
/// (include/linux/bpf.h) for messages such as `unsupported ptr type: %d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotInit = 0,
    Scalar = 1,
    Ctx = 2,
    MapPtr = 3,
    MapValue = 4,
    Stack = 6,
    PktMeta = 7,
    Pkt = 8,
    PktEnd = 9,
    Unknown = 255,
}

impl Val {
    pub fn scalar_full() -> Val {
        Val::Scalar(Range::FULL)
    }
    pub fn kind(&self) -> Kind {
        match self {
            Val::Uninit => Kind::NotInit,
            Val::Scalar(_) => Kind::Scalar,
            Val::Ctx(_) => Kind::Ctx,
            Val::Pkt(_) => Kind::Pkt,
            Val::PktEnd => Kind::PktEnd,
            Val::PktMeta(_) => Kind::PktMeta,
            Val::Stack { .. } => Kind::Stack,
            Val::MapValue { .. } => Kind::MapValue,
            Val::MapPtr(_) => Kind::MapPtr,
            Val::Top => Kind::Unknown,
        }
    }
    pub fn range(&self) -> Option<Range> {
        match self {
            Val::Scalar(r) => Some(*r),
            _ => None,
        }
    }
    fn join(self, o: Val) -> Val {
        match (self, o) {
            (a, b) if a == b => a,
            (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(a.join(b)),
            (Val::Pkt(a), Val::Pkt(b)) => Val::Pkt(a.join(b)),
            (Val::PktMeta(a), Val::PktMeta(b)) => Val::PktMeta(a.join(b)),
            (Val::Stack { frame: f, off: a }, Val::Stack { frame: g, off: b }) if f == g => {
                Val::Stack { frame: f, off: a.join(b) }
            }
            (
                Val::MapValue { map: m, off: a, maybe_null: n1, id: i1 },
                Val::MapValue { map: k, off: b, maybe_null: n2, id: i2 },
            ) if m == k => Val::MapValue {
                map: m,
                off: a.join(b),
                maybe_null: n1 || n2,
                id: if i1 == i2 { i1 } else { 0 },
            },
            _ => Val::Top,
        }
    }
    /// `self` describes a subset of `o`.
    fn le(&self, o: &Val) -> bool {
        match (self, o) {
            (a, b) if a == b => true,
            (_, Val::Top) => true,
            (Val::Scalar(a), Val::Scalar(b)) => b.contains(*a),
            (Val::Pkt(a), Val::Pkt(b)) | (Val::PktMeta(a), Val::PktMeta(b)) => b.contains(*a),
            (Val::Stack { frame: f, off: a }, Val::Stack { frame: g, off: b }) => {
                f == g && b.contains(*a)
            }
            (
                Val::MapValue { map: m, off: a, maybe_null: n1, id: i1 },
                Val::MapValue { map: k, off: b, maybe_null: n2, id: i2 },
            ) => m == k && b.contains(*a) && (!*n1 || *n2) && (i1 == i2 || !*n1),
            _ => false,
        }
    }
    fn widen(self, newer: Val) -> Val {
        match (self, newer) {
            (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(Range {
                min: if b.min < a.min { 0 } else { a.min },
                max: if b.max > a.max { u64::MAX } else { a.max },
            }),
            (Val::Pkt(a), Val::Pkt(b)) => Val::Pkt(widen_off(a, b)),
            (Val::PktMeta(a), Val::PktMeta(b)) => Val::PktMeta(widen_off(a, b)),
            (Val::Stack { frame, off: a }, Val::Stack { off: b, .. }) => {
                Val::Stack { frame, off: widen_off(a, b) }
            }
            (Val::MapValue { map, off: a, maybe_null, id }, Val::MapValue { off: b, .. }) => {
                Val::MapValue { map, off: widen_off(a, b), maybe_null, id }
            }
            (_, n) => n,
        }
    }
}

fn widen_off(a: Off, b: Off) -> Off {
    Off {
        min: if b.min < a.min { i64::MIN } else { a.min },
        max: if b.max > a.max { i64::MAX } else { a.max },
    }
}

/// One call frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// First instruction of the function running in this frame.
    pub func: usize,
    /// Where the caller resumes (unused for frame 0).
    pub ret_pc: usize,
    /// Caller's r6-r9, restored on exit (unused for frame 0).
    pub saved: [Val; 4],
    /// 8-byte-aligned spill slots by (negative) offset from this frame's r10.
    pub slots: BTreeMap<i64, Val>,
}

/// Abstract machine state before an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub regs: [Val; 11],
    pub frames: Vec<Frame>,
    /// This state is the join of several paths.
    pub joined: bool,
}

impl State {
    fn entry() -> State {
        let mut regs = [Val::Uninit; 11];
        regs[1] = Val::Ctx(0);
        regs[10] = Val::Stack { frame: 0, off: Off::ZERO };
        State {
            regs,
            frames: vec![Frame {
                func: 0,
                ret_pc: 0,
                saved: [Val::Uninit; 4],
                slots: BTreeMap::new(),
            }],
            joined: false,
        }
    }
    pub fn reg(&self, r: u8) -> Val {
        self.regs.get(r as usize).copied().unwrap_or(Val::Top)
    }
    pub fn depth(&self) -> usize {
        self.frames.len() - 1
    }
    pub fn func(&self) -> usize {
        self.frames.last().map(|f| f.func).unwrap_or(0)
    }
    fn le(&self, o: &State) -> bool {
        self.frames.len() == o.frames.len()
            && self.regs.iter().zip(&o.regs).all(|(a, b)| a.le(b))
            && self.frames.iter().zip(&o.frames).all(|(a, b)| {
                a.func == b.func
                    && a.ret_pc == b.ret_pc
                    && a.saved.iter().zip(&b.saved).all(|(x, y)| x.le(y))
                    && b.slots.iter().all(|(k, v)| a.slots.get(k).is_some_and(|x| x.le(v)))
            })
    }
    fn join(&self, o: &State) -> Option<State> {
        if self.frames.len() != o.frames.len()
            || self
                .frames
                .iter()
                .zip(&o.frames)
                .any(|(a, b)| a.func != b.func || a.ret_pc != b.ret_pc)
        {
            return None;
        }
        let mut s = self.clone();
        for (a, b) in s.regs.iter_mut().zip(&o.regs) {
            *a = a.join(*b);
        }
        for (fa, fb) in s.frames.iter_mut().zip(&o.frames) {
            for (a, b) in fa.saved.iter_mut().zip(&fb.saved) {
                *a = a.join(*b);
            }
            fa.slots = fa
                .slots
                .iter()
                .filter_map(|(k, v)| fb.slots.get(k).map(|w| (*k, v.join(*w))))
                .collect();
        }
        s.joined = true;
        Some(s)
    }
    fn widen(&self, newer: &State) -> State {
        let mut s = newer.clone();
        for (n, o) in s.regs.iter_mut().zip(&self.regs) {
            *n = o.widen(*n);
        }
        for (fnew, fold) in s.frames.iter_mut().zip(&self.frames) {
            for (n, o) in fnew.saved.iter_mut().zip(&fold.saved) {
                *n = o.widen(*n);
            }
            for (k, n) in fnew.slots.iter_mut() {
                if let Some(o) = fold.slots.get(k) {
                    *n = o.widen(*n);
                }
            }
        }
        s.joined = true;
        s
    }
    fn map_vals(&mut self, f: impl Fn(Val) -> Val) {
        for r in self.regs.iter_mut() {
            *r = f(*r);
        }
        for fr in self.frames.iter_mut() {
            for r in fr.saved.iter_mut() {
                *r = f(*r);
            }
            for v in fr.slots.values_mut() {
                *v = f(*v);
            }
        }
    }
}

/// Receives the pre-instruction state of every explored path.
pub trait Observer {
    fn visit(&mut self, pc: usize, insn: &Insn, state: &State);
}

/// Largest packet offset the kernel verifier tracks (kernel/bpf/verifier.c
/// `MAX_PACKET_OFF`).
pub const MAX_PACKET_OFF: u64 = 0xffff;

/// Bounds on the exploration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Distinct states kept per instruction before joining.
    pub state_cap: usize,
    /// Joins at one instruction before ranges are widened.
    pub widen_after: u32,
    /// Total instruction visits.
    pub budget: usize,
    /// Call frames (kernel `MAX_CALL_FRAMES`).
    pub max_frames: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { state_cap: 16, widen_after: 3, budget: 500_000, max_frames: 8 }
    }
}

/// What the exploration found besides the observer's findings.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub visited: Vec<bool>,
    /// Deepest stack byte touched, per function start (bytes below r10).
    pub stack_depth: BTreeMap<usize, u64>,
    /// Some stack access had a variable offset (depth unknown for that function).
    pub stack_depth_unknown: Vec<usize>,
    /// Largest packet offset reached (last byte, as the kernel's
    /// `max_pkt_offset`) by the accesses the analysis could bound.
    pub max_pkt_offset: u64,
    /// A packet access whose offset is unbounded above (or beyond
    /// [`MAX_PACKET_OFF`]): then `max_pkt_offset` is no bound at all.
    pub pkt_offset_unbounded: bool,
    pub budget_exhausted: bool,
    pub instructions_joined: usize,
}

/// XDP `struct xdp_md` and TC `struct __sk_buff` offsets (include/uapi/linux/bpf.h).
pub mod ctx_off {
    pub const XDP_DATA: i64 = 0;
    pub const XDP_DATA_END: i64 = 4;
    pub const XDP_DATA_META: i64 = 8;
    pub const XDP_INGRESS_IFINDEX: i64 = 12;
    pub const XDP_RX_QUEUE_INDEX: i64 = 16;
    pub const XDP_EGRESS_IFINDEX: i64 = 20;
    pub const SKB_LEN: i64 = 0;
    pub const SKB_DATA: i64 = 76;
    pub const SKB_DATA_END: i64 = 80;
    pub const SKB_DATA_META: i64 = 140;
}

pub struct Analyzer<'a> {
    prog: &'a ProgramSpec,
    ptype: ProgType,
    limits: Limits,
    out: Outcome,
}

/// Run the abstract interpretation, calling `obs` for every explored state.
pub fn analyze(prog: &ProgramSpec, limits: Limits, obs: &mut dyn Observer) -> Outcome {
    let mut a = Analyzer { prog, ptype: prog.prog_type(), limits, out: Outcome::default() };
    a.run(obs);
    a.out
}

impl<'a> Analyzer<'a> {
    fn run(&mut self, obs: &mut dyn Observer) {
        let n = self.prog.insns.len();
        self.out.visited = vec![false; n];
        if n == 0 {
            return;
        }
        let mut seen: Vec<Vec<State>> = vec![Vec::new(); n];
        let mut joins: Vec<u32> = vec![0; n];
        let mut work: Vec<(usize, State)> = vec![(0, State::entry())];
        let mut steps = 0usize;
        while let Some((pc, st)) = work.pop() {
            if pc >= n {
                continue;
            }
            if seen[pc].iter().any(|t| st.le(t)) {
                continue;
            }
            let st = if seen[pc].len() < self.limits.state_cap {
                seen[pc].push(st.clone());
                st
            } else {
                // The previous join result at this pc, before it is folded in
                // below: widening compares the new join against it.
                let prev_join = seen[pc].iter().find(|t| t.joined).cloned();
                // Join with every joinable stored state; keep the rest.
                let mut acc = st;
                let mut keep = Vec::new();
                for t in seen[pc].drain(..) {
                    match acc.join(&t) {
                        Some(j) => acc = j,
                        None => keep.push(t),
                    }
                }
                joins[pc] += 1;
                if joins[pc] == 1 {
                    self.out.instructions_joined += 1;
                }
                // Widen against the previous join (not against `keep`: the
                // joinable states, that one included, were all drained into
                // `acc` above, so searching `keep` never found it and ranges
                // that grow by a step per loop iteration never converged).
                if joins[pc] > self.limits.widen_after {
                    if let Some(p) = prev_join.filter(|p| p.join(&acc).is_some()) {
                        acc = p.widen(&acc);
                    }
                }
                keep.push(acc.clone());
                seen[pc] = keep;
                acc
            };
            steps += 1;
            if steps > self.limits.budget {
                self.out.budget_exhausted = true;
                return;
            }
            self.out.visited[pc] = true;
            let insn = self.prog.insns[pc];
            obs.visit(pc, &insn, &st);
            for succ in self.step(pc, &insn, st) {
                work.push(succ);
            }
        }
    }

    fn note_stack(&mut self, st: &State, frame: u8, off: Off, size: u64) {
        let func = st.frames.get(frame as usize).map(|f| f.func).unwrap_or(0);
        if off.min == i64::MIN || off.max == i64::MAX {
            if !self.out.stack_depth_unknown.contains(&func) {
                self.out.stack_depth_unknown.push(func);
            }
            return;
        }
        let _ = size;
        if off.min < 0 {
            let d = self.out.stack_depth.entry(func).or_insert(0);
            *d = (*d).max(off.min.unsigned_abs());
        }
    }

    fn note_pkt(&mut self, off: Off, size: u64) {
        if off.max < 0 {
            return;
        }
        let last = (off.max as u64).saturating_add(size.saturating_sub(1));
        // The verifier grants a packet pointer a range only while its offset
        // (fixed plus variable part) is at most MAX_PACKET_OFF (0xffff,
        // kernel/bpf/verifier.c find_good_pkt_pointers), so every access it
        // accepts ends below that. A reach past it is not a packet offset but
        // a bound this analysis lost (a 32-bit wrap gave 2^32 + 14, joined
        // loop iterations 108607): it is unbounded, not a number.
        if last > MAX_PACKET_OFF {
            self.out.pkt_offset_unbounded = true;
            return;
        }
        self.out.max_pkt_offset = self.out.max_pkt_offset.max(last);
    }

    fn step(&mut self, pc: usize, insn: &Insn, mut st: State) -> Vec<(usize, State)> {
        let c = insn.code;
        let next = pc + 1;
        match class(c) {
            ALU | ALU64 => {
                let v = self.alu(insn, &st);
                if let Some(slot) = st.regs.get_mut(insn.dst as usize) {
                    *slot = v;
                }
                vec![(next, st)]
            }
            LD => {
                if c == LD_DW_IMM {
                    let Some(hi) = self.prog.insns.get(pc + 1) else { return vec![] };
                    let v = match insn.src {
                        PSEUDO_MAP_FD => Val::MapPtr(insn.imm as u32),
                        PSEUDO_MAP_VALUE => Val::MapValue {
                            map: insn.imm as u32,
                            off: Off::exact(hi.imm as u32 as i64),
                            maybe_null: false,
                            id: 0,
                        },
                        0 => Val::Scalar(Range::exact(
                            ((hi.imm as u32 as u64) << 32) | insn.imm as u32 as u64,
                        )),
                        _ => Val::scalar_full(),
                    };
                    if let Some(slot) = st.regs.get_mut(insn.dst as usize) {
                        *slot = v;
                    }
                    return vec![(pc + 2, st)];
                }
                // LD_ABS / LD_IND: r0 = packet bytes (network order), r1-r5 clobbered.
                st.regs[0] = Val::Scalar(Range::bits(8 * mem_size(c) as u32));
                for r in 1..=5 {
                    st.regs[r] = Val::Uninit;
                }
                vec![(next, st)]
            }
            LDX => {
                let base = st.reg(insn.src);
                let size = mem_size(c) as u64;
                let v = self.load(&st, base, insn.off as i64, size, mode(c) == MODE_MEMSX);
                if let Some(slot) = st.regs.get_mut(insn.dst as usize) {
                    *slot = v;
                }
                vec![(next, st)]
            }
            ST | STX => {
                let base = st.reg(insn.dst);
                let size = mem_size(c) as u64;
                if class(c) == STX && mode(c) == MODE_ATOMIC {
                    if insn.imm & ATOMIC_FETCH != 0 {
                        let r = if insn.imm == ATOMIC_CMPXCHG { 0 } else { insn.src };
                        if let Some(slot) = st.regs.get_mut(r as usize) {
                            *slot = Val::Scalar(Range::bits(8 * size as u32));
                        }
                    }
                    self.touch(&st, base, insn.off as i64, size);
                    return vec![(next, st)];
                }
                let val = if class(c) == ST {
                    Val::Scalar(Range::exact(insn.imm as i64 as u64))
                } else {
                    st.reg(insn.src)
                };
                self.touch(&st, base, insn.off as i64, size);
                if let Val::Stack { frame, off } = base {
                    let at = off.add(Off::exact(insn.off as i64));
                    if let Some(fr) = st.frames.get_mut(frame as usize) {
                        match at.constant() {
                            Some(a) if size == 8 && a % 8 == 0 => {
                                fr.slots.insert(a, val);
                            }
                            Some(a) => {
                                fr.slots.insert(a.div_euclid(8) * 8, Val::scalar_full());
                            }
                            None => fr.slots.clear(),
                        }
                    }
                }
                vec![(next, st)]
            }
            _ => self.jmp(pc, insn, st),
        }
    }

    /// Record stack/packet reach for a memory access.
    fn touch(&mut self, st: &State, base: Val, off: i64, size: u64) {
        match base {
            Val::Stack { frame, off: o } => {
                self.note_stack(st, frame, o.add(Off::exact(off)), size)
            }
            Val::Pkt(o) => self.note_pkt(o.add(Off::exact(off)), size),
            _ => {}
        }
    }

    fn load(&mut self, st: &State, base: Val, off: i64, size: u64, sx: bool) -> Val {
        self.touch(st, base, off, size);
        let plain = if sx { Val::scalar_full() } else { Val::Scalar(Range::bits(8 * size as u32)) };
        match base {
            Val::Stack { frame, off: o } => {
                let at = o.add(Off::exact(off));
                match (at.constant(), st.frames.get(frame as usize)) {
                    (Some(a), Some(fr)) if size == 8 && a % 8 == 0 => match fr.slots.get(&a) {
                        Some(v) if !sx => *v,
                        _ => plain,
                    },
                    (Some(a), Some(fr)) => match fr.slots.get(&(a.div_euclid(8) * 8)) {
                        // A narrow read of a spilled constant: take the bytes (little-endian host).
                        Some(Val::Scalar(r)) if !sx => match r.constant() {
                            Some(v) => {
                                let shift = (a.rem_euclid(8) * 8) as u32;
                                let bits = 8 * size as u32;
                                let m = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
                                Val::Scalar(Range::exact((v >> shift) & m))
                            }
                            None => plain,
                        },
                        _ => plain,
                    },
                    _ => plain,
                }
            }
            Val::Ctx(c) => {
                let at = c + off;
                match self.ptype {
                    ProgType::Xdp if size == 4 => match at {
                        ctx_off::XDP_DATA => Val::Pkt(Off::ZERO),
                        ctx_off::XDP_DATA_END => Val::PktEnd,
                        ctx_off::XDP_DATA_META => Val::PktMeta(Off::ZERO),
                        _ => plain,
                    },
                    ProgType::SchedCls if size == 4 => match at {
                        ctx_off::SKB_DATA => Val::Pkt(Off::ZERO),
                        ctx_off::SKB_DATA_END => Val::PktEnd,
                        ctx_off::SKB_DATA_META => Val::PktMeta(Off::ZERO),
                        _ => plain,
                    },
                    _ => plain,
                }
            }
            _ => plain,
        }
    }

    fn alu(&mut self, insn: &Insn, st: &State) -> Val {
        let c = insn.code;
        let wide = class(c) == ALU64;
        let o = op(c);
        let dst = st.reg(insn.dst);
        let src = if is_x(c) {
            st.reg(insn.src)
        } else if wide {
            Val::Scalar(Range::exact(insn.imm as i64 as u64))
        } else {
            Val::Scalar(Range::exact(insn.imm as u32 as u64))
        };
        if o == MOV {
            if insn.off != 0 && is_x(c) {
                // MOVSX: sign-extend the low `off` bits.
                return match src.range().and_then(|r| r.constant()) {
                    Some(v) => {
                        let bits = insn.off as u32;
                        let sh = 64 - bits.min(64);
                        let x = ((v << sh) as i64 >> sh) as u64;
                        Val::Scalar(Range::exact(if wide { x } else { x as u32 as u64 }))
                    }
                    None => Val::Scalar(if wide { Range::FULL } else { Range::U32 }),
                };
            }
            return if wide {
                src
            } else {
                match src {
                    Val::Scalar(r) => Val::Scalar(trunc32(r)),
                    _ => Val::Scalar(Range::U32),
                }
            };
        }
        if o == END {
            let bits = insn.imm as u32;
            return match dst.range().and_then(|r| r.constant()) {
                Some(v) => {
                    let swap = class(c) != ALU || is_x(c); // to-le is a no-op on a little-endian host
                    let x = match (bits, swap) {
                        (16, true) => (v as u16).swap_bytes() as u64,
                        (32, true) => (v as u32).swap_bytes() as u64,
                        (64, true) => v.swap_bytes(),
                        (16, false) => v & 0xffff,
                        (32, false) => v & 0xffff_ffff,
                        _ => v,
                    };
                    Val::Scalar(Range::exact(x))
                }
                None => Val::Scalar(Range::bits(bits.min(64))),
            };
        }
        // Pointer arithmetic (64-bit add/sub of a scalar).
        if wide && (o == ADD || o == SUB) {
            if let Some(p) = ptr_add(dst, src, o == SUB) {
                return p;
            }
            if o == ADD {
                if let (
                    Val::Scalar(_),
                    p @ (Val::Pkt(_) | Val::Stack { .. } | Val::MapValue { .. } | Val::PktMeta(_)),
                ) = (dst, src)
                {
                    if let Some(v) = ptr_add(p, dst, false) {
                        return v;
                    }
                }
            }
        }
        let (Val::Scalar(a), Val::Scalar(b)) = (dst, src) else {
            return Val::Scalar(if wide { Range::FULL } else { Range::U32 });
        };
        if wide {
            scalar_op(o, insn.off, a, b, 64)
        } else {
            let r = scalar_op(o, insn.off, trunc32(a), trunc32(b), 32);
            match r {
                Val::Scalar(r) => Val::Scalar(trunc32(r)),
                v => v,
            }
        }
    }

    fn jmp(&mut self, pc: usize, insn: &Insn, mut st: State) -> Vec<(usize, State)> {
        let c = insn.code;
        let o = op(c);
        let target = (pc as i64 + 1 + insn.off as i64).max(0) as usize;
        match o {
            JA => {
                let t = if class(c) == JMP32 {
                    (pc as i64 + 1 + insn.imm as i64).max(0) as usize
                } else {
                    target
                };
                vec![(t, st)]
            }
            EXIT => {
                if st.frames.len() <= 1 {
                    return vec![];
                }
                let fr = st.frames.pop().expect("checked above");
                for (i, v) in fr.saved.iter().enumerate() {
                    st.regs[6 + i] = *v;
                }
                for r in 1..=5 {
                    st.regs[r] = Val::Uninit;
                }
                st.regs[10] = Val::Stack { frame: (st.frames.len() - 1) as u8, off: Off::ZERO };
                vec![(fr.ret_pc, st)]
            }
            CALL => self.call(pc, insn, st),
            _ => {
                let wide = class(c) == JMP;
                let a = st.reg(insn.dst);
                let b = if is_x(c) {
                    st.reg(insn.src)
                } else if wide {
                    Val::Scalar(Range::exact(insn.imm as i64 as u64))
                } else {
                    Val::Scalar(Range::exact(insn.imm as u32 as u64))
                };
                // NULL test of a maybe-NULL map value.
                if let (Val::MapValue { maybe_null: true, id, .. }, Val::Scalar(r)) = (a, b) {
                    if r.constant() == Some(0) && (o == JEQ || o == JNE) {
                        let mut null = st.clone();
                        let mut nonnull = st;
                        resolve_null(&mut null, insn.dst, id, true);
                        resolve_null(&mut nonnull, insn.dst, id, false);
                        let (t, f) = if o == JEQ { (null, nonnull) } else { (nonnull, null) };
                        return vec![(pc + 1, f), (target, t)];
                    }
                }
                let (Val::Scalar(ra), Val::Scalar(rb)) = (a, b) else {
                    return vec![(pc + 1, st.clone()), (target, st)];
                };
                if !wide && (ra.max > u32::MAX as u64 || rb.max > u32::MAX as u64) {
                    // 32-bit compare of wider ranges: no refinement.
                    return vec![(pc + 1, st.clone()), (target, st)];
                }
                let bits = if wide { 64 } else { 32 };
                let mut out = Vec::new();
                if let Some((x, y)) = refine(o, ra, rb, bits, false) {
                    let mut s = st.clone();
                    set_scalar(&mut s, insn.dst, x);
                    if is_x(c) {
                        set_scalar(&mut s, insn.src, y);
                    }
                    out.push((pc + 1, s));
                }
                if let Some((x, y)) = refine(o, ra, rb, bits, true) {
                    set_scalar(&mut st, insn.dst, x);
                    if is_x(c) {
                        set_scalar(&mut st, insn.src, y);
                    }
                    out.push((target, st));
                }
                out
            }
        }
    }

    fn call(&mut self, pc: usize, insn: &Insn, mut st: State) -> Vec<(usize, State)> {
        if is_x(insn.code) {
            // callx: target unknown; continue as if it returned anything.
            st.regs[0] = Val::scalar_full();
            for r in 1..=5 {
                st.regs[r] = Val::Uninit;
            }
            return vec![(pc + 1, st)];
        }
        if insn.src == PSEUDO_CALL {
            let target = (pc as i64 + 1 + insn.imm as i64).max(0) as usize;
            if st.frames.len() >= self.limits.max_frames {
                st.regs[0] = Val::scalar_full();
                for r in 1..=5 {
                    st.regs[r] = Val::Uninit;
                }
                return vec![(pc + 1, st)];
            }
            let saved = [st.regs[6], st.regs[7], st.regs[8], st.regs[9]];
            st.frames.push(Frame { func: target, ret_pc: pc + 1, saved, slots: BTreeMap::new() });
            st.regs[10] = Val::Stack { frame: (st.frames.len() - 1) as u8, off: Off::ZERO };
            for r in [0, 6, 7, 8, 9] {
                st.regs[r] = Val::Uninit;
            }
            return vec![(target, st)];
        }
        let id = insn.imm;
        let r0 = if insn.src == CALL_HELPER {
            match id {
                helper::MAP_LOOKUP_ELEM => {
                    if let (Val::MapPtr(m), Val::Stack { frame, off }) = (st.regs[1], st.regs[2]) {
                        let ks =
                            self.prog.maps.get(m as usize).map(|m| m.key_size as u64).unwrap_or(1);
                        self.note_stack(&st, frame, off, ks);
                    }
                    match st.regs[1] {
                        Val::MapPtr(m) => Val::MapValue {
                            map: m,
                            off: Off::ZERO,
                            maybe_null: true,
                            id: pc as u32 + 1,
                        },
                        _ => Val::Top,
                    }
                }
                helper::MAP_UPDATE_ELEM | helper::MAP_DELETE_ELEM => {
                    if let Val::MapPtr(m) = st.regs[1] {
                        let spec = self.prog.maps.get(m as usize);
                        if let Val::Stack { frame, off } = st.regs[2] {
                            self.note_stack(
                                &st,
                                frame,
                                off,
                                spec.map(|m| m.key_size as u64).unwrap_or(1),
                            );
                        }
                        if let (true, Val::Stack { frame, off }) =
                            (id == helper::MAP_UPDATE_ELEM, st.regs[3])
                        {
                            self.note_stack(
                                &st,
                                frame,
                                off,
                                spec.map(|m| m.value_size as u64).unwrap_or(1),
                            );
                        }
                    }
                    Val::scalar_full()
                }
                helper::GET_PRANDOM_U32 => Val::Scalar(Range::U32),
                _ => {
                    // An unknown helper may write through any stack pointer argument.
                    for r in 1..=5 {
                        if let Val::Stack { frame, .. } = st.regs[r] {
                            if let Some(fr) = st.frames.get_mut(frame as usize) {
                                fr.slots.clear();
                            }
                        }
                    }
                    Val::scalar_full()
                }
            }
        } else {
            Val::scalar_full()
        };
        if insn.src == CALL_HELPER
            && matches!(id, helper::XDP_ADJUST_HEAD | helper::XDP_ADJUST_TAIL | 54)
        {
            // The verifier invalidates every packet pointer after these
            // (clear_all_pkt_pointers): they become unknown scalars.
            st.map_vals(|v| match v {
                Val::Pkt(_) | Val::PktEnd | Val::PktMeta(_) => Val::scalar_full(),
                v => v,
            });
        }
        st.regs[0] = r0;
        for r in 1..=5 {
            st.regs[r] = Val::Uninit;
        }
        vec![(pc + 1, st)]
    }
}

fn trunc32(r: Range) -> Range {
    if r.max <= u32::MAX as u64 {
        r
    } else if let Some(v) = r.constant() {
        Range::exact(v as u32 as u64)
    } else {
        Range::U32
    }
}

fn set_scalar(st: &mut State, r: u8, v: Range) {
    if let Some(slot) = st.regs.get_mut(r as usize) {
        if matches!(slot, Val::Scalar(_)) {
            *slot = Val::Scalar(v);
        }
    }
}

fn resolve_null(st: &mut State, reg: u8, id: u32, is_null: bool) {
    let f = |v: Val| match v {
        Val::MapValue { id: i, map, off, .. } if i == id && id != 0 => {
            if is_null {
                Val::Scalar(Range::exact(0))
            } else {
                Val::MapValue { map, off, maybe_null: false, id: i }
            }
        }
        v => v,
    };
    st.map_vals(f);
    if id == 0 {
        if let Some(Val::MapValue { map, off, .. }) = st.regs.get(reg as usize).copied() {
            st.regs[reg as usize] = if is_null {
                Val::Scalar(Range::exact(0))
            } else {
                Val::MapValue { map, off, maybe_null: false, id }
            };
        }
    }
}

fn ptr_add(p: Val, s: Val, sub: bool) -> Option<Val> {
    let Val::Scalar(r) = s else { return None };
    let mut d = Off::from_scalar(r);
    if sub {
        d = d.neg();
    }
    Some(match p {
        Val::Pkt(o) => Val::Pkt(o.add(d)),
        Val::PktMeta(o) => Val::PktMeta(o.add(d)),
        Val::Stack { frame, off } => Val::Stack { frame, off: off.add(d) },
        Val::MapValue { map, off, maybe_null, id } => {
            Val::MapValue { map, off: off.add(d), maybe_null, id }
        }
        Val::Ctx(c) => match d.constant() {
            Some(k) => Val::Ctx(c + k),
            None => Val::Top,
        },
        _ => return None,
    })
}

/// Scalar ALU on unsigned ranges of `bits` width (inputs already truncated).
fn scalar_op(o: u8, off: i16, a: Range, b: Range, bits: u32) -> Val {
    let full = Range::bits(bits);
    let mask = full.max;
    if let (Some(x), Some(y)) = (a.constant(), b.constant()) {
        let sh = (y & (bits as u64 - 1)) as u32;
        let v = match o {
            ADD => x.wrapping_add(y),
            SUB => x.wrapping_sub(y),
            MUL => x.wrapping_mul(y),
            DIV if off != 0 => return Val::Scalar(full),
            DIV => x.checked_div(y).unwrap_or(0),
            MOD if off != 0 => return Val::Scalar(full),
            MOD => x.checked_rem(y).unwrap_or(x),
            OR => x | y,
            AND => x & y,
            XOR => x ^ y,
            LSH => x << sh,
            RSH => x >> sh,
            ARSH => {
                if bits == 32 {
                    ((x as u32 as i32) >> sh) as u32 as u64
                } else {
                    ((x as i64) >> sh) as u64
                }
            }
            NEG => x.wrapping_neg(),
            _ => return Val::Scalar(full),
        };
        return Val::Scalar(Range::exact(v & mask));
    }
    let hi = |m: u64| if m == 0 { 0 } else { Range::bits(64 - m.leading_zeros()).max };
    // Adding a negative constant (`w3 += -1` is encoded with imm 0xffffffff)
    // is a subtraction modulo 2^bits, and subtracting one is an addition.
    // Taken literally the sum overflowed the width and the range became the
    // full one: a loop counter lost its bound, and so did every pointer the
    // loop advances.
    let neg = |y: u64| (y > mask >> 1).then(|| (mask - y).wrapping_add(1) & mask);
    match (o, b.constant().and_then(neg)) {
        (ADD, Some(k)) if a.min >= k => {
            return Val::Scalar(Range { min: a.min - k, max: a.max - k });
        }
        (SUB, Some(k)) => {
            return Val::Scalar(match a.max.checked_add(k) {
                Some(mx) if mx <= mask => Range { min: a.min + k, max: mx },
                _ => full,
            });
        }
        _ => {}
    }
    let r = match o {
        ADD => match (a.max.checked_add(b.max), a.min.wrapping_add(b.min)) {
            (Some(mx), mn) if mx <= mask => Range { min: mn, max: mx },
            _ => full,
        },
        SUB if a.min >= b.max => Range { min: a.min - b.max, max: a.max - b.min },
        MUL => match a.max.checked_mul(b.max) {
            Some(mx) if mx <= mask => Range { min: a.min * b.min, max: mx },
            _ => full,
        },
        DIV if off == 0 => match b.constant() {
            Some(0) => Range::exact(0),
            Some(y) => Range { min: a.min / y, max: a.max / y },
            None => Range { min: 0, max: a.max },
        },
        MOD if off == 0 => match b.constant() {
            Some(0) => a,
            Some(y) => Range { min: 0, max: a.max.min(y - 1) },
            None => Range { min: 0, max: a.max },
        },
        AND => Range { min: 0, max: a.max.min(b.max) },
        OR => Range { min: a.min.max(b.min), max: hi(a.max.max(b.max)) },
        XOR => Range { min: 0, max: hi(a.max.max(b.max)) },
        LSH => match b.constant() {
            Some(s)
                if s < bits as u64 && a.max.leading_zeros() as u64 >= s + (64 - bits as u64) =>
            {
                Range { min: a.min << s, max: a.max << s }
            }
            _ => full,
        },
        RSH => match b.constant() {
            Some(s) if s < bits as u64 => Range { min: a.min >> s, max: a.max >> s },
            _ => Range { min: 0, max: a.max },
        },
        ARSH if a.max <= mask >> 1 => match b.constant() {
            Some(s) if s < bits as u64 => Range { min: a.min >> s, max: a.max >> s },
            _ => Range { min: 0, max: a.max },
        },
        _ => full,
    };
    Val::Scalar(r)
}

/// Refine `a op b` for the taken (`taken = true`) or fall-through side.
/// Returns `None` when that side is infeasible.
fn refine(o: u8, a: Range, b: Range, bits: u32, taken: bool) -> Option<(Range, Range)> {
    let smax = if bits == 64 { i64::MAX as u64 } else { i32::MAX as u64 };
    // Signed compares refine like unsigned ones when both sides are non-negative.
    let o = match o {
        JSGT | JSGE | JSLT | JSLE if a.max <= smax && b.max <= smax => match o {
            JSGT => JGT,
            JSGE => JGE,
            JSLT => JLT,
            _ => JLE,
        },
        o => o,
    };
    // Normalise to the taken sense.
    let (o, negate) = match (o, taken) {
        (o, true) => (o, false),
        (JEQ, false) => (JNE, false),
        (JNE, false) => (JEQ, false),
        (JGT, false) => (JLE, false),
        (JGE, false) => (JLT, false),
        (JLT, false) => (JGE, false),
        (JLE, false) => (JGT, false),
        (o, false) => (o, true),
    };
    match o {
        JEQ => {
            let mn = a.min.max(b.min);
            let mx = a.max.min(b.max);
            (mn <= mx).then_some((Range { min: mn, max: mx }, Range { min: mn, max: mx }))
        }
        JNE => {
            if let (Some(x), Some(y)) = (a.constant(), b.constant()) {
                return (x != y).then_some((a, b));
            }
            let mut a2 = a;
            if let Some(y) = b.constant() {
                if a2.min == y {
                    a2.min += 1;
                }
                if a2.max == y {
                    a2.max -= 1;
                }
            }
            Some((a2, b))
        }
        JGT => (a.max > b.min).then(|| {
            (
                Range { min: a.min.max(b.min + 1), max: a.max },
                Range { min: b.min, max: b.max.min(a.max - 1) },
            )
        }),
        JGE => (a.max >= b.min).then(|| {
            (
                Range { min: a.min.max(b.min), max: a.max },
                Range { min: b.min, max: b.max.min(a.max) },
            )
        }),
        JLT => (a.min < b.max).then(|| {
            (
                Range { min: a.min, max: a.max.min(b.max - 1) },
                Range { min: b.min.max(a.min + 1), max: b.max },
            )
        }),
        JLE => (a.min <= b.max).then(|| {
            (
                Range { min: a.min, max: a.max.min(b.max) },
                Range { min: b.min.max(a.min), max: b.max },
            )
        }),
        JSET => {
            if let (Some(x), Some(y)) = (a.constant(), b.constant()) {
                let t = x & y != 0;
                return (t != negate).then_some((a, b));
            }
            if b.constant() == Some(0) || a.max == 0 {
                return negate.then_some((a, b));
            }
            Some((a, b))
        }
        _ => {
            // Signed compares with possibly-negative sides: decide only constants.
            if let (Some(x), Some(y)) = (a.constant(), b.constant()) {
                let (x, y) = if bits == 64 {
                    (x as i64, y as i64)
                } else {
                    (x as u32 as i32 as i64, y as u32 as i32 as i64)
                };
                let t = match o {
                    JSGT => x > y,
                    JSGE => x >= y,
                    JSLT => x < y,
                    _ => x <= y,
                };
                return (t != negate).then_some((a, b));
            }
            Some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refine_unsigned_sides() {
        let a = Range { min: 0, max: 100 };
        let k = Range::exact(10);
        assert_eq!(refine(JGT, a, k, 64, true).unwrap().0, Range { min: 11, max: 100 });
        assert_eq!(refine(JGT, a, k, 64, false).unwrap().0, Range { min: 0, max: 10 });
        assert!(refine(JGT, Range::exact(5), k, 64, true).is_none());
        assert_eq!(refine(JEQ, a, k, 64, true).unwrap().0, k);
        assert!(refine(JNE, k, k, 64, true).is_none());
    }

    #[test]
    fn scalar_ops_bound_results() {
        let r = |v| match v {
            Val::Scalar(r) => r,
            _ => panic!("not scalar"),
        };
        let byte = Range::bits(8);
        assert_eq!(
            r(scalar_op(AND, 0, Range::FULL, Range::exact(0xf), 64)),
            Range { min: 0, max: 0xf }
        );
        assert_eq!(r(scalar_op(LSH, 0, Range::exact(0xf), Range::exact(2), 64)), Range::exact(60));
        assert_eq!(r(scalar_op(MUL, 0, byte, byte, 64)), Range { min: 0, max: 255 * 255 });
        assert_eq!(r(scalar_op(ADD, 0, Range::U32, Range::U32, 32)), Range::U32);
        assert_eq!(
            r(scalar_op(SUB, 0, Range::exact(1), Range::exact(2), 64)),
            Range::exact(u64::MAX)
        );
    }

    #[test]
    fn adding_a_negative_constant_subtracts() {
        let r = |v| match v {
            Val::Scalar(r) => r,
            _ => panic!("not scalar"),
        };
        // `w3 += -1` on a loop counter in [1, 6]: imm -1 is 0xffffffff in
        // 32 bits; (c + 0xffffffff) mod 2^32 = c - 1, so [0, 5].
        let counter = Range { min: 1, max: 6 };
        assert_eq!(
            r(scalar_op(ADD, 0, counter, Range::exact(0xffff_ffff), 32)),
            Range { min: 0, max: 5 }
        );
        // 64-bit: r += -4 on [4, 10] is [0, 6].
        assert_eq!(
            r(scalar_op(ADD, 0, Range { min: 4, max: 10 }, Range::exact((-4i64) as u64), 64)),
            Range { min: 0, max: 6 }
        );
        // Where the subtraction can go below zero it wraps: the full range.
        assert_eq!(
            r(scalar_op(ADD, 0, Range { min: 0, max: 6 }, Range::exact(0xffff_ffff), 32)),
            Range::U32
        );
        // w -= -2 on [0, 10] is [2, 12].
        assert_eq!(
            r(scalar_op(SUB, 0, Range { min: 0, max: 10 }, Range::exact(0xffff_fffe), 32)),
            Range { min: 2, max: 12 }
        );
    }
}
