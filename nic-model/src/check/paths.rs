//! Path-sensitive rules, run on the pre-instruction state of every explored
//! path, like the nfp verifier hook (nfp/bpf/verifier.c `nfp_verify_insn`).

use super::{is_nfp, Sink};
use crate::absint::{ctx_off, Kind, Observer, State, Val};
use crate::opcode::*;
use crate::profile::Profile;
use crate::program::{Insn, ProgType, ProgramSpec};
use crate::report::Severity::{self, *};
use crate::rules::RuleId;
use std::collections::{BTreeMap, BTreeSet};

const U32_MAX: u64 = u32::MAX as u64;
/// UAPI `BPF_F_CURRENT_CPU`.
const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;

/// A map_update_elem site: (pc, map, value words known to be zero (`Some(true)`),
/// non-zero (`Some(false)`) or unknown).
type UpdateSite = (usize, u32, Vec<(u64, Option<bool>)>);

pub(super) struct PathChecks<'s, 'p> {
    prog: &'p ProgramSpec,
    profile: &'p Profile,
    sink: &'s mut Sink<'p>,
    nfp: bool,
    ptype: ProgType,
    /// Pointer kind first seen per load/store insn (NFP-S6).
    ptr_kind: BTreeMap<usize, Kind>,
    /// Stack offset first seen per insn (NFP-S5).
    stack_off: BTreeMap<usize, i64>,
    /// perf_event_output data pointer kind per call site.
    event_kind: BTreeMap<usize, Kind>,
    /// (map, 4-byte word) read by LDX / used by atomic add (NFP-I9).
    read_words: BTreeMap<(u32, u64), usize>,
    atomic_words: BTreeMap<(u32, u64), usize>,
    /// map_update_elem sites: (pc, map, value words known to be zero / non-zero / unknown).
    updates: Vec<UpdateSite>,
    /// adjust_head call sites and the constant deltas seen there.
    adjust_head: BTreeMap<usize, BTreeSet<Option<i64>>>,
}

fn sev_for(st: &State) -> Severity {
    // A non-constant value on a single path is non-constant for the kernel
    // too; after a join it may only be an artefact of the join.
    if st.joined {
        CannotProve
    } else {
        Violates
    }
}

impl<'s, 'p> PathChecks<'s, 'p> {
    pub(super) fn new(prog: &'p ProgramSpec, profile: &'p Profile, sink: &'s mut Sink<'p>) -> Self {
        PathChecks {
            prog,
            profile,
            sink,
            nfp: is_nfp(profile),
            ptype: prog.prog_type(),
            ptr_kind: BTreeMap::new(),
            stack_off: BTreeMap::new(),
            event_kind: BTreeMap::new(),
            read_words: BTreeMap::new(),
            atomic_words: BTreeMap::new(),
            updates: Vec::new(),
            adjust_head: BTreeMap::new(),
        }
    }

    fn add(&mut self, rule: RuleId, sev: Severity, msg: String, detail: String, pc: usize) {
        self.sink.add(rule, sev, msg, detail, Some(pc));
    }

    /// Checks that need all paths: atomic counters, adjust_head fast path.
    pub(super) fn finish(self) {
        let PathChecks { sink, read_words, atomic_words, updates, adjust_head, profile, .. } = self;
        for ((map, word), pc) in &atomic_words {
            if let Some(rpc) = read_words.get(&(*map, *word)) {
                sink.add(RuleId::I9, Violates,
                    format!("[nfp] map value use type conflict read vs atomic off: {}", word * 4),
                    format!("the same map value word is read at insn {rpc} and atomically added at insn {pc}"), Some(*pc));
            }
        }
        for (pc, map, words) in &updates {
            for (off, zero) in words {
                if !atomic_words.contains_key(&(*map, off / 4)) {
                    continue;
                }
                let msg = format!("[nfp] value at offset {off}/{off} may be non-zero, bpf_map_update_elem() is required to initialize atomic counters to zero to avoid offload endian issues");
                match zero {
                    Some(true) => {}
                    Some(false) => sink.add(
                        RuleId::I9,
                        Violates,
                        msg,
                        "the stored value word is a known non-zero constant".into(),
                        Some(*pc),
                    ),
                    None => sink.add(
                        RuleId::I9,
                        CannotProve,
                        format!("cannot prove: {msg}"),
                        "the value word on the stack is not known to be zero".into(),
                        Some(*pc),
                    ),
                }
            }
        }
        if let (Some(ah), Some(fast_add)) =
            (&profile.helpers.adjust_head, &profile.helpers.adjust_head_fast_max_add)
        {
            let single_site = adjust_head.len() == 1;
            for (pc, deltas) in &adjust_head {
                let lo = -ah.guaranteed_sub.value;
                let hi = ah.guaranteed_add.value.min(fast_add.value);
                let fast = single_site
                    && deltas.len() == 1
                    && matches!(deltas.iter().next(), Some(Some(d)) if (lo..=hi).contains(d));
                if !fast {
                    sink.add(RuleId::H4, BehaviourDiffers,
                        "adjust_head: slow path, returns -EINVAL at runtime when the new data offset leaves the FW window".into(),
                        format!("fast path needs one call site with one constant delta in [{lo}, {hi}]; runtime window data offset [{}, {}], new length >= 14",
                            ah.off_min.value, ah.off_max.value), Some(*pc));
                }
            }
        }
    }

