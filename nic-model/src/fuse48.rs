//! hXDP's 6-byte load/store ISA extension (OSDI'20 §3.2, offload-rules.md §3.2): the
//! parallelizer rewrites a group of byte or half-word loads and stores that
//! together copy 6 contiguous bytes (a MAC address) into one 6-byte load and
//! one 6-byte store; the other instructions of the group become NOPs and are
//! not scheduled.
//!
//! The two shapes follow the artifact's state machines
//! (axbryd/hXDP-Artifacts parallelizer/optimizations/LoadStore48.py and
//! Load48Store48.py; candidates are only `ldxb/ldxh/stxb/stxh`,
//! ebpf_parser.py LOAD_TO_SIZE48/STORE_TO_SIZE48):
//!
//! * interleaved: `ld; st; ld; st; ...`, each pair moving the next `size`
//!   bytes (ascending or descending), 6 bytes in all;
//! * grouped: all 6 bytes loaded first (contiguous), then instructions that
//!   touch none of the loaded registers, then the 6 bytes stored (contiguous)
//!   from those registers in load order.
//!
//! This model is stricter than the artifact where the artifact does not
//! check: a group never spans a jump target, a branch or a call, the stored
//! register must be the one loaded for that position, and in the grouped
//! shape no other store may come between. A swap whose loads and stores are
//! interleaved in any other order (as clang emits a MAC swap) is not fused,
//! as the artifact does not fuse it either.

use crate::program::Insn;

const LDXB: u8 = 0x71;
const LDXH: u8 = 0x69;
const STXB: u8 = 0x73;
const STXH: u8 = 0x6b;
const SPAN: i64 = 6;

#[derive(Clone, Copy)]
struct Access {
    load: bool,
    size: i64,
    base: u8,
    off: i64,
    /// Loaded register (load) or stored register (store).
    reg: u8,
}

fn access(i: &Insn) -> Option<Access> {
    let (load, size) = match i.code {
        LDXB => (true, 1),
        LDXH => (true, 2),
        STXB => (false, 1),
        STXH => (false, 2),
        _ => return None,
    };
    let (base, reg) = if load { (i.src, i.dst) } else { (i.dst, i.src) };
    Some(Access { load, size, base, off: i.off as i64, reg })
}

/// Offsets step by `size` in one direction and cover exactly 6 bytes.
fn contiguous(a: &[Access]) -> Option<i64> {
    let s = a.first()?.size;
    if a.len() as i64 * s != SPAN || a.iter().any(|x| x.size != s || x.base != a[0].base) {
        return None;
    }
    let step = if a.len() > 1 { a[1].off - a[0].off } else { return None };
    if step.abs() != s || a.windows(2).any(|w| w[1].off - w[0].off != step) {
        return None;
    }
    Some(step)
}

pub(crate) fn branch_targets(insns: &[Insn]) -> Vec<bool> {
    let mut t = vec![false; insns.len() + 1];
    for (pc, i) in insns.iter().enumerate() {
        if let Some(to) = crate::opcode::jump_target(pc, i).filter(|&to| to < t.len()) {
            t[to] = true;
        }
    }
    t
}

fn is_control(i: &Insn) -> bool {
    matches!(i.code & 0x07, 0x05 | 0x06)
}

/// One fused group: the slots it spans, the kept 6-byte load and store, and
/// the lowest offset each of them covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub span: std::ops::Range<usize>,
    pub load: usize,
    pub store: usize,
    pub load_off: i64,
    pub store_off: i64,
}

/// The groups the extension fuses, in program order.
pub fn groups(insns: &[Insn]) -> Vec<Group> {
    let targets = branch_targets(insns);
    let inside_clear = |from: usize, to: usize| (from + 1..to).all(|p| !targets[p]);
    let mut out = Vec::new();
    let mut pc = 0;
    while pc < insns.len() {
        if let Some(end) = interleaved(insns, pc).or_else(|| grouped(insns, pc)) {
            if inside_clear(pc, end) {
                let accesses: Vec<(usize, Access)> =
                    (pc..end).filter_map(|p| access(&insns[p]).map(|a| (p, a))).collect();
                // Keep the first load and the first store of the group.
                let first =
                    |load: bool| accesses.iter().find(|(_, a)| a.load == load).map(|(p, _)| *p);
                let low = |load: bool| {
                    accesses.iter().filter(|(_, a)| a.load == load).map(|(_, a)| a.off).min()
                };
                if let (Some(load), Some(store), Some(load_off), Some(store_off)) =
                    (first(true), first(false), low(true), low(false))
                {
                    out.push(Group { span: pc..end, load, store, load_off, store_off });
                }
                pc = end;
                continue;
            }
        }
        pc += 1;
    }
    out
}

/// Instructions the extension removes: `true` at each index that becomes a
/// NOP (every group keeps one 6-byte load and one 6-byte store).
pub fn fused48(insns: &[Insn]) -> Vec<bool> {
    let mut removed = vec![false; insns.len()];
    for g in groups(insns) {
        for p in
            g.span.clone().filter(|&p| access(&insns[p]).is_some() && p != g.load && p != g.store)
        {
            removed[p] = true;
        }
    }
    removed
}

