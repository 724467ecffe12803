//! Gives rbpf an XDP context it can serve.
//!
//! XDP programs read `struct xdp_md` (include/uapi/linux/bpf.h: six `__u32`
//! fields `data`, `data_end`, `data_meta`, `ingress_ifindex`,
//! `rx_queue_index`, `egress_ifindex`) with 32-bit loads; the kernel
//! verifier rewrites those loads into loads of real pointers from
//! `struct xdp_buff` (net/core/filter.c `xdp_convert_ctx_access`). rbpf has
//! no such rewriting: it hands the program a pointer to a metadata buffer
//! ("mbuff") and 64-bit host pointers would be truncated by a 32-bit load.
//!
//! So we do the kernel's job in a simpler form: the mbuff holds one u64 slot
//! per `xdp_md` field (see [`XdpMd`]), and every `ldxw dst, [ctx+4k]` becomes
//! `ldxdw dst, [ctx+8k]`. Finding which loads read the context takes a
//! forward dataflow analysis over the registers: `r1` holds the context at
//! entry, `mov` copies it, any other write (including a call clobbering
//! r0-r5) ends it. Where the analysis cannot be sure (the pointer is spilled
//! to memory, paths merge with different contents, the pointer is modified,
//! an access of another size or offset) the program is refused rather than
//! guessed at. Unreachable instructions are not looked at: rbpf never runs
//! them. The rewrite keeps every slot in place, so jumps need no fixing.

use super::Unsupported;
use crate::isa::opcode::*;
use crate::isa::Insn;

/// The values behind each `xdp_md` field, laid out as rbpf's mbuff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpMd {
    pub data: u64,
    pub data_end: u64,
    pub data_meta: u64,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

/// Number of `xdp_md` fields, each a u64 slot in the mbuff.
pub const XDP_MD_FIELDS: usize = 6;