    fn mem(&mut self, pc: usize, insn: &Insn, st: &State) {
        let c = insn.code;
        let load = class(c) == LDX;
        let atomic = class(c) == STX && mode(c) == MODE_ATOMIC;
        let base_reg = if load { insn.src } else { insn.dst };
        let base = st.reg(base_reg);
        let size = mem_size(c) as u64;
        let kind = base.kind();

        // NFP-S6 and NFP-M1 concern LDX/STX; BPF_ST is not seen by the hook.
        if class(c) != ST && !atomic {
            match kind {
                Kind::Ctx | Kind::Stack | Kind::MapValue | Kind::Pkt => {
                    if let Some(old) = self.ptr_kind.insert(pc, kind) {
                        if old != kind {
                            self.add(RuleId::S6, Violates,
                                format!("[nfp] ptr type changed for instruction {} -> {}", old as i32, kind as i32),
                                format!("r{base_reg} is a different kind of pointer on another path"), pc);
                        }
                    }
                }
                Kind::Unknown => self.add(RuleId::S6, CannotProve,
                    "cannot prove: ptr type is the same on every path".into(),
                    format!("r{base_reg} holds different kinds on joined paths"), pc),
                Kind::PktMeta | Kind::PktEnd | Kind::MapPtr => self.add(RuleId::M1, Violates,
                    format!("[nfp] unsupported ptr type: {}", kind as i32),
                    format!("r{base_reg} is {kind:?}; only ctx, stack, map value and packet pointers can be dereferenced"), pc),
                Kind::Scalar | Kind::NotInit => self.add(RuleId::M1, CannotProve,
                    "cannot prove: access goes through a supported pointer".into(),
                    format!("r{base_reg} is not a pointer on this path (the kernel verifier rejects this itself)"), pc),
            }
        }

        match base {
            Val::Stack { off, .. } => match off.constant() {
                None => self.add(
                    RuleId::S4,
                    sev_for(st),
                    "[nfp] variable ptr stack access".into(),
                    format!("r{base_reg} offset range [{}, {}]", off.min, off.max),
                    pc,
                ),
                Some(o) => {
                    let now = o + insn.off as i64;
                    if let Some(old) = self.stack_off.get(&pc).copied() {
                        if old != now && old.rem_euclid(4) != now.rem_euclid(4) {
                            self.add(
                                RuleId::S5,
                                Violates,
                                format!("[nfp] stack access changed location was:{old} is:{now}"),
                                String::new(),
                                pc,
                            );
                        }
                    } else {
                        self.stack_off.insert(pc, now);
                    }
                }
            },
            Val::MapValue { map, off, .. } => {
                let vsize = self
                    .prog
                    .maps
                    .get(map as usize)
                    .map(|m| m.value_size as i64)
                    .unwrap_or(i64::MAX);
                if atomic {
                    // NFP-I8 destination OK; record words.
                    if let Some(o) = off.constant() {
                        let a = o + insn.off as i64;
                        if a >= 0 {
                            for w in (a as u64 / 4)..((a as u64 + size).div_ceil(4)) {
                                self.atomic_words.entry((map, w)).or_insert(pc);
                            }
                        }
                    }
                } else if class(c) == STX {
                    self.add(
                        RuleId::M2,
                        Violates,
                        "[nfp] map writes not supported".into(),
                        "map values are read-only on the NIC except through atomic add".into(),
                        pc,
                    );
                } else if load {
                    match off.constant() {
                        None => self.add(
                            RuleId::M3,
                            sev_for(st),
                            "[nfp] map value offset is variable".into(),
                            format!("offset range [{}, {}]", off.min, off.max),
                            pc,
                        ),
                        Some(o) => {
                            let a = o + insn.off as i64;
                            if a < 0 || a + size as i64 > vsize {
                                self.add(
                                    RuleId::M3,
                                    Violates,
                                    "[nfp] map value access out-of-bounds".into(),
                                    format!(
                                        "bytes [{a}, {}) of a {vsize}-byte value",
                                        a + size as i64
                                    ),
                                    pc,
                                );
                            } else {
                                for w in (a as u64 / 4)..((a as u64 + size).div_ceil(4)) {
                                    self.read_words.entry((map, w)).or_insert(pc);
                                }
                            }
                        }
                    }
                }
            }
            Val::Ctx(c0) => {
                let at = c0 + insn.off as i64;
                if load {
                    let ok = match self.ptype {
                        ProgType::Xdp => {
                            size == 4 && (at == ctx_off::XDP_DATA || at == ctx_off::XDP_DATA_END)
                        }
                        _ => {
                            size == 4
                                && matches!(
                                    at,
                                    ctx_off::SKB_LEN | ctx_off::SKB_DATA | ctx_off::SKB_DATA_END
                                )
                        }
                    };
                    if !ok {
                        let (rule, fields) = match self.ptype {
                            ProgType::Xdp => (RuleId::M4, "xdp_md.data and xdp_md.data_end"),
                            _ => (RuleId::M6, "__sk_buff.len, .data and .data_end"),
                        };
                        self.add(rule, Violates, "Translation failed with error -95".into(),
                            format!("ctx read of {size} bytes at offset {at}; only {fields} (4 B) are translated"), pc);
                    }
                } else if class(c) == STX && self.ptype == ProgType::Xdp {
                    if at == ctx_off::XDP_RX_QUEUE_INDEX && size == 4 {
                        if !self.profile.helpers.queue_select.value {
                            self.add(
                                RuleId::M5,
                                Violates,
                                "[nfp] queue selection not supported by FW".into(),
                                String::new(),
                                pc,
                            );
                        }
                    } else {
                        self.add(RuleId::M5, Violates, "[nfp] unsupported store to context field".into(),
                            format!("ctx write of {size} bytes at offset {at}; only rx_queue_index (4 B) can be written"), pc);
                    }
                }
            }
            _ => {}
        }

        if atomic && self.profile.isa.atomic_add_to_map_value_only.value {
            match kind {
                Kind::MapValue => {}
                Kind::Unknown => self.add(
                    RuleId::I8,
                    CannotProve,
                    "cannot prove: atomic add goes to a map value pointer".into(),
                    String::new(),
                    pc,
                ),
                k => self.add(
                    RuleId::I8,
                    Violates,
                    format!("[nfp] atomic add not to a map value pointer: {}", k as i32),
                    String::new(),
                    pc,
                ),
            }
            let sk = st.reg(insn.src).kind();
            match sk {
                Kind::Scalar => {}
                Kind::Unknown => self.add(
                    RuleId::I8,
                    CannotProve,
                    "cannot prove: atomic add is of a scalar".into(),
                    String::new(),
                    pc,
                ),
                k => self.add(
                    RuleId::I8,
                    Violates,
                    format!("[nfp] atomic add not of a scalar: {}", k as i32),
                    String::new(),
                    pc,
                ),
            }
        }
    }

