//! Control flow between instructions: the successors of each instruction
//! and a cycle search, for the checks that must know whether a program can
//! loop (the kernel's verifier, kernel/bpf/verifier.c `check_cfg`, walks the
//! same edges with a depth-first search).

use crate::opcode::{class, jump_target, op, CALL, EXIT, JA, JMP, JMP32};
use crate::Insn;

/// The instructions that can run right after `pc`: the next slot (two on
/// for a wide `lddw`), a jump target, both for a conditional jump, none for
/// `exit`. A call continues at the next instruction: the callee returns
/// there, and a BPF-to-BPF callee's body is reached through its own entry
/// (see [`function_entries`]).
pub fn successors(insns: &[Insn], pc: usize) -> impl Iterator<Item = usize> {
    let i = insns[pc];
    let c = class(i.code);
    let next = pc + if i.is_lddw() { 2 } else { 1 };
    let (fall, target) = if c == JMP || c == JMP32 {
        match op(i.code) {
            EXIT => (None, None),
            CALL => (Some(next), None),
            JA => (None, jump_target(pc, &i)),
            _ => (Some(next), jump_target(pc, &i)),
        }
    } else {
        (Some(next), None)
    };
    let n = insns.len();
    [fall, target].into_iter().flatten().filter(move |&t| t < n)
}

/// Starts of BPF-to-BPF callees (`call` with the pseudo-call source).
pub fn function_entries(insns: &[Insn]) -> Vec<usize> {
    let mut v: Vec<usize> = (0..insns.len())
        .filter(|&pc| op(insns[pc].code) == CALL && matches!(class(insns[pc].code), JMP | JMP32))
        .filter_map(|pc| jump_target(pc, &insns[pc]))
        .filter(|&t| t < insns.len())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// An edge `(from, to)` that closes a cycle, if the program has one:
/// something that can run the same instruction twice within one call
/// frame. `None` means every run of every function ends within its length.
pub fn find_cycle(insns: &[Insn]) -> Option<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; insns.len()];
    let mut roots = vec![0];
    roots.extend(function_entries(insns));
    for root in roots {
        if root >= insns.len() || mark[root] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (pc, successors not yet visited).
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(root, successors(insns, root).collect())];
        mark[root] = Mark::OnPath;
        while let Some((pc, pending)) = stack.last_mut() {
            let pc = *pc;
            match pending.pop() {
                Some(t) => match mark[t] {
                    Mark::OnPath => return Some((pc, t)),
                    Mark::Done => {}
                    Mark::New => {
                        mark[t] = Mark::OnPath;
                        let next = successors(insns, t).collect();
                        stack.push((t, next));
                    }
                },
                None => {
                    mark[pc] = Mark::Done;
                    stack.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(code: u8, off: i16, imm: i32) -> Insn {
        Insn::new(code, 0, 0, off, imm)
    }
    const MOV: u8 = 0xb7; // r0 = imm
    const JEQ: u8 = 0x15; // if r0 == imm goto +off
    const JA_: u8 = 0x05;
    const EXIT_: u8 = 0x95;

    #[test]
    fn a_backward_jump_without_a_cycle_is_not_a_loop() {
        // 0: r0 = 2; 1: if r0 == 1 goto 3; 2: goto 4; 3: exit; 4: goto 3 (back, no cycle)
        let p = [ins(MOV, 0, 2), ins(JEQ, 1, 1), ins(JA_, 1, 0), ins(EXIT_, 0, 0), ins(JA_, -2, 0)];
        assert_eq!(find_cycle(&p), None);
    }

    #[test]
    fn a_loop_is_found() {
        // 0: r0 = 0; 1: r0 += 1 ... modelled as 1: if r0 == 9 goto 3; 2: goto 1; 3: exit
        let p = [ins(MOV, 0, 0), ins(JEQ, 1, 9), ins(JA_, -2, 0), ins(EXIT_, 0, 0)];
        assert_eq!(find_cycle(&p), Some((2, 1)));
    }

    #[test]
    fn a_self_jump_is_a_loop() {
        let p = [ins(JA_, -1, 0), ins(EXIT_, 0, 0)];
        assert_eq!(find_cycle(&p), Some((0, 0)));
    }

    #[test]
    fn lddw_takes_two_slots_and_exit_ends() {
        let p = [Insn::new(0x18, 0, 0, 0, 7), Insn::new(0, 0, 0, 0, 0), ins(EXIT_, 0, 0)];
        assert_eq!(successors(&p, 0).collect::<Vec<_>>(), vec![2]);
        assert_eq!(successors(&p, 2).count(), 0);
        assert_eq!(find_cycle(&p), None);
    }
}