impl XdpMd {
    /// The mbuff: field k at byte offset 8k, little-endian u64.
    pub fn to_mbuff(&self) -> [u8; XDP_MD_FIELDS * 8] {
        let vals = [
            self.data,
            self.data_end,
            self.data_meta,
            self.ingress_ifindex as u64,
            self.rx_queue_index as u64,
            self.egress_ifindex as u64,
        ];
        let mut out = [0u8; XDP_MD_FIELDS * 8];
        for (k, v) in vals.iter().enumerate() {
            out[k * 8..k * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// What a register holds, as far as the context pointer is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    /// Exactly the context pointer.
    Ctx,
    /// Certainly not derived from the context pointer.
    Other,
    /// Derived from it (arithmetic, truncation) or differing between paths.
    Unsure,
}

fn join(a: Val, b: Val) -> Val {
    if a == b {
        a
    } else {
        Val::Unsure
    }
}

type State = [Val; 11];

fn join_state(a: &State, b: &State) -> State {
    std::array::from_fn(|r| join(a[r], b[r]))
}

/// Rewrites the context loads of an XDP program for an [`XdpMd`] mbuff.
pub fn rewrite_xdp_ctx(insns: &[Insn]) -> Result<Vec<Insn>, Unsupported> {
    // A local callee might return the context in r0; assume not, and redo
    // the analysis assuming it may if some exit has it.
    let mut states = analyse(insns, false);
    if exits_may_return_ctx(insns, &states) {
        states = analyse(insns, true);
    }
    let mut out = insns.to_vec();
    for (i, st) in states.iter().enumerate() {
        let Some(st) = st else { continue };
        let insn = insns[i];
        let (class, mode) = (insn.class(), insn.code & 0xe0);
        let unsure = |r: u8| {
            Unsupported::new(
                format!("cannot tell whether r{r} holds the XDP context pointer (modified, or paths disagree)"),
                i,
            )
        };
        match class {
            LDX => match st[insn.src as usize] {
                Val::Ctx => {
                    let field = ctx_field(insn).ok_or_else(|| {
                        Unsupported::new(
                            format!(
                                "context access of {} bytes at offset {} (only 32-bit loads of xdp_md fields are modelled)",
                                mem_size(insn.code),
                                insn.off
                            ),
                            i,
                        )
                    })?;
                    out[i] = Insn::new(
                        LDX | MODE_MEM | SIZE_DW,
                        insn.dst,
                        insn.src,
                        (field * 8) as i16,
                        0,
                    );
                }
                Val::Unsure => return Err(unsure(insn.src)),
                Val::Other => {}
            },
            ST | STX => {
                match st[insn.dst as usize] {
                    Val::Ctx => {
                        return Err(Unsupported::new("store into the XDP context".into(), i))
                    }
                    Val::Unsure => return Err(unsure(insn.dst)),
                    Val::Other => {}
                }
                if class == STX
                    && (mode == MODE_MEM || mode == MODE_ATOMIC)
                    && st[insn.src as usize] != Val::Other
                {
                    return Err(Unsupported::new(
                        format!(
                            "r{} (possibly the XDP context pointer) stored to memory",
                            insn.src
                        ),
                        i,
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Field index for `ldxw [ctx + 4k]`, k < 6.
fn ctx_field(insn: Insn) -> Option<usize> {
    let ok = insn.code == LDX | MODE_MEM | SIZE_W && insn.off >= 0 && insn.off % 4 == 0;
    let k = (insn.off / 4) as usize;
    (ok && k < XDP_MD_FIELDS).then_some(k)
}

fn exits_may_return_ctx(insns: &[Insn], states: &[Option<State>]) -> bool {
    insns
        .iter()
        .zip(states)
        .any(|(i, s)| i.code == JMP | EXIT && s.is_some_and(|s| s[0] != Val::Other))
}

/// Fixpoint of the forward analysis: the state before each reachable slot.
fn analyse(insns: &[Insn], callee_may_return_ctx: bool) -> Vec<Option<State>> {
    let n = insns.len();
    let mut states: Vec<Option<State>> = vec![None; n];
    let mut entry = [Val::Other; 11];
    entry[1] = Val::Ctx;
    let mut work = vec![0usize];
    if n > 0 {
        states[0] = Some(entry);
    }
    let push = |states: &mut Vec<Option<State>>, work: &mut Vec<usize>, at: i64, st: State| {
        if at < 0 || at as usize >= n {
            return; // rbpf's verifier refuses jumps out of the program
        }
        let at = at as usize;
        let merged = match &states[at] {
            Some(old) => join_state(old, &st),
            None => st,
        };
        if states[at] != Some(merged) {
            states[at] = Some(merged);
            work.push(at);
        }
    };
    while let Some(i) = work.pop() {
        let insn = insns[i];
        let mut st = states[i].expect("queued slots have a state");
        let next = i as i64 + 1;
        let (class, op) = (insn.class(), insn.code & 0xf0);
        let d = insn.dst as usize & 0xf;
        let s = insn.src as usize & 0xf;
        let get = |st: &State, r: usize| if r <= 10 { st[r] } else { Val::Other };
        match class {
            ALU | ALU64 => {
                if d <= 10 {
                    let src_val = if insn.code & X != 0 { get(&st, s) } else { Val::Other };
                    st[d] = if op == MOV && insn.code & X != 0 && class == ALU64 && insn.off == 0 {
                        src_val
                    } else if op == MOV && insn.code & X == 0 {
                        Val::Other
                    } else if op == MOV {
                        // mov32 / movsx of the pointer: a truncated copy.
                        if src_val == Val::Other {
                            Val::Other
                        } else {
                            Val::Unsure
                        }
                    } else if st[d] == Val::Other && src_val == Val::Other {
                        Val::Other
                    } else {
                        Val::Unsure
                    };
                }
                push(&mut states, &mut work, next, st);
            }
            LD => {
                if d <= 10 {
                    st[d] = Val::Other;
                }
                push(&mut states, &mut work, next + insn.is_lddw() as i64, st);
            }
            LDX => {
                if d <= 10 {
                    st[d] = Val::Other;
                }
                push(&mut states, &mut work, next, st);
            }
            ST | STX => {
                if insn.code & 0xe0 == MODE_ATOMIC && insn.imm & ATOMIC_FETCH != 0 {
                    let r = if insn.imm == ATOMIC_CMPXCHG { 0 } else { s };
                    if r <= 10 {
                        st[r] = Val::Other;
                    }
                }
                push(&mut states, &mut work, next, st);
            }
            _ => match op {
                EXIT if class == JMP => {}
                CALL if class == JMP => {
                    if insn.src == PSEUDO_CALL && insn.code & X == 0 {
                        push(&mut states, &mut work, next + insn.imm as i64, st);
                    }
                    for r in st.iter_mut().take(6) {
                        *r = Val::Other;
                    }
                    if insn.src == PSEUDO_CALL && callee_may_return_ctx {
                        st[0] = Val::Unsure;
                    }
                    push(&mut states, &mut work, next, st);
                }
                JA => {
                    let d = if class == JMP32 { insn.imm as i64 } else { insn.off as i64 };
                    push(&mut states, &mut work, next + d, st);
                }
                _ => {
                    push(&mut states, &mut work, next, st);
                    push(&mut states, &mut work, next + insn.off as i64, st);
                }
            },
        }
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::asm::assemble;

    fn rw(src: &str) -> Result<Vec<Insn>, Unsupported> {
        rewrite_xdp_ctx(&assemble(src).unwrap())
    }

    #[test]
    fn loads_through_r1_and_copies_are_widened() {
        let src = "\
            mov %r6, %r1
            ldxw %r2, [%r1+0]
            ldxw %r3, [%r6+4]
            ldxw %r4, [%r6+8]
            ldxw %r5, [%r1+12]
            ldxw %r7, [%r1+16]
            ldxw %r8, [%r1+20]
            mov %r0, 2
            exit";
        let p = rw(src).unwrap();
        let dw = LDX | MODE_MEM | SIZE_DW;
        assert_eq!(p[1], Insn::new(dw, 2, 1, 0, 0));
        assert_eq!(p[2], Insn::new(dw, 3, 6, 8, 0));
        assert_eq!(p[3], Insn::new(dw, 4, 6, 16, 0));
        assert_eq!(p[4], Insn::new(dw, 5, 1, 24, 0));
        assert_eq!(p[5], Insn::new(dw, 7, 1, 32, 0));
        assert_eq!(p[6], Insn::new(dw, 8, 1, 40, 0));
        assert_eq!(p[0], assemble(src).unwrap()[0]);
    }

    #[test]
    fn packet_loads_are_left_alone() {
        // r2 = data is a packet pointer, not the context.
        let src = "ldxw %r2, [%r1+0]\nldxw %r3, [%r2+0]\nldxb %r4, [%r2+13]\nmov %r0, 2\nexit";
        let p = rw(src).unwrap();
        let orig = assemble(src).unwrap();
        assert_eq!(&p[1..], &orig[1..]);
    }

    #[test]
    fn calls_and_overwrites_end_the_context() {
        // After a helper call r1 is clobbered; r6 survives.
        let src = "mov %r6, %r1\ncall 7\nldxw %r2, [%r6+4]\nldxw %r3, [%r1+4]\nexit";
        let p = rw(src).unwrap();
        assert_eq!(p[2].code, LDX | MODE_MEM | SIZE_DW);
        assert_eq!(p[3].code, LDX | MODE_MEM | SIZE_W, "r1 is no longer the context");
        // Reassigning r1 ends it too.
        let p = rw("mov %r1, %r10\nldxw %r2, [%r1-4]\nexit").unwrap();
        assert_eq!(p[1].code, LDX | MODE_MEM | SIZE_W);
    }

    #[test]
    fn unsure_cases_are_refused() {
        let e = rw("stxdw [%r10-8], %r1\nexit").unwrap_err();
        assert_eq!(
            e.to_string(),
            "rbpf: unsupported: r1 (possibly the XDP context pointer) stored to memory at insn 0"
        );
        let e = rw("ldxdw %r2, [%r1+0]\nexit").unwrap_err();
        assert!(e.reason.contains("context access of 8 bytes at offset 0"), "{e}");
        let e = rw("ldxw %r2, [%r1+24]\nexit").unwrap_err();
        assert!(e.reason.contains("offset 24"), "{e}");
        let e = rw("ldxh %r2, [%r1+2]\nexit").unwrap_err();
        assert!(e.reason.contains("2 bytes"), "{e}");
        let e = rw("stw [%r1+0], 1\nexit").unwrap_err();
        assert!(e.reason.contains("store into the XDP context"), "{e}");
        let e = rw("add %r1, 4\nldxw %r2, [%r1+0]\nexit").unwrap_err();
        assert!(e.reason.contains("cannot tell whether r1"), "{e}");
        // Paths disagree: r3 is ctx on one path, the stack on the other.
        let src = "\
            mov %r3, %r10
            jeq %r2, 0, +1
            mov %r3, %r1
            ldxw %r0, [%r3+0]
            exit";
        let e = rw(src).unwrap_err();
        assert_eq!(e.insn, 3);
        assert!(e.reason.contains("cannot tell whether r3"), "{e}");
    }

    #[test]
    fn paths_that_agree_and_loops_converge() {
        let src = "\
            mov %r6, %r1
            mov %r2, 0
        loop:
            add %r2, 1
            jlt %r2, 10, loop
            jeq %r2, 3, +1
            mov %r7, %r6
            ldxw %r0, [%r6+16]
            exit";
        let p = rw(src).unwrap();
        assert_eq!(p[6], Insn::new(LDX | MODE_MEM | SIZE_DW, 0, 6, 32, 0));
    }

    #[test]
    fn local_callees_see_the_callers_context() {
        let src = "call local f\nexit\nf:\nldxw %r0, [%r1+4]\nexit";
        let p = rw(src).unwrap();
        assert_eq!(p[2], Insn::new(LDX | MODE_MEM | SIZE_DW, 0, 1, 8, 0));
        // A callee returning the context makes r0 unusable as a base.
        let src = "call local f\nldxw %r2, [%r0+0]\nexit\nf:\nmov %r0, %r1\nexit";
        assert!(rw(src).unwrap_err().reason.contains("cannot tell whether r0"));
    }

    #[test]
    fn mbuff_layout() {
        let md = XdpMd {
            data: 0x1000,
            data_end: 0x1040,
            data_meta: 0x1000,
            ingress_ifindex: 3,
            rx_queue_index: 1,
            egress_ifindex: 0,
        };
        let m = md.to_mbuff();
        assert_eq!(u64::from_le_bytes(m[8..16].try_into().unwrap()), 0x1040);
        assert_eq!(u64::from_le_bytes(m[24..32].try_into().unwrap()), 3);
    }
}
