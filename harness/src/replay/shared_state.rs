//! Can a program's packets be split across workers without changing what
//! it does? A static, conservative answer.
//!
//! Parallel replay gives each worker its own engine, so each worker has its
//! own copy of every map. That is exactly the kernel's model for per-CPU
//! maps (one instance per CPU), but for any other map the workers' copies
//! drift apart where the kernel would have one shared instance. So the
//! program is *parallel-safe* only if it never writes a non-per-CPU map:
//!
//! - no store, and no atomic, through a pointer to a value of a map that is
//!   not per-CPU (found by `bpf_map_lookup_elem` or a direct global-data
//!   `lddw`);
//! - no `bpf_map_update_elem`/`bpf_map_delete_elem` on such a map;
//! - no such value pointer passed to a helper that may write through it, or
//!   stored where this analysis cannot follow it;
//! - no ring buffer reservations or output (the engine models the ring's
//!   capacity, which workers would each have whole);
//! - no `bpf_get_prandom_u32` (each engine has its own stream, so which
//!   number a packet draws depends on the split) or
//!   `bpf_get_smp_processor_id` (it answers the worker's number).
//!
//! Maps the program only reads (blocklists, PROG_ARRAY, DEVMAP, ...) are
//! fine: every worker's copy stays equal to the initial contents. The rule
//! is deliberately stricter than "state is per flow": a HASH keyed by flow
//! and written would be safe under RSS, but telling a flow key from any
//! other key is beyond a static check, so it is reported as shared.
//!
//! The analysis is a forward data-flow over each program's instructions
//! tracking, per register and per 8-byte stack slot, which maps a value may
//! point into (pointer arithmetic keeps the tag; anything else clears it).
//! Joins are unions, so the result over-approximates every path. Values
//! spilled other than as whole 8-byte stack slots count as escaped.
//! Subprogram calls enter the callee with the caller's registers; a
//! subprogram's return value is a scalar (the verifier refuses anything
//! else from a static subprogram, see kernel/bpf/verifier.c
//! check_return_code / "R0 ... is not a scalar value").

use std::collections::VecDeque;
use std::fmt;

use crate::engine::helpers::ids;
use crate::isa::opcode::*;
use crate::isa::Insn;
use crate::program::{MapDef, MapType, Object};

/// One reason a program's state is shared between packets of different flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedUse {
    pub program: String,
    pub insn: usize,
    pub what: String,
}

impl fmt::Display for SharedUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} insn {}: {}", self.program, self.insn, self.what)
    }
}

/// Everything that makes splitting `obj`'s programs across workers unsafe
/// (all XDP programs of the object, since tail calls can reach any of them).
/// Empty means parallel replay gives the single-threaded result.
pub fn shared_state_uses(obj: &Object) -> Vec<SharedUse> {
    let mut out = Vec::new();
    for p in &obj.programs {
        out.extend(analyse(&p.name, &p.insns, &obj.maps));
    }
    out
}

/// Bit 63 of a tag: a map value of a map not known statically.
const UNKNOWN_MAP: u64 = 1 << 63;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Tag {
    /// May point into a value of these maps (bit = map index).
    value: u64,
    /// May be a pointer to these maps themselves (`lddw` of a map fd).
    map: u64,
}

impl Tag {
    fn union(self, o: Tag) -> Tag {
        Tag { value: self.value | o.value, map: self.map | o.map }
    }
}

const SLOTS: usize = 64; // 512-byte stack, 8-byte slots

#[derive(Clone, PartialEq, Eq)]
struct State {
    regs: [Tag; 11],
    stack: [Tag; SLOTS],
}

impl State {
    fn empty() -> State {
        State { regs: [Tag::default(); 11], stack: [Tag::default(); SLOTS] }
    }
    /// Unions `o` in; true if anything changed.
    fn join(&mut self, o: &State) -> bool {
        let before = self.clone();
        for (a, b) in self.regs.iter_mut().zip(o.regs.iter()) {
            *a = a.union(*b);
        }
        for (a, b) in self.stack.iter_mut().zip(o.stack.iter()) {
            *a = a.union(*b);
        }
        *self != before
    }
}

