//! The interpreter: RFC 9669 semantics, with the kernel's choices where the
//! RFC leaves them open.
//!
//! Kernel-exact points (kernel/bpf/core.c `___bpf_prog_run` and the
//! verifier's rewrites in kernel/bpf/verifier.c `do_misc_fixups`):
//! - ALU32 results are zero-extended into the 64-bit register.
//! - Division by zero gives 0; modulo by zero leaves the dividend (for
//!   ALU32, its low 32 bits zero-extended). Signed division by -1 is
//!   negation (so INT_MIN / -1 = INT_MIN) and signed modulo by -1 is 0.
//! - Shift amounts are masked to the operand width.
//! - BPF-to-BPF calls get a fresh 512-byte frame; r6-r9 are callee-saved;
//!   at most 8 frames (`MAX_CALL_FRAMES`).
//! - Tail calls keep the frame, reset nothing but r1 (ctx, unchanged), and
//!   are limited to 33 per packet (`MAX_TAIL_CALL_CNT`).

use super::exec::{Exec, HelperOutcome, Stop};
use super::fault::{Fault, FaultKind};
use super::memory::{addr, FRAME_SIZE, MAX_FRAMES, STACK_SIZE, TAG_STACK};
use super::trace::Tracer;
use xdpqual_isa::opcode::*;

/// `BPF_LOAD_ACQ` / `BPF_STORE_REL` atomic operations (Linux 6.15).
const LOAD_ACQ: i32 = 0x100;
const STORE_REL: i32 = 0x110;

/// Sign-extends the low `bits` of `v`.
#[inline(always)]
fn sext(v: u64, bits: u32) -> u64 {
    let s = 64 - bits;
    (((v << s) as i64) >> s) as u64
}

#[inline(always)]
fn alu64(op: u8, off: i16, dst: u64, src: u64) -> Option<u64> {
    Some(match op {
        ADD => dst.wrapping_add(src),
        SUB => dst.wrapping_sub(src),
        MUL => dst.wrapping_mul(src),
        DIV => {
            if off == 1 {
                let (d, s) = (dst as i64, src as i64);
                if s == 0 {
                    0
                } else {
                    d.wrapping_div(s) as u64
                }
            } else {
                // BPF defines division by zero as 0 (RFC 9669 section 4.1).
                dst.checked_div(src).unwrap_or(0)
            }
        }
        MOD => {
            if off == 1 {
                let (d, s) = (dst as i64, src as i64);
                if s == 0 {
                    dst
                } else {
                    d.wrapping_rem(s) as u64
                }
            } else if src == 0 {
                dst
            } else {
                dst % src
            }
        }
        OR => dst | src,
        AND => dst & src,
        XOR => dst ^ src,
        LSH => dst << (src & 63),
        RSH => dst >> (src & 63),
        ARSH => ((dst as i64) >> (src & 63)) as u64,
        NEG => (dst as i64).wrapping_neg() as u64,
        MOV => match off {
            0 => src,
            8 | 16 | 32 => sext(src, off as u32),
            _ => return None,
        },
        _ => return None,
    })
}

#[inline(always)]
fn alu32(op: u8, off: i16, dst: u32, src: u32) -> Option<u32> {
    Some(match op {
        ADD => dst.wrapping_add(src),
        SUB => dst.wrapping_sub(src),
        MUL => dst.wrapping_mul(src),
        DIV => {
            if off == 1 {
                let (d, s) = (dst as i32, src as i32);
                if s == 0 {
                    0
                } else {
                    d.wrapping_div(s) as u32
                }
            } else {
                // BPF defines division by zero as 0 (RFC 9669 section 4.1).
                dst.checked_div(src).unwrap_or(0)
            }
        }
        MOD => {
            if off == 1 {
                let (d, s) = (dst as i32, src as i32);
                if s == 0 {
                    dst
                } else {
                    d.wrapping_rem(s) as u32
                }
            } else if src == 0 {
                dst
            } else {
                dst % src
            }
        }
        OR => dst | src,
        AND => dst & src,
        XOR => dst ^ src,
        LSH => dst << (src & 31),
        RSH => dst >> (src & 31),
        ARSH => ((dst as i32) >> (src & 31)) as u32,
        NEG => (dst as i32).wrapping_neg() as u32,
        MOV => match off {
            0 => src,
            8 | 16 => sext(src as u64, off as u32) as u32,
            _ => return None,
        },
        _ => return None,
    })
}