    fn alu(&mut self, pc: usize, insn: &Insn, st: &State) {
        let c = insn.code;
        let o = op(c);
        if !(o == MUL || (o == DIV && insn.off == 0)) {
            return;
        }
        let wide = class(c) == ALU64;
        let dst = st.reg(insn.dst).range();
        let src = if is_x(c) { st.reg(insn.src).range() } else { None };
        // Report "violates" when every value breaks the rule, "cannot prove" when some may.
        let check_u32 = |r: Option<crate::absint::Range>| -> Option<Severity> {
            match r {
                Some(r) if r.max <= U32_MAX => None,
                Some(r) if r.min > U32_MAX => Some(Violates),
                _ => Some(CannotProve),
            }
        };
        let msg = |sev: Severity, m: &str| {
            if sev == CannotProve {
                format!("cannot prove: [nfp] {m}")
            } else {
                format!("[nfp] {m}")
            }
        };
        let show = |r: Option<crate::absint::Range>| match r {
            Some(r) => format!("range [{:#x}, {:#x}]", r.min, r.max),
            None => "not a scalar".to_string(),
        };
        if o == MUL {
            if let Some(sev) = check_u32(dst) {
                self.add(
                    RuleId::I2,
                    sev,
                    msg(sev, "multiplicand is not within u32 value range"),
                    format!("r{} {}", insn.dst, show(dst)),
                    pc,
                );
            }
            if is_x(c) {
                if let Some(sev) = check_u32(src) {
                    self.add(
                        RuleId::I2,
                        sev,
                        msg(sev, "multiplier is not within u32 value range"),
                        format!("r{} {}", insn.src, show(src)),
                        pc,
                    );
                }
            } else if wide && insn.imm < 0 {
                self.add(
                    RuleId::I2,
                    Violates,
                    "[nfp] sign extended multiplicand won't be within u32 value range".into(),
                    format!("imm {}", insn.imm),
                    pc,
                );
            }
        } else {
            if let Some(sev) = check_u32(dst) {
                self.add(
                    RuleId::I3,
                    sev,
                    msg(sev, "dividend is not within u32 value range"),
                    format!("r{} {}", insn.dst, show(dst)),
                    pc,
                );
            }
            if is_x(c) {
                match src {
                    Some(r) if r.constant().is_some() => {
                        if r.min > U32_MAX {
                            self.add(
                                RuleId::I3,
                                Violates,
                                "[nfp] divisor is not within u32 value range".into(),
                                show(src),
                                pc,
                            );
                        }
                    }
                    _ => self.add(
                        RuleId::I3,
                        sev_for(st),
                        msg(sev_for(st), "divisor is not constant"),
                        format!("r{} {}", insn.src, show(src)),
                        pc,
                    ),
                }
            } else if insn.imm < 0 {
                self.add(
                    RuleId::I3,
                    Violates,
                    "[nfp] divide by negative constant is not supported".into(),
                    format!("imm {}", insn.imm),
                    pc,
                );
            }
        }
    }