fn slot(off: i16) -> Option<usize> {
    if off < 0 && off % 8 == 0 && (-(off as i32)) as usize <= SLOTS * 8 {
        Some(((-(off as i32)) / 8 - 1) as usize)
    } else {
        None
    }
}

/// Helpers that only read the memory their pointer arguments give.
const READ_ONLY_ARGS: &[i32] = &[
    ids::MAP_LOOKUP_ELEM,
    ids::MAP_UPDATE_ELEM,
    ids::MAP_DELETE_ELEM,
    ids::TRACE_PRINTK,
    ids::PERF_EVENT_OUTPUT,
    ids::CSUM_DIFF,
    ids::XDP_STORE_BYTES,
    ids::TAIL_CALL,
    ids::REDIRECT_MAP,
];

fn shared(def: &MapDef) -> bool {
    !def.map_type.is_percpu()
        && !def.read_only
        && !matches!(def.map_type, MapType::ProgArray | MapType::PerfEventArray)
}

struct Ctx<'a> {
    program: &'a str,
    maps: &'a [MapDef],
    shared_mask: u64,
    found: Vec<SharedUse>,
}

impl Ctx<'_> {
    fn names(&self, mask: u64) -> String {
        let mut v: Vec<String> = (0..self.maps.len().min(63))
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| format!("{} map '{}'", self.maps[i].map_type.name(), self.maps[i].name))
            .collect();
        if mask & UNKNOWN_MAP != 0 {
            v.push("a map not known statically".into());
        }
        v.join(" or ")
    }
    fn report(&mut self, insn: usize, what: String) {
        let u = SharedUse { program: self.program.to_string(), insn, what };
        if !self.found.contains(&u) {
            self.found.push(u);
        }
    }
    /// The shared maps among those `mask` may refer to.
    fn hits(&self, mask: u64) -> u64 {
        mask & (self.shared_mask | UNKNOWN_MAP)
    }
}

fn analyse(program: &str, insns: &[Insn], maps: &[MapDef]) -> Vec<SharedUse> {
    let shared_mask = maps
        .iter()
        .take(63)
        .enumerate()
        .filter(|(_, d)| shared(d))
        .fold(0u64, |m, (i, _)| m | 1 << i);
    let mut cx = Ctx { program, maps, shared_mask, found: Vec::new() };
    let n = insns.len();
    let mut states: Vec<Option<State>> = vec![None; n];
    let mut work = VecDeque::new();
    if n > 0 {
        states[0] = Some(State::empty());
        work.push_back(0usize);
    }
    while let Some(pc) = work.pop_front() {
        let Some(mut st) = states[pc].clone() else { continue };
        let succs = step(&mut cx, insns, pc, &mut st);
        for (to, s) in succs {
            if to >= n {
                continue;
            }
            let changed = match &mut states[to] {
                Some(existing) => existing.join(&s),
                slot @ None => {
                    *slot = Some(s);
                    true
                }
            };
            if changed {
                work.push_back(to);
            }
        }
    }
    cx.found
}