#[inline(always)]
fn cond(op: u8, a: u64, b: u64, wide: bool) -> Option<bool> {
    let (sa, sb) =
        if wide { (a as i64, b as i64) } else { (a as u32 as i32 as i64, b as u32 as i32 as i64) };
    let (a, b) = if wide { (a, b) } else { (a as u32 as u64, b as u32 as u64) };
    Some(match op {
        JEQ => a == b,
        JGT => a > b,
        JGE => a >= b,
        JSET => a & b != 0,
        JNE => a != b,
        JSGT => sa > sb,
        JSGE => sa >= sb,
        JLT => a < b,
        JLE => a <= b,
        JSLT => sa < sb,
        JSLE => sa <= sb,
        _ => return None,
    })
}

#[inline(always)]
fn byteswap(v: u64, width: i32) -> Option<u64> {
    Some(match width {
        16 => (v as u16).swap_bytes() as u64,
        32 => (v as u32).swap_bytes() as u64,
        64 => v.swap_bytes(),
        _ => return None,
    })
}

#[inline(always)]
fn truncate(v: u64, width: i32) -> Option<u64> {
    Some(match width {
        16 => v as u16 as u64,
        32 => v as u32 as u64,
        64 => v,
        _ => return None,
    })
}

/// Whole opcodes of the interpreter's one-dispatch instructions.
mod fast {
    use xdpqual_isa::opcode::*;
    macro_rules! ops {
        ($($name:ident = $v:expr;)*) => { $(pub(super) const $name: u8 = $v;)* };
    }
    ops! {
        ADD64_K = ALU64 | K | ADD; ADD64_X = ALU64 | X | ADD;
        SUB64_K = ALU64 | K | SUB; SUB64_X = ALU64 | X | SUB;
        MUL64_K = ALU64 | K | MUL; MUL64_X = ALU64 | X | MUL;
        OR64_K = ALU64 | K | OR; OR64_X = ALU64 | X | OR;
        AND64_K = ALU64 | K | AND; AND64_X = ALU64 | X | AND;
        XOR64_K = ALU64 | K | XOR; XOR64_X = ALU64 | X | XOR;
        LSH64_K = ALU64 | K | LSH; LSH64_X = ALU64 | X | LSH;
        RSH64_K = ALU64 | K | RSH; RSH64_X = ALU64 | X | RSH;
        ARSH64_K = ALU64 | K | ARSH; ARSH64_X = ALU64 | X | ARSH;
        MOV64_K = ALU64 | K | MOV; MOV64_X = ALU64 | X | MOV;
        ADD32_K = ALU | K | ADD; ADD32_X = ALU | X | ADD;
        SUB32_K = ALU | K | SUB; SUB32_X = ALU | X | SUB;
        OR32_K = ALU | K | OR; OR32_X = ALU | X | OR;
        AND32_K = ALU | K | AND; AND32_X = ALU | X | AND;
        XOR32_K = ALU | K | XOR; XOR32_X = ALU | X | XOR;
        LSH32_K = ALU | K | LSH; LSH32_X = ALU | X | LSH;
        RSH32_K = ALU | K | RSH; RSH32_X = ALU | X | RSH;
        MOV32_K = ALU | K | MOV; MOV32_X = ALU | X | MOV;
        JA_ALWAYS = JMP | JA;
        JEQ_K = JMP | K | JEQ; JEQ_X = JMP | X | JEQ;
        JNE_K = JMP | K | JNE; JNE_X = JMP | X | JNE;
        JGT_K = JMP | K | JGT; JGT_X = JMP | X | JGT;
        JGE_K = JMP | K | JGE; JGE_X = JMP | X | JGE;
        JLT_K = JMP | K | JLT; JLT_X = JMP | X | JLT;
        JLE_K = JMP | K | JLE; JLE_X = JMP | X | JLE;
        JSET_K = JMP | K | JSET; JSET_X = JMP | X | JSET;
        JSGT_K = JMP | K | JSGT; JSGT_X = JMP | X | JSGT;
        JSGE_K = JMP | K | JSGE; JSGE_X = JMP | X | JSGE;
        JSLT_K = JMP | K | JSLT; JSLT_X = JMP | X | JSLT;
        JSLE_K = JMP | K | JSLE; JSLE_X = JMP | X | JSLE;
        EXIT_CALL = JMP | EXIT;
        LDXW = LDX | MODE_MEM | SIZE_W; LDXH = LDX | MODE_MEM | SIZE_H;
        LDXB = LDX | MODE_MEM | SIZE_B; LDXDW = LDX | MODE_MEM | SIZE_DW;
        STXW = STX | MODE_MEM | SIZE_W; STXH = STX | MODE_MEM | SIZE_H;
        STXB = STX | MODE_MEM | SIZE_B; STXDW = STX | MODE_MEM | SIZE_DW;
        STW = ST | MODE_MEM | SIZE_W; STH = ST | MODE_MEM | SIZE_H;
        STB = ST | MODE_MEM | SIZE_B; STDW = ST | MODE_MEM | SIZE_DW;
    }
}