    fn stack_arg(&mut self, pc: usize, fname: &str, r: u8, st: &State) {
        let v = st.reg(r);
        match v {
            Val::Stack { off, .. } => match off.constant() {
                None => self.add(
                    RuleId::H3,
                    sev_for(st),
                    format!("[nfp] {fname}: variable pointer"),
                    format!("r{r}"),
                    pc,
                ),
                Some(o) => {
                    if (-o) % 4 != 0 {
                        self.add(
                            RuleId::H3,
                            Violates,
                            format!("[nfp] {fname}: unaligned stack pointer {}", -o),
                            format!("r{r}"),
                            pc,
                        );
                    }
                }
            },
            Val::Top => self.add(
                RuleId::H3,
                CannotProve,
                format!("cannot prove: {fname}: argument r{r} is a stack pointer"),
                String::new(),
                pc,
            ),
            v => self.add(
                RuleId::H3,
                Violates,
                format!("[nfp] {fname}: unsupported ptr type {}", v.kind() as i32),
                format!("r{r} must point to the stack"),
                pc,
            ),
        }
    }

    fn call(&mut self, pc: usize, insn: &Insn, st: &State) {
        if insn.src != CALL_HELPER || is_x(insn.code) {
            return;
        }
        let id = insn.imm;
        let h = &self.profile.helpers;
        if id == helper::TAIL_CALL && self.nfp {
            self.add(
                RuleId::S7,
                Violates,
                format!("[nfp] unsupported function id: {id}"),
                "tail calls are not supported".into(),
                pc,
            );
            return;
        }
        if let Some(known) = &h.driver_known {
            if !known.value.contains(&id) {
                let name = helper::name(id)
                    .map(|n| format!("bpf_{n}"))
                    .unwrap_or_else(|| format!("helper {id}"));
                self.add(
                    RuleId::H1,
                    Violates,
                    format!("[nfp] unsupported function id: {id}"),
                    format!("{name} is not offloadable"),
                    pc,
                );
                return;
            }
        }
        if let Some(fw) = &h.firmware {
            if !fw.value.contains(&id) {
                let msg = match id {
                    helper::MAP_LOOKUP_ELEM => "[nfp] map_lookup: not supported by FW",
                    helper::MAP_UPDATE_ELEM => "[nfp] map_update: not supported by FW",
                    helper::MAP_DELETE_ELEM => "[nfp] map_delete: not supported by FW",
                    helper::GET_PRANDOM_U32 => {
                        "[nfp] bpf_get_prandom_u32(): FW doesn't support random number generation"
                    }
                    helper::PERF_EVENT_OUTPUT => "[nfp] event_output: not supported by FW",
                    helper::XDP_ADJUST_HEAD => "[nfp] adjust_head not supported by FW",
                    helper::XDP_ADJUST_TAIL => "[nfp] adjust_tail not supported by FW",
                    _ => "[nfp] helper not supported by FW",
                };
                self.add(
                    RuleId::H2,
                    Violates,
                    msg.into(),
                    format!(
                        "the `{}` profile's firmware does not declare helper {id}",
                        self.profile.profile.name
                    ),
                    pc,
                );
                return;
            }
        }
        if !self.nfp {
            return;
        }
        match id {
            helper::MAP_LOOKUP_ELEM => self.stack_arg(pc, "map_lookup", 2, st),
            helper::MAP_DELETE_ELEM => self.stack_arg(pc, "map_delete", 2, st),
            helper::MAP_UPDATE_ELEM => {
                self.stack_arg(pc, "map_update", 2, st);
                self.stack_arg(pc, "map_update", 3, st);
                if let (Val::MapPtr(m), Val::Stack { frame, off }) = (st.reg(1), st.reg(3)) {
                    if let (Some(o), Some(spec)) = (off.constant(), self.prog.maps.get(m as usize))
                    {
                        let slots = st.frames.get(frame as usize).map(|f| &f.slots);
                        let mut words = Vec::new();
                        for w in 0..(spec.value_size as u64).div_ceil(4) {
                            let a = o + 4 * w as i64;
                            let z =
                                slots.and_then(|s| s.get(&(a.div_euclid(8) * 8))).and_then(|v| {
                                    match v {
                                        Val::Scalar(r) => r.constant().map(|c| {
                                            let shift = (a.rem_euclid(8) * 8) as u32;
                                            (c >> shift) & 0xffff_ffff == 0
                                        }),
                                        _ => None,
                                    }
                                });
                            words.push((4 * w, z));
                        }
                        self.updates.push((pc, m, words));
                    }
                }
            }
            helper::PERF_EVENT_OUTPUT => {
                match st.reg(3).range().and_then(|r| r.constant()) {
                    Some(BPF_F_CURRENT_CPU) => {}
                    _ => {
                        let shown = match st.reg(3).range() {
                            Some(r) => format!("[{:#x}, {:#x}]", r.min, r.max),
                            None => "not a scalar".into(),
                        };
                        self.add(
                            RuleId::H6,
                            Violates,
                            format!(
                                "[nfp] event_output: must use BPF_F_CURRENT_CPU, var_off: {shown}"
                            ),
                            String::new(),
                            pc,
                        );
                    }
                }
                let data = st.reg(4);
                let k = match data {
                    Val::Scalar(r) if r.constant() == Some(0) => Some(Kind::Scalar),
                    Val::Stack { .. } | Val::MapValue { .. } | Val::Pkt(_) => Some(data.kind()),
                    _ => None,
                };
                match k {
                    None => self.add(
                        RuleId::H6,
                        Violates,
                        format!("[nfp] event_output: unsupported ptr type: {}", data.kind() as i32),
                        String::new(),
                        pc,
                    ),
                    Some(k) => {
                        if let Some(old) = self.event_kind.insert(pc, k) {
                            if old != k {
                                self.add(
                                    RuleId::H6,
                                    Violates,
                                    format!(
                                        "[nfp] event_output: ptr type changed: {} {}",
                                        old as i32, k as i32
                                    ),
                                    String::new(),
                                    pc,
                                );
                            }
                        }
                    }
                }
                self.add(RuleId::H6, BehaviourDiffers, "[nfp] warning: return codes and behavior of event_output helper differ for offload!".into(),
                    "events are sent asynchronously: success may be returned for a dropped event, and events may be reordered".into(), pc);
            }
            helper::XDP_ADJUST_HEAD => {
                if let Some(ah) = &self.profile.helpers.adjust_head {
                    if !ah.no_meta.value {
                        self.add(RuleId::H4, Violates, "[nfp] adjust_head: FW requires shifting metadata, not supported by the driver".into(), String::new(), pc);
                    }
                }
                // The driver reads the delta as an `int` (nfp/bpf/verifier.c
                // nfp_record_adjust_head: `imm = reg2->var_off.value`), so
                // `w2 = -20` (0xffffffec in the register) is -20, not
                // 4294967276 (which wrongly sent it to the slow path).
                let d =
                    st.reg(2).range().and_then(|r| r.constant()).map(|c| c as u32 as i32 as i64);
                self.adjust_head.entry(pc).or_default().insert(d);
            }
            helper::XDP_ADJUST_TAIL if self.profile.helpers.adjust_tail_shrink_only.value => {
                let r = st.reg(2).range();
                // The delta is an `int`: negative shrinks.
                let grows = match r {
                    Some(r) => match r.constant() {
                        Some(c) => Some((c as u32 as i32) >= 0),
                        None if r.max <= i32::MAX as u64 => Some(true),
                        None => None,
                    },
                    None => None,
                };
                let min_len = self
                    .profile
                    .helpers
                    .min_len_after_adjust
                    .as_ref()
                    .map(|m| m.value)
                    .unwrap_or(14);
                match grows {
                    Some(false) => {}
                    Some(true) => self.add(RuleId::H5, BehaviourDiffers,
                        "adjust_tail: NIC supports shrinking only; returns -EINVAL".into(),
                        format!("delta r2 is never negative here; the NIC also requires the new length >= {min_len}"), pc),
                    None => self.add(RuleId::H5, BehaviourDiffers,
                        "adjust_tail: NIC supports shrinking only; may return -EINVAL".into(),
                        "delta r2 may be non-negative".into(), pc),
                }
            }
            _ => {}
        }
    }