/// Applies instruction `pc` to `st`, reporting shared writes; returns the
/// successors with their states.
fn step(cx: &mut Ctx, insns: &[Insn], pc: usize, st: &mut State) -> Vec<(usize, State)> {
    let i = insns[pc];
    let class = i.class();
    let (dst, src) = (i.dst as usize % 11, i.src as usize % 11);
    let next = pc + 1;
    match class {
        LD if i.is_lddw() => {
            let idx = i.imm as u32 as usize;
            st.regs[dst] = match i.src {
                1 if idx < 63 => Tag { value: 0, map: 1 << idx },
                2 if idx < 63 => Tag { value: 1 << idx, map: 0 },
                1 => Tag { value: 0, map: UNKNOWN_MAP },
                2 => Tag { value: UNKNOWN_MAP, map: 0 },
                _ => Tag::default(),
            };
            vec![(pc + 2, st.clone())]
        }
        LD => {
            // Legacy packet loads write r0 (a scalar).
            st.regs[0] = Tag::default();
            vec![(next, st.clone())]
        }
        LDX => {
            st.regs[dst] = if src == 10 && i.code & 0x18 == SIZE_DW && i.code & 0xe0 == MODE_MEM {
                slot(i.off).map(|s| st.stack[s]).unwrap_or_default()
            } else {
                Tag::default()
            };
            vec![(next, st.clone())]
        }
        ST | STX => {
            let base = st.regs[dst];
            let atomic = class == STX && i.code & 0xe0 == MODE_ATOMIC;
            let hit = cx.hits(base.value);
            if hit != 0 {
                let what = if atomic {
                    format!("atomic operation on a value of {}", cx.names(hit))
                } else {
                    format!("store into a value of {}", cx.names(hit))
                };
                cx.report(pc, what);
            }
            if class == STX {
                let v = st.regs[src];
                let whole_slot = dst == 10 && i.code & 0x18 == SIZE_DW && !atomic;
                match (whole_slot, slot(i.off)) {
                    (true, Some(s)) => st.stack[s] = v,
                    _ => {
                        let esc = cx.hits(v.value);
                        if esc != 0 {
                            cx.report(pc, format!("a pointer into {} is stored where the analysis cannot follow it", cx.names(esc)));
                        }
                        if dst == 10 {
                            if let Some(s) = slot(i.off & !7) {
                                st.stack[s] = Tag::default();
                            }
                        }
                    }
                }
                if atomic && i.imm & ATOMIC_FETCH != 0 {
                    // Fetch variants load into src (cmpxchg into r0).
                    if i.imm == ATOMIC_CMPXCHG {
                        st.regs[0] = Tag::default();
                    } else {
                        st.regs[src] = Tag::default();
                    }
                }
            } else if dst == 10 {
                if let Some(s) = slot(i.off & !7) {
                    st.stack[s] = Tag::default();
                }
            }
            vec![(next, st.clone())]
        }
        ALU | ALU64 => {
            let op = i.code & 0xf0;
            let from_reg = i.code & X != 0;
            st.regs[dst] = match (class, op) {
                (ALU64, MOV) if from_reg && i.off == 0 => st.regs[src],
                (ALU64, ADD) | (ALU64, SUB) if from_reg => st.regs[dst].union(st.regs[src]),
                (ALU64, ADD) | (ALU64, SUB) => st.regs[dst],
                _ => Tag::default(),
            };
            vec![(next, st.clone())]
        }
        JMP | JMP32 => {
            let op = i.code & 0xf0;
            match op {
                EXIT if class == JMP => vec![],
                CALL if class == JMP => call(cx, pc, i, st),
                JA => {
                    // `gotol` (JMP32 JA) keeps its offset in imm.
                    let off = if class == JMP32 { i.imm as i64 } else { i.off as i64 };
                    vec![((pc as i64 + 1 + off) as usize, st.clone())]
                }
                _ => {
                    vec![(next, st.clone()), ((pc as i64 + 1 + i.off as i64) as usize, st.clone())]
                }
            }
        }
        _ => vec![(next, st.clone())],
    }
}