/// `ld; st; ld; st; ...` starting at `pc`: returns one past the group's end.
fn interleaved(insns: &[Insn], pc: usize) -> Option<usize> {
    let first = access(insns.get(pc)?)?;
    let n = (SPAN / first.size) as usize;
    let mut loads = Vec::new();
    let mut stores = Vec::new();
    for k in 0..n {
        let l = access(insns.get(pc + 2 * k)?)?;
        let s = access(insns.get(pc + 2 * k + 1)?)?;
        if !l.load || s.load || s.reg != l.reg || l.reg == l.base || l.reg == s.base {
            return None;
        }
        loads.push(l);
        stores.push(s);
    }
    (contiguous(&loads)? == contiguous(&stores)?).then_some(pc + 2 * n)
}

/// Loads first, stores later: returns one past the group's end.
fn grouped(insns: &[Insn], pc: usize) -> Option<usize> {
    let first = access(insns.get(pc)?)?;
    let n = (SPAN / first.size) as usize;
    let loads: Vec<Access> =
        (0..n).map(|k| insns.get(pc + k).and_then(access)).collect::<Option<_>>()?;
    if loads.iter().any(|l| !l.load || l.reg == l.base) {
        return None;
    }
    let regs: Vec<u8> = loads.iter().map(|l| l.reg).collect();
    if (1..n).any(|k| regs[..k].contains(&regs[k])) {
        return None;
    }
    let step = contiguous(&loads)?;
    let mut q = pc + n;
    while let Some(i) = insns.get(q) {
        if access(i).is_some_and(|a| !a.load) {
            break;
        }
        if is_control(i)
            || matches!(i.code & 0x07, 0x02 | 0x03)
            || regs.contains(&i.dst)
            || regs.contains(&i.src)
        {
            return None;
        }
        q += 1;
    }
    let stores: Vec<Access> =
        (0..n).map(|k| insns.get(q + k).and_then(access)).collect::<Option<_>>()?;
    if stores.iter().any(|s| s.load) || contiguous(&stores)? != step {
        return None;
    }
    // In memory order, the k-th stored chunk comes from the k-th loaded one.
    let by_off = |a: &[Access]| {
        let mut v = a.to_vec();
        v.sort_by_key(|x| x.off);
        v.into_iter().map(|x| x.reg).collect::<Vec<_>>()
    };
    (by_off(&loads) == by_off(&stores)).then_some(q + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn { code, dst, src, off, imm: 0 }
    }

    #[test]
    fn interleaved_copy_of_a_mac_is_fused() {
        // memcpy(dst=r2, src=r1, 6) by half-words: 6 insns -> 2.
        let p = [
            i(LDXH, 3, 1, 0),
            i(STXH, 2, 3, 0),
            i(LDXH, 3, 1, 2),
            i(STXH, 2, 3, 2),
            i(LDXH, 3, 1, 4),
            i(STXH, 2, 3, 4),
        ];
        assert_eq!(fused48(&p), [false, false, true, true, true, true]);
    }

    #[test]
    fn grouped_copy_with_unrelated_work_between_is_fused() {
        let p = [
            i(LDXB, 3, 1, 5),
            i(LDXB, 4, 1, 4),
            i(LDXB, 5, 1, 3),
            i(LDXB, 6, 1, 2),
            i(LDXB, 7, 1, 1),
            i(LDXB, 8, 1, 0),
            i(0x07, 0, 0, 0), // r0 += imm: touches none of r3..r8
            i(STXB, 2, 3, 5),
            i(STXB, 2, 4, 4),
            i(STXB, 2, 5, 3),
            i(STXB, 2, 6, 2),
            i(STXB, 2, 7, 1),
            i(STXB, 2, 8, 0),
        ];
        let r = fused48(&p);
        assert_eq!(r.iter().filter(|x| **x).count(), 10, "12 accesses -> 2");
        assert!(!r[0] && !r[7] && !r[6]);
    }

    #[test]
    fn clangs_interleaved_mac_swap_is_not_fused() {
        // What clang emits for the calibration's swap_macs (xdp_tx_macswap.o):
        // the artifact's state machines reset on this order.
        let p = [
            i(LDXH, 2, 1, 0),
            i(LDXH, 3, 1, 6),
            i(STXH, 1, 3, 0),
            i(LDXH, 3, 1, 8),
            i(LDXH, 4, 1, 2),
            i(STXH, 1, 4, 8),
            i(STXH, 1, 3, 2),
            i(LDXH, 3, 1, 10),
            i(LDXH, 4, 1, 4),
            i(STXH, 1, 4, 10),
            i(STXH, 1, 2, 6),
            i(STXH, 1, 3, 4),
        ];
        assert!(fused48(&p).iter().all(|x| !x));
    }

    #[test]
    fn wrong_register_order_or_a_branch_target_inside_blocks_fusion() {
        let swapped = [
            i(LDXH, 3, 1, 0),
            i(LDXH, 4, 1, 2),
            i(LDXH, 5, 1, 4),
            i(STXH, 2, 4, 0),
            i(STXH, 2, 3, 2),
            i(STXH, 2, 5, 4),
        ];
        assert!(fused48(&swapped).iter().all(|x| !x));
        let mut p = vec![
            i(0x05, 0, 0, 2), // goto +2 -> lands on the third insn of the group
            i(LDXH, 3, 1, 0),
            i(STXH, 2, 3, 0),
            i(LDXH, 3, 1, 2),
            i(STXH, 2, 3, 2),
            i(LDXH, 3, 1, 4),
            i(STXH, 2, 3, 4),
        ];
        assert!(fused48(&p).iter().all(|x| !x));
        p[0] = i(0xb7, 0, 0, 0);
        assert_eq!(fused48(&p).iter().filter(|x| **x).count(), 4);
    }
}