    fn exit(&mut self, pc: usize, st: &State) {
        if st.depth() != 0 {
            return;
        }
        let r0 = st.reg(0);
        match self.ptype {
            ProgType::Xdp => {
                if let Some(max) = &self.profile.exit.xdp_max_action {
                    let r = r0.range();
                    let above = match r {
                        Some(r) => r.max > max.value,
                        None => true,
                    };
                    if above {
                        let shown = match r {
                            Some(r) if r.constant().is_some() => format!("r0 = {}", r.min),
                            Some(r) => format!("r0 in [{}, {}]", r.min, r.max),
                            None => "r0 is not a scalar".into(),
                        };
                        self.add(RuleId::R1, BehaviourDiffers,
                            format!("XDP return codes above {} (including XDP_REDIRECT = 4) are treated as XDP_ABORTED: the packet is dropped", max.value),
                            shown, pc);
                    }
                }
            }
            ProgType::SchedCls if self.profile.exit.tc_constant_return.value => {
                match r0.range().and_then(|r| r.constant()) {
                    Some(c) => {
                        // TC_ACT_SHOT 2, TC_ACT_STOLEN 4, TC_ACT_QUEUED 5; > TC_ACT_REDIRECT (7) is "pass".
                        if c <= 7 && !matches!(c, 2 | 4 | 5) {
                            self.add(
                                RuleId::R2,
                                Violates,
                                format!(
                                    "[nfp] unsupported exit state: {}, imm: {c:x}",
                                    Kind::Scalar as i32
                                ),
                                String::new(),
                                pc,
                            );
                        }
                    }
                    None => {
                        let shown = match r0.range() {
                            Some(r) => format!("[{:#x}, {:#x}]", r.min, r.max),
                            None => format!("{:?}", r0.kind()),
                        };
                        let sev = if r0.kind() == Kind::Scalar { sev_for(st) } else { Violates };
                        self.add(
                            RuleId::R2,
                            sev,
                            format!(
                                "[nfp] unsupported exit state: {}, var_off: {shown}",
                                r0.kind() as i32
                            ),
                            "TC direct-action needs a known constant return code".into(),
                            pc,
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

impl Observer for PathChecks<'_, '_> {
    fn visit(&mut self, pc: usize, insn: &Insn, st: &State) {
        let c = insn.code;
        match class(c) {
            LDX | ST | STX
                if self.nfp && matches!(mode(c), MODE_MEM | MODE_MEMSX | MODE_ATOMIC) =>
            {
                self.mem(pc, insn, st)
            }
            ALU | ALU64 if self.nfp && self.profile.isa.mul_div_u32_only.value => {
                self.alu(pc, insn, st)
            }
            JMP if op(c) == CALL => self.call(pc, insn, st),
            JMP if op(c) == EXIT => self.exit(pc, st),
            _ => {}
        }
    }
}