impl<T: Tracer> Exec<'_, T> {
    #[cold]
    #[inline(never)]
    fn fault(&self, prog: usize, pc: usize, kind: FaultKind) -> Stop {
        let p = &self.programs[prog];
        let line = p.lines.lookup(pc).map(|l| format!("{}:{}", l.file, l.line));
        Stop::Fault(Box::new(Fault { pc, program: p.name.clone(), kind, line }))
    }

    /// Runs a function from `pc` until its `exit`, with `regs` as its
    /// registers (r10 already set up by the caller). `depth` is the frame
    /// index, 0 for the program's entry.
    pub(crate) fn run_frame(
        &mut self,
        mut prog: usize,
        mut pc: usize,
        regs: &mut [u64; 11],
        depth: usize,
    ) -> Result<(), Stop> {
        let programs = self.programs;
        let mut insns = &programs[prog].insns[..];
        loop {
            let Some(&ins) = insns.get(pc) else {
                return Err(self.fault(prog, pc, FaultKind::PcOutOfRange { pc: pc as i64 }));
            };
            self.executed += 1;
            if self.executed > self.budget {
                return Err(self.fault(
                    prog,
                    pc,
                    FaultKind::BudgetExhausted { budget: self.budget },
                ));
            }
            self.tracer.insn(prog, pc, ins, regs);
            let dst = ins.dst as usize;
            let src = ins.src as usize;
            let code = ins.code;
            let mut next = pc + 1;
            macro_rules! bad {
                () => {
                    return Err(self.fault(prog, pc, FaultKind::InvalidInstruction { code }))
                };
            }
            macro_rules! mem_fault {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(k) => return Err(self.fault(prog, pc, k)),
                    }
                };
            }
            // The common instructions in one dispatch on the whole opcode
            // (a jump table), each arm the same computation as the general
            // path below, which handles everything else (and these opcodes
            // with an `off` that changes their meaning, e.g. movsx). The
            // arms restate `alu64`/`alu32` on purpose: calling them with a
            // constant operation measured 4-5% slower over the conformance
            // suite (`cargo bench -p xdpqual --bench interp_vs_rbpf`, rbpf ÷
            // engine geomean 1.72-1.78 against 1.81-1.88), and the
            // conformance and differential tests hold both paths to the
            // kernel's results.
            let k = ins.imm as i64 as u64;
            macro_rules! alu64 {
                ($d:ident => $e:expr) => {{
                    let $d: u64 = regs[dst];
                    let v: u64 = $e;
                    regs[dst] = v;
                    pc += 1;
                    continue;
                }};
            }
            macro_rules! alu32 {
                ($d:ident => $e:expr) => {{
                    let $d: u32 = regs[dst] as u32;
                    let v: u32 = $e;
                    regs[dst] = v as u64;
                    pc += 1;
                    continue;
                }};
            }
            macro_rules! jump_if {
                ($c:expr) => {{
                    pc = if $c { (pc as i64 + 1 + ins.off as i64) as usize } else { pc + 1 };
                    continue;
                }};
            }
            macro_rules! ldx {
                ($size:expr) => {{
                    let a = regs[src].wrapping_add(ins.off as i64 as u64);
                    regs[dst] = mem_fault!(self.load(pc, a, $size));
                    pc += 1;
                    continue;
                }};
            }
            macro_rules! st {
                ($size:expr, $v:expr) => {{
                    let a = regs[dst].wrapping_add(ins.off as i64 as u64);
                    mem_fault!(self.store(pc, a, $size, $v));
                    pc += 1;
                    continue;
                }};
            }
            let k32 = ins.imm as u32;
            match code {
                fast::ADD64_K => alu64!(d => d.wrapping_add(k)),
                fast::ADD64_X => alu64!(d => d.wrapping_add(regs[src])),
                fast::SUB64_K => alu64!(d => d.wrapping_sub(k)),
                fast::SUB64_X => alu64!(d => d.wrapping_sub(regs[src])),
                fast::MUL64_K => alu64!(d => d.wrapping_mul(k)),
                fast::MUL64_X => alu64!(d => d.wrapping_mul(regs[src])),
                fast::OR64_K => alu64!(d => d | k),
                fast::OR64_X => alu64!(d => d | regs[src]),
                fast::AND64_K => alu64!(d => d & k),
                fast::AND64_X => alu64!(d => d & regs[src]),
                fast::XOR64_K => alu64!(d => d ^ k),
                fast::XOR64_X => alu64!(d => d ^ regs[src]),
                fast::LSH64_K => alu64!(d => d << (k & 63)),
                fast::LSH64_X => alu64!(d => d << (regs[src] & 63)),
                fast::RSH64_K => alu64!(d => d >> (k & 63)),
                fast::RSH64_X => alu64!(d => d >> (regs[src] & 63)),
                fast::ARSH64_K => alu64!(d => ((d as i64) >> (k & 63)) as u64),
                fast::ARSH64_X => alu64!(d => ((d as i64) >> (regs[src] & 63)) as u64),
                fast::MOV64_K if ins.off == 0 => alu64!(_d => k),
                fast::MOV64_X if ins.off == 0 => alu64!(_d => regs[src]),
                fast::ADD32_K => alu32!(d => d.wrapping_add(k32)),
                fast::ADD32_X => alu32!(d => d.wrapping_add(regs[src] as u32)),
                fast::SUB32_K => alu32!(d => d.wrapping_sub(k32)),
                fast::SUB32_X => alu32!(d => d.wrapping_sub(regs[src] as u32)),
                fast::OR32_K => alu32!(d => d | k32),
                fast::OR32_X => alu32!(d => d | (regs[src] as u32)),
                fast::AND32_K => alu32!(d => d & k32),
                fast::AND32_X => alu32!(d => d & (regs[src] as u32)),
                fast::XOR32_K => alu32!(d => d ^ k32),
                fast::XOR32_X => alu32!(d => d ^ (regs[src] as u32)),
                fast::LSH32_K => alu32!(d => d << (k32 & 31)),
                fast::LSH32_X => alu32!(d => d << ((regs[src] as u32) & 31)),
                fast::RSH32_K => alu32!(d => d >> (k32 & 31)),
                fast::RSH32_X => alu32!(d => d >> ((regs[src] as u32) & 31)),
                fast::MOV32_K if ins.off == 0 => alu32!(_d => k32),
                fast::MOV32_X if ins.off == 0 => alu32!(_d => regs[src] as u32),
                fast::JA_ALWAYS => jump_if!(true),
                fast::JEQ_K => jump_if!(regs[dst] == k),
                fast::JEQ_X => jump_if!(regs[dst] == regs[src]),
                fast::JNE_K => jump_if!(regs[dst] != k),
                fast::JNE_X => jump_if!(regs[dst] != regs[src]),
                fast::JGT_K => jump_if!(regs[dst] > k),
                fast::JGT_X => jump_if!(regs[dst] > regs[src]),
                fast::JGE_K => jump_if!(regs[dst] >= k),
                fast::JGE_X => jump_if!(regs[dst] >= regs[src]),
                fast::JLT_K => jump_if!(regs[dst] < k),
                fast::JLT_X => jump_if!(regs[dst] < regs[src]),
                fast::JLE_K => jump_if!(regs[dst] <= k),
                fast::JLE_X => jump_if!(regs[dst] <= regs[src]),
                fast::JSET_K => jump_if!(regs[dst] & k != 0),
                fast::JSET_X => jump_if!(regs[dst] & regs[src] != 0),
                fast::JSGT_K => jump_if!((regs[dst] as i64) > k as i64),
                fast::JSGT_X => jump_if!((regs[dst] as i64) > regs[src] as i64),
                fast::JSGE_K => jump_if!((regs[dst] as i64) >= k as i64),
                fast::JSGE_X => jump_if!((regs[dst] as i64) >= regs[src] as i64),
                fast::JSLT_K => jump_if!((regs[dst] as i64) < k as i64),
                fast::JSLT_X => jump_if!((regs[dst] as i64) < regs[src] as i64),
                fast::JSLE_K => jump_if!((regs[dst] as i64) <= k as i64),
                fast::JSLE_X => jump_if!((regs[dst] as i64) <= regs[src] as i64),
                fast::EXIT_CALL => return Ok(()),
                fast::LDXW => ldx!(4),
                fast::LDXH => ldx!(2),
                fast::LDXB => ldx!(1),
                fast::LDXDW => ldx!(8),
                fast::STXW => st!(4, regs[src]),
                fast::STXH => st!(2, regs[src]),
                fast::STXB => st!(1, regs[src]),
                fast::STXDW => st!(8, regs[src]),
                fast::STW => st!(4, k),
                fast::STH => st!(2, k),
                fast::STB => st!(1, k),
                fast::STDW => st!(8, k),
                _ => {}
            }
            match code & 0x07 {
                ALU64 => {
                    let op = code & 0xf0;
                    if op == END {
                        // cpu v4 bswap: unconditional, ALU64 with source K.
                        if code & X != 0 {
                            bad!()
                        }
                        match byteswap(regs[dst], ins.imm) {
                            Some(v) => regs[dst] = v,
                            None => bad!(),
                        }
                    } else {
                        let s = if code & X != 0 { regs[src] } else { ins.imm as i64 as u64 };
                        match alu64(op, ins.off, regs[dst], s) {
                            Some(v) => regs[dst] = v,
                            None => bad!(),
                        }
                    }
                }
                ALU => {
                    let op = code & 0xf0;
                    if op == END {
                        // BPF_TO_BE (source X) swaps on a little-endian
                        // machine and only truncates on a big-endian one;
                        // BPF_TO_LE the other way round (kernel/bpf/core.c
                        // ALU_END_TO_BE uses cpu_to_be16/32/64, which are
                        // no-ops on big-endian hosts).
                        let v = if (code & X != 0) != self.big {
                            byteswap(regs[dst], ins.imm)
                        } else {
                            truncate(regs[dst], ins.imm)
                        };
                        match v {
                            Some(v) => regs[dst] = v,
                            None => bad!(),
                        }
                    } else {
                        let s = if code & X != 0 { regs[src] as u32 } else { ins.imm as u32 };
                        match alu32(op, ins.off, regs[dst] as u32, s) {
                            Some(v) => regs[dst] = v as u64,
                            None => bad!(),
                        }
                    }
                }
                class @ (JMP | JMP32) => {
                    let op = code & 0xf0;
                    match op {
                        JA => {
                            let delta =
                                if class == JMP32 { ins.imm as i64 } else { ins.off as i64 };
                            next = (pc as i64 + 1 + delta) as usize;
                        }
                        EXIT if class == JMP => return Ok(()),
                        CALL if class == JMP => {
                            if code & X != 0 {
                                // callx: only the conformance suite uses it
                                // (the kernel verifier refuses it).
                                if !self.allow_callx {
                                    bad!()
                                }
                                let id = regs[dst] as i32;
                                match self.call_helper(id, prog, pc, regs, depth) {
                                    Ok(HelperOutcome::Return(v)) => regs[0] = v,
                                    Ok(HelperOutcome::Unwind(v)) => {
                                        regs[0] = v;
                                        return Err(Stop::Unwind);
                                    }
                                    Ok(HelperOutcome::TailCall(_)) => bad!(),
                                    Err(k) => return Err(self.fault(prog, pc, k)),
                                }
                            } else if ins.src == PSEUDO_CALL {
                                if depth + 1 >= MAX_FRAMES {
                                    return Err(self.fault(prog, pc, FaultKind::CallDepth));
                                }
                                let target = pc as i64 + 1 + ins.imm as i64;
                                if target < 0 || target as usize >= insns.len() {
                                    return Err(self.fault(
                                        prog,
                                        pc,
                                        FaultKind::PcOutOfRange { pc: target },
                                    ));
                                }
                                let saved = [regs[6], regs[7], regs[8], regs[9], regs[10]];
                                regs[10] =
                                    addr(TAG_STACK, (STACK_SIZE - (depth + 1) * FRAME_SIZE) as u64);
                                let saved_low = self.stack_low;
                                self.stack_low = STACK_SIZE - (depth + 2) * FRAME_SIZE;
                                self.clear_frame(depth + 1);
                                let r = self.run_frame(prog, target as usize, regs, depth + 1);
                                self.stack_low = saved_low;
                                r?;
                                regs[6] = saved[0];
                                regs[7] = saved[1];
                                regs[8] = saved[2];
                                regs[9] = saved[3];
                                regs[10] = saved[4];
                            } else if ins.src == CALL_HELPER {
                                self.tracer.helper(pc, ins.imm);
                                match self.call_helper(ins.imm, prog, pc, regs, depth) {
                                    Ok(HelperOutcome::Return(v)) => regs[0] = v,
                                    Ok(HelperOutcome::TailCall(target)) => {
                                        // The frame is reused; r1 (ctx) is
                                        // what the tail-called program sees.
                                        prog = target;
                                        insns = &programs[prog].insns[..];
                                        next = 0;
                                    }
                                    Ok(HelperOutcome::Unwind(v)) => {
                                        regs[0] = v;
                                        return Err(Stop::Unwind);
                                    }
                                    Err(k) => return Err(self.fault(prog, pc, k)),
                                }
                                // Helpers clobber the caller-saved registers;
                                // the verifier marks them unreadable, so any
                                // value is exact. Zero them for determinism.
                                regs[1] = 0;
                                regs[2] = 0;
                                regs[3] = 0;
                                regs[4] = 0;
                                regs[5] = 0;
                                if next == 0 {
                                    // tail call: r1 must still be the ctx.
                                    regs[1] = self.ctx_addr;
                                }
                            } else {
                                bad!()
                            }
                        }
                        _ => {
                            let wide = class == JMP;
                            let s = if code & X != 0 {
                                regs[src]
                            } else if wide {
                                ins.imm as i64 as u64
                            } else {
                                ins.imm as u32 as u64
                            };
                            match cond(op, regs[dst], s, wide) {
                                Some(true) => next = (pc as i64 + 1 + ins.off as i64) as usize,
                                Some(false) => {}
                                None => bad!(),
                            }
                        }
                    }
                }
                LDX => {
                    let size = mem_size(code);
                    let a = regs[src].wrapping_add(ins.off as i64 as u64);
                    match code & 0xe0 {
                        MODE_MEM => regs[dst] = mem_fault!(self.load(pc, a, size)),
                        MODE_MEMSX if size < 8 => {
                            let v = mem_fault!(self.load(pc, a, size));
                            regs[dst] = sext(v, size as u32 * 8);
                        }
                        _ => bad!(),
                    }
                }
                ST => {
                    if code & 0xe0 != MODE_MEM {
                        bad!()
                    }
                    let a = regs[dst].wrapping_add(ins.off as i64 as u64);
                    mem_fault!(self.store(pc, a, mem_size(code), ins.imm as i64 as u64));
                }
                STX => {
                    let size = mem_size(code);
                    let a = regs[dst].wrapping_add(ins.off as i64 as u64);
                    match code & 0xe0 {
                        MODE_MEM => mem_fault!(self.store(pc, a, size, regs[src])),
                        MODE_ATOMIC if ins.imm == LOAD_ACQ => {
                            // Load-acquire reads [src + off] into dst; ordering
                            // is moot in a single-threaded engine.
                            let a = regs[src].wrapping_add(ins.off as i64 as u64);
                            regs[dst] = mem_fault!(self.load(pc, a, size));
                        }
                        MODE_ATOMIC => mem_fault!(self.atomic(pc, ins.imm, a, size, src, regs)),
                        _ => bad!(),
                    }
                }
                LD => {
                    // Only lddw; prepare() turned every pseudo source into a
                    // plain 64-bit constant. LD_ABS/LD_IND are refused at load.
                    if code != LD_DW_IMM {
                        bad!()
                    }
                    let Some(hi) = insns.get(pc + 1) else { bad!() };
                    regs[dst] = (ins.imm as u32 as u64) | ((hi.imm as u32 as u64) << 32);
                    next = pc + 2;
                }
                _ => bad!(),
            }
            pc = next;
        }
    }

    pub(crate) fn atomic(
        &mut self,
        pc: usize,
        op: i32,
        a: u64,
        size: usize,
        src: usize,
        regs: &mut [u64; 11],
    ) -> Result<(), FaultKind> {
        // Store-release (Linux 6.15+) is a plain store here: the engine is
        // single-threaded per map instance.
        if op == STORE_REL {
            return self.store(pc, a, size, regs[src]);
        }
        if size != 4 && size != 8 {
            return Err(FaultKind::InvalidInstruction { code: STX | MODE_ATOMIC });
        }
        self.check_atomic_region(a)?;
        let mask = if size == 4 { u32::MAX as u64 } else { u64::MAX };
        let old = self.load(pc, a, size)?;
        let s = regs[src] & mask;
        let (new, fetch) = match op & !ATOMIC_FETCH {
            ATOMIC_ADD => (old.wrapping_add(s), op & ATOMIC_FETCH != 0),
            ATOMIC_OR => (old | s, op & ATOMIC_FETCH != 0),
            ATOMIC_AND => (old & s, op & ATOMIC_FETCH != 0),
            ATOMIC_XOR => (old ^ s, op & ATOMIC_FETCH != 0),
            0xe0 if op == ATOMIC_XCHG => (s, true),
            0xf0 if op == ATOMIC_CMPXCHG => {
                let expected = regs[0] & mask;
                let new = if old == expected { s } else { old };
                if new != old {
                    self.store(pc, a, size, new)?;
                }
                regs[0] = old;
                return Ok(());
            }
            _ => return Err(FaultKind::InvalidInstruction { code: STX | MODE_ATOMIC }),
        };
        self.store(pc, a, size, new & mask)?;
        if fetch {
            regs[src] = old;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_division_rules() {
        assert_eq!(alu64(DIV, 0, 7, 0), Some(0));
        assert_eq!(alu64(MOD, 0, 7, 0), Some(7));
        assert_eq!(alu64(DIV, 1, i64::MIN as u64, -1i64 as u64), Some(i64::MIN as u64));
        assert_eq!(alu64(MOD, 1, i64::MIN as u64, -1i64 as u64), Some(0));
        assert_eq!(alu64(MOD, 1, -7i64 as u64, 2), Some(-1i64 as u64));
        assert_eq!(alu32(MOD, 0, 7, 0), Some(7));
        assert_eq!(alu32(DIV, 1, i32::MIN as u32, -1i32 as u32), Some(i32::MIN as u32));
    }

    #[test]
    fn movsx_and_shifts() {
        assert_eq!(alu64(MOV, 8, 0x80, 0x80), Some(0xffff_ffff_ffff_ff80));
        assert_eq!(alu32(MOV, 16, 0, 0x8000), Some(0xffff_8000));
        assert_eq!(alu64(LSH, 0, 1, 65), Some(2));
        assert_eq!(alu32(ARSH, 0, 0x8000_0000, 33), Some(0xc000_0000));
        assert_eq!(alu64(MOV, 7, 0, 1), None);
    }

    #[test]
    fn jmp32_compares_low_halves() {
        assert_eq!(cond(JGT, 0x1_0000_0000, 1, false), Some(false));
        assert_eq!(cond(JSLT, 0xffff_ffff, 0, false), Some(true));
        assert_eq!(cond(JSLT, 0xffff_ffff, 0, true), Some(false));
    }
}