fn call(cx: &mut Ctx, pc: usize, i: Insn, st: &mut State) -> Vec<(usize, State)> {
    let next = pc + 1;
    if i.src == 1 {
        // BPF-to-BPF call: the callee starts with the caller's argument
        // registers and a frame of its own; r0 comes back a scalar and
        // r1-r5 are clobbered.
        let mut callee = st.clone();
        callee.stack = [Tag::default(); SLOTS];
        let target = (pc as i64 + 1 + i.imm as i64) as usize;
        let mut after = st.clone();
        for r in 0..=5 {
            after.regs[r] = Tag::default();
        }
        return vec![(target, callee), (next, after)];
    }
    let id = i.imm;
    let r1 = st.regs[1];
    let mut r0 = Tag::default();
    match id {
        ids::MAP_LOOKUP_ELEM => {
            r0 = Tag { value: if r1.map == 0 { UNKNOWN_MAP } else { r1.map }, map: 0 };
        }
        ids::MAP_UPDATE_ELEM | ids::MAP_DELETE_ELEM => {
            let hit = if r1.map == 0 { UNKNOWN_MAP } else { cx.hits(r1.map) };
            if hit != 0 {
                let verb = if id == ids::MAP_UPDATE_ELEM {
                    "bpf_map_update_elem"
                } else {
                    "bpf_map_delete_elem"
                };
                cx.report(pc, format!("{verb} on {}", cx.names(hit)));
            }
        }
        ids::RINGBUF_OUTPUT | ids::RINGBUF_RESERVE => {
            cx.report(
                pc,
                "ring buffer output (the ring's free space is shared by every packet)".into(),
            );
        }
        ids::GET_PRANDOM_U32 => {
            cx.report(pc, "bpf_get_prandom_u32 (each worker draws from its own stream)".into());
        }
        ids::GET_SMP_PROCESSOR_ID => {
            cx.report(pc, "bpf_get_smp_processor_id (answers the worker's number)".into());
        }
        _ => {}
    }
    if !READ_ONLY_ARGS.contains(&id) {
        for r in 1..=5 {
            let hit = cx.hits(st.regs[r].value);
            if hit != 0 {
                cx.report(
                    pc,
                    format!(
                        "a pointer into {} is passed to helper {} which may write through it",
                        cx.names(hit),
                        crate::engine::helper_name(id)
                    ),
                );
            }
        }
    }
    for r in 1..=5 {
        st.regs[r] = Tag::default();
    }
    st.regs[0] = r0;
    vec![(next, st.clone())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::asm::assemble;
    use crate::program::MapOrigin;

    fn map(name: &str, t: MapType) -> MapDef {
        MapDef {
            name: name.into(),
            map_type: t,
            key_size: 4,
            value_size: 8,
            max_entries: 4,
            flags: 0,
            origin: MapOrigin::BtfMaps,
            initial_data: None,
            read_only: false,
            inner: None,
            init_slots: Vec::new(),
        }
    }

    /// Looks up map 0 with key 0, then runs `tail` with the value in r0.
    fn with_lookup(tail: &str) -> Vec<Insn> {
        let mut p = assemble(&format!("mov %r1, 0\nstxw [%r10-4], %r1\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, 0\ncall 1\njeq %r0, 0, +{}\n{tail}\nmov %r0, 2\nexit", tail.lines().count())).unwrap();
        // Make the lddw a map reference (src = PSEUDO_MAP_FD, imm = map 0).
        let at = p.iter().position(|i| i.is_lddw()).unwrap();
        p[at].src = 1;
        p
    }

    #[test]
    fn store_into_percpu_value_is_fine_into_array_is_not() {
        let p = with_lookup("mov %r1, 1\nstxdw [%r0+0], %r1");
        assert!(analyse("t", &p, &[map("stats", MapType::PercpuArray)]).is_empty());
        let found = analyse("t", &p, &[map("totals", MapType::Array)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].what.contains("store into a value of ARRAY map 'totals'"), "{}", found[0]);
    }

    #[test]
    fn atomic_on_shared_value_is_reported_as_atomic() {
        let p = with_lookup("mov %r1, 1\nlock add [%r0+0], %r1");
        let found = analyse("t", &p, &[map("totals", MapType::Hash)]);
        assert!(
            found
                .iter()
                .any(|u| u.what.starts_with("atomic operation on a value of HASH map 'totals'")),
            "{found:?}"
        );
    }

    #[test]
    fn reading_a_shared_map_is_fine() {
        let p = with_lookup("ldxdw %r1, [%r0+0]");
        assert!(analyse("t", &p, &[map("blocked", MapType::Hash)]).is_empty());
    }

    /// The value pointer survives a spill to the stack and a reload.
    #[test]
    fn spilled_pointer_is_followed() {
        let p = with_lookup(
            "stxdw [%r10-16], %r0\nldxdw %r3, [%r10-16]\nmov %r1, 1\nstxb [%r3+2], %r1",
        );
        let found = analyse("t", &p, &[map("totals", MapType::Array)]);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn random_numbers_are_split_dependent() {
        let p = assemble("call 7\nexit").unwrap();
        let found = analyse("t", &p, &[]);
        assert!(found[0].what.contains("bpf_get_prandom_u32"), "{found:?}");
    }
}
