//! Which programs rbpf 0.4.1 runs exactly as the kernel would.
//!
//! Every rule below was read off rbpf 0.4.1's source (`src/interpreter.rs`,
//! `src/verifier.rs`, `src/jit.rs`, `src/stack.rs`, `src/ebpf.rs`) and the
//! kernel semantics in RFC 9669. A program that passes is either run
//! exactly, or rejected by rbpf's own verifier for a reason the kernel
//! would also reject it (bad register, jump out of range, invalid `le`
//! width, ...): those are left to rbpf and surface as run errors.
//!
//! Decisions worth knowing:
//! - Division by zero needs no rule: rbpf's interpreter and JIT give 0 for
//!   DIV and leave ALU64 MOD's destination unchanged, as the kernel does.
//!   32-bit MOD by zero differs (below), so `mod32` by a register is refused
//!   even though the difference only shows when the divisor is 0 at run time
//!   and the destination has upper bits set: we cannot know statically.
//!   (Tracking which registers are known zero-extended would admit more.)
//! - Shifts need no rule: rbpf masks shift counts by 31/63 (`wrapping_shl`,
//!   `SHIFT_MASK_64`), as RFC 9669 section 4.1 specifies.

use super::Unsupported;
use crate::isa::opcode::*;
use crate::isa::Insn;

/// Which rbpf execution engine the program is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Interpreter,
    /// The x86_64 JIT (`src/jit.rs`), which has further gaps.
    Jit,
}

/// Size of each BPF-to-BPF call frame in rbpf's interpreter
/// (`ebpf::LOCAL_FUNCTION_STACK_SIZE`, applied in `interpreter.rs` as
/// `reg[10] -= stack_usage()` on every local call).
const RBPF_FRAME: i32 = 256;

/// Checks `insns` for the interpreter with no helpers registered.
pub fn eligibility(insns: &[Insn]) -> Result<(), Unsupported> {
    check(insns, Engine::Interpreter, &[])
}

/// Checks `insns` for `engine`, with `helpers` the helper ids that the
/// caller registers with rbpf (any other helper call is refused).
pub fn check(insns: &[Insn], engine: Engine, helpers: &[u32]) -> Result<(), Unsupported> {
    // interpreter.rs `do_jump`: `insn_ptr = (insn_ptr as i16 + insn.off) as usize`
    // computes jump targets in 16 bits, wrong past slot 32767.
    if insns.len() > i16::MAX as usize {
        return Err(Unsupported::new(
            format!("program of {} slots (rbpf computes jump targets in 16 bits)", insns.len()),
            i16::MAX as usize,
        ));
    }
    let mut local_calls = Vec::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        check_insn(insn, i, engine, helpers)?;
        if insn.code == JMP | CALL && insn.src == PSEUDO_CALL {
            local_calls.push(i);
        }
        i += if insn.is_lddw() { 2 } else { 1 };
    }
    if !local_calls.is_empty() {
        check_local_calls(insns, &local_calls, engine)?;
    }
    Ok(())
}

fn check_insn(insn: Insn, at: usize, engine: Engine, helpers: &[u32]) -> Result<(), Unsupported> {
    let no = |reason: String| Err(Unsupported::new(reason, at));
    let op = insn.code & 0xf0;
    match insn.class() {
        ALU | ALU64 => {
            let bits = if insn.class() == ALU { "32" } else { "" };
            // rbpf matches on the opcode byte only and never reads `off`
            // for ALU, so cpu v4's signed division and sign-extending moves
            // silently run as their unsigned/plain forms.
            if insn.off != 0 {
                return match op {
                    DIV => no(format!("signed division (sdiv{bits}, off={})", insn.off)),
                    MOD => no(format!("signed modulo (smod{bits}, off={})", insn.off)),
                    MOV => {
                        let to = if insn.class() == ALU { 32 } else { 64 };
                        no(format!("sign-extending move (movsx{}{to}, off={})", insn.off, insn.off))
                    }
                    _ => no(format!(
                        "ALU opcode {:#04x} with non-zero offset {}",
                        insn.code, insn.off
                    )),
                };
            }
            if insn.code == ALU64 | END | K {
                // verifier.rs rejects 0xd7 as an unknown opcode.
                return no(format!("byte swap bswap{} (ALU64 END, cpu v4)", insn.imm));
            }
            // interpreter.rs `MOD32_* if ... == 0 => ()` keeps all 64 bits of
            // dst; RFC 9669 section 4.1 zeroes the upper 32 bits for ALU.
            // jit.rs emit_muldivmod jumps over the same way.
            if insn.code == ALU | MOD | X {
                return no("32-bit modulo by register (rbpf keeps dst's upper 32 bits when the divisor is 0)".into());
            }
            if insn.code == ALU | MOD | K && insn.imm == 0 {
                return no("32-bit modulo by immediate 0 (rbpf keeps dst's upper 32 bits)".into());
            }
            // jit.rs: `MOV32_REG => self.emit_mov(..)`, a 64-bit x86 mov,
            // so the upper half is copied instead of zeroed.
            if engine == Engine::Jit && insn.code == ALU | MOV | X {
                return no(
                    "mov32 from a register in the JIT (rbpf's JIT copies all 64 bits)".into()
                );
            }
            // jit.rs: `ebpf::LE => {}, // No-op`, but le16/le32 truncate.
            if engine == Engine::Jit && insn.code == ALU | END | K && insn.imm != 64 {
                return no(format!("le{} in the JIT (rbpf's JIT emits no truncation)", insn.imm));
            }
        }
        JMP | JMP32 => {
            let is_call = insn.class() == JMP && op == CALL;
            if insn.class() == JMP32 && op == JA {
                // verifier.rs: unknown opcode 0x06.
                return no("long jump ja32/gotol (JMP32 JA, cpu v4)".into());
            }
            if is_call && insn.code & X != 0 {
                // verifier.rs rejects 0x8d as TAIL_CALL.
                return no(format!("indirect call callx %r{}", insn.dst));
            }
            if is_call {
                match insn.src {
                    CALL_HELPER if !helpers.contains(&(insn.imm as u32)) => {
                        return no(format!(
                            "helper call {} (no rbpf implementation registered)",
                            insn.imm
                        ));
                    }
                    CALL_HELPER => {}
                    PSEUDO_CALL => {}
                    PSEUDO_KFUNC_CALL => return no(format!("kfunc call (btf id {})", insn.imm)),
                    s => return no(format!("call with src={s}")),
                }
            }
            // interpreter.rs `unsigned_u64!(imm)` = `(imm as u32) as u64`
            // zero-extends the immediate of JEQ/JNE/JGT/JGE/JLT/JLE; RFC 9669
            // section 4 sign-extends it. The JIT compares with a
            // sign-extended imm32 (`emit_cmp_imm32`) and is right.
            let unsigned_cmp = matches!(op, JEQ | JNE | JGT | JGE | JLT | JLE);
            if engine == Engine::Interpreter
                && insn.class() == JMP
                && insn.code & X == 0
                && unsigned_cmp
                && insn.imm < 0
            {
                return no(format!(
                    "64-bit unsigned compare with negative immediate {} (rbpf zero-extends it)",
                    insn.imm
                ));
            }
        }
        LD => {
            if insn.is_lddw() {
                if insn.src != 0 {
                    // interpreter.rs LD_DW_IMM ignores src.
                    return no(format!(
                        "lddw with pseudo source {} ({})",
                        insn.src,
                        pseudo_name(insn.src)
                    ));
                }
            } else if matches!(insn.code & 0xe0, MODE_ABS | MODE_IND) {
                // interpreter.rs reads these from `mem` in host byte order
                // and bounds-checks 8 bytes whatever the size; the kernel
                // converts from network order.
                return no(format!("legacy packet load LD_ABS/LD_IND (opcode {:#04x})", insn.code));
            }
        }
        LDX => {
            if insn.code & 0xe0 == MODE_MEMSX {
                return no(format!("sign-extending load ldxs{} (cpu v4)", size_name(insn.code)));
            }
        }
        ST | STX => {
            if insn.code & 0xe0 == MODE_ATOMIC {
                // verifier.rs: "XADD instructions are not supported".
                return no(format!("atomic operation (imm {:#x})", insn.imm));
            }
        }
        _ => unreachable!("class is 3 bits"),
    }
    Ok(())
}

/// BPF-to-BPF calls. The interpreter supports them with fixed 256-byte
/// frames out of one 512-byte stack (`stack.rs` `StackUsageType::Default`,
/// `ebpf::STACK_SIZE`), where the kernel sizes each frame by its use. So
/// they run exactly only when no frame needs more than 256 bytes and the
/// stack is addressed only directly through r10, with no nested calls
/// (a third frame would start at the bottom of the 512 bytes).
fn check_local_calls(insns: &[Insn], calls: &[usize], engine: Engine) -> Result<(), Unsupported> {
    if engine == Engine::Jit {
        // jit.rs emit_local_call pushes r6-r9 and calls, leaving r10 as is:
        // the callee's stack overlaps its caller's.
        return Err(Unsupported::new(
            "BPF-to-BPF call in the JIT (rbpf gives callees no stack frame)".into(),
            calls[0],
        ));
    }
    // interpreter.rs `insn_ptr += insn.imm as usize` wraps to the right
    // target for a backward call only without overflow checks: the
    // workspace disables them for rbpf in every profile (Cargo.toml), and
    // the runner turns a panic into an error should that ever change.
    let callees: Vec<usize> =
        calls.iter().map(|&c| (c as i64 + 1 + insns[c].imm as i64) as usize).collect();
    for &entry in &callees {
        // A call reachable inside a callee's body is a nested call.
        if let Some(&c) = calls.iter().find(|&&c| body(insns, entry).contains(&c)) {
            return Err(Unsupported::new(
                "nested BPF-to-BPF call (rbpf's third frame has no stack left)".into(),
                c,
            ));
        }
    }
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        let (class, mode) = (insn.class(), insn.code & 0xe0);
        let is_mem = matches!(class, LDX | ST | STX) && mode == MODE_MEM;
        let base = if class == LDX { insn.src } else { insn.dst };
        if is_mem && base == 10 {
            let size = mem_size(insn.code) as i32;
            let off = insn.off as i32;
            if off < -RBPF_FRAME || off + size > 0 {
                return Err(Unsupported::new(
                    format!("stack access at r10{off:+} beyond rbpf's 256-byte call frame"),
                    i,
                ));
            }
        }
        let reads_r10_value = match class {
            ALU | ALU64 => insn.code & X != 0 && insn.src == 10 || insn.dst == 10,
            JMP | JMP32 => insn.code & X != 0 && insn.src == 10,
            STX => insn.src == 10,
            _ => false,
        };
        if reads_r10_value {
            return Err(Unsupported::new(
                "use of r10 as a value alongside BPF-to-BPF calls (stack use cannot be bounded to rbpf's frame)".into(),
                i,
            ));
        }
        i += if insn.is_lddw() { 2 } else { 1 };
    }
    Ok(())
}

/// Slots reachable from `entry` without entering calls: a function's body.
fn body(insns: &[Insn], entry: usize) -> std::collections::BTreeSet<usize> {
    let mut seen = std::collections::BTreeSet::new();
    let mut work = vec![entry];
    while let Some(i) = work.pop() {
        if i >= insns.len() || !seen.insert(i) {
            continue;
        }
        let insn = insns[i];
        let next = i as i64 + 1;
        let op = insn.code & 0xf0;
        let succ: Vec<i64> = match insn.class() {
            JMP | JMP32 if op == EXIT => vec![],
            JMP | JMP32 if op == CALL => vec![next],
            JMP if op == JA => vec![next + insn.off as i64],
            JMP32 if op == JA => vec![next + insn.imm as i64],
            JMP | JMP32 => vec![next, next + insn.off as i64],
            LD if insn.is_lddw() => vec![next + 1],
            _ => vec![next],
        };
        work.extend(succ.into_iter().filter(|&t| t >= 0).map(|t| t as usize));
    }
    seen
}

/// The first slot that may read `reg` before anything wrote it, on some
/// path from the entry (a forward "defined on every path" analysis). Used
/// for `r2`-`r5`, which rbpf zeroes at entry while bpf_conformance's
/// executors pass the memory length in `r2` and the kernel leaves them
/// unreadable.
pub fn reads_before_write(insns: &[Insn], reg: u8) -> Option<usize> {
    let n = insns.len();
    // defined[i]: Some(true) if `reg` is written on every path to i.
    let mut defined: Vec<Option<bool>> = vec![None; n];
    let mut work = vec![0usize];
    if n == 0 {
        return None;
    }
    defined[0] = Some(false);
    let mut first_read: Option<usize> = None;
    while let Some(i) = work.pop() {
        let insn = insns[i];
        let mut d = defined[i].expect("queued slots are reached");
        let (class, op) = (insn.class(), insn.code & 0xf0);
        let x = insn.code & X != 0;
        let reads = match class {
            ALU | ALU64 => (x && insn.src == reg) || (op != MOV && insn.dst == reg),
            JMP | JMP32 if op == EXIT => reg == 0,
            JMP | JMP32 if op == CALL => false,
            JMP | JMP32 => op != JA && (insn.dst == reg || (x && insn.src == reg)),
            LDX => insn.src == reg,
            ST => insn.dst == reg,
            STX => insn.dst == reg || insn.src == reg,
            _ => false,
        };
        if reads && !d {
            first_read = Some(first_read.map_or(i, |f| f.min(i)));
        }
        let writes = match class {
            ALU | ALU64 | LD | LDX => insn.dst == reg,
            JMP | JMP32 if op == CALL => reg <= 5,
            STX if insn.code & 0xe0 == MODE_ATOMIC && insn.imm & ATOMIC_FETCH != 0 => {
                reg == if insn.imm == ATOMIC_CMPXCHG { 0 } else { insn.src }
            }
            _ => false,
        };
        d |= writes;
        let next = i as i64 + 1;
        let succ: Vec<i64> = match class {
            JMP | JMP32 if op == EXIT => vec![],
            JMP | JMP32 if op == CALL && insn.src == PSEUDO_CALL => {
                vec![next, next + insn.imm as i64]
            }
            JMP | JMP32 if op == CALL => vec![next],
            JMP if op == JA => vec![next + insn.off as i64],
            JMP32 if op == JA => vec![next + insn.imm as i64],
            JMP | JMP32 => vec![next, next + insn.off as i64],
            LD if insn.is_lddw() => vec![next + 1],
            _ => vec![next],
        };
        for t in succ {
            if t < 0 || t as usize >= n {
                continue;
            }
            let t = t as usize;
            let merged = defined[t].map_or(d, |old| old && d);
            if defined[t] != Some(merged) {
                defined[t] = Some(merged);
                work.push(t);
            }
        }
    }
    first_read
}

fn pseudo_name(src: u8) -> &'static str {
    match src {
        PSEUDO_MAP_FD => "map fd",
        PSEUDO_MAP_VALUE => "map value",
        PSEUDO_BTF_ID => "BTF id",
        PSEUDO_FUNC => "function pointer",
        PSEUDO_MAP_IDX => "map index",
        PSEUDO_MAP_IDX_VALUE => "map index value",
        _ => "unknown",
    }
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        SIZE_B => "b",
        SIZE_H => "h",
        SIZE_W => "w",
        _ => "dw",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::asm::assemble;

    fn why(src: &str) -> String {
        eligibility(&assemble(src).unwrap()).unwrap_err().to_string()
    }

    #[test]
    fn refusals_name_the_construct_and_slot() {
        assert_eq!(
            why("mov %r0, 1\nsdiv %r0, 3\nexit"),
            "rbpf: unsupported: signed division (sdiv, off=1) at insn 1"
        );
        assert_eq!(
            why("smod32 %r0, %r1\nexit"),
            "rbpf: unsupported: signed modulo (smod32, off=1) at insn 0"
        );
        assert_eq!(
            why("movsx1632 %r0, %r1\nexit"),
            "rbpf: unsupported: sign-extending move (movsx1632, off=16) at insn 0"
        );
        assert_eq!(
            why("movsx864 %r0, %r1\nexit"),
            "rbpf: unsupported: sign-extending move (movsx864, off=8) at insn 0"
        );
        assert!(why("bswap16 %r0\nexit").contains("bswap16 (ALU64 END"));
        assert!(why("ja32 +0\nexit").contains("ja32/gotol"));
        assert!(why("ldxsh %r0, [%r1]\nexit").contains("ldxsh"));
        assert!(why("lock add [%r10-8], %r1\nexit").contains("atomic operation (imm 0x0)"));
        assert!(why("call %r2\nexit").contains("indirect call callx %r2"));
        assert!(why("call 5\nexit").contains("helper call 5"));
        assert!(why("call runtime 3\nexit").contains("kfunc"));
        assert!(why("mod32 %r0, %r1\nexit").contains("32-bit modulo by register"));
        assert!(why("jeq %r0, -1, +0\nexit").contains("negative immediate -1"));
        assert!(why("jgt %r0, -2, +0\nexit").contains("negative immediate -2"));
    }

    #[test]
    fn lddw_pseudo_sources_and_legacy_loads() {
        let map = vec![
            Insn::new(LD_DW_IMM, 1, PSEUDO_MAP_FD, 0, 0),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        assert_eq!(
            eligibility(&map).unwrap_err().to_string(),
            "rbpf: unsupported: lddw with pseudo source 1 (map fd) at insn 0"
        );
        let abs = vec![Insn::new(LD | MODE_ABS | SIZE_H, 0, 0, 0, 12), Insn::new(0x95, 0, 0, 0, 0)];
        assert!(eligibility(&abs).unwrap_err().reason.contains("LD_ABS"));
    }

    #[test]
    fn accepted_programs() {
        for src in [
            "mov %r0, 1\ndiv %r0, 0\nmod %r0, %r1\nexit",
            "jsgt %r0, -1, +0\njset %r0, -1, +0\njeq32 %r0, -1, +0\njne %r0, %r1, +0\nexit",
            "mod32 %r0, 3\nle16 %r0\nbe64 %r0\nexit",
            "lddw %r0, 0x1122334455667788\nexit",
        ] {
            assert_eq!(eligibility(&assemble(src).unwrap()), Ok(()), "{src}");
        }
        // Helpers are accepted once registered; negative imm compares in the JIT.
        let p = assemble("call 1\njeq %r0, -1, +0\nexit").unwrap();
        assert_eq!(check(&p, Engine::Jit, &[1]), Ok(()));
        assert!(check(&p, Engine::Interpreter, &[1]).is_err());
    }

    #[test]
    fn jit_only_gaps() {
        let p = assemble("mov32 %r0, %r1\nexit").unwrap();
        assert!(check(&p, Engine::Jit, &[]).unwrap_err().reason.contains("mov32 from a register"));
        let p = assemble("le32 %r0\nexit").unwrap();
        assert_eq!(check(&p, Engine::Interpreter, &[]), Ok(()));
        assert!(check(&p, Engine::Jit, &[]).unwrap_err().reason.contains("le32 in the JIT"));
        let p = assemble("call local f\nexit\nf:\nmov %r0, 1\nexit").unwrap();
        assert_eq!(check(&p, Engine::Interpreter, &[]), Ok(()));
        assert!(check(&p, Engine::Jit, &[]).unwrap_err().reason.contains("no stack frame"));
    }

    #[test]
    fn local_call_frames() {
        let ok =
            "stxdw [%r10-8], %r1\ncall local f\nexit\nf:\nstxdw [%r10-256], %r1\nmov %r0, 1\nexit";
        assert_eq!(eligibility(&assemble(ok).unwrap()), Ok(()));
        let deep = "stxdw [%r10-264], %r1\ncall local f\nexit\nf:\nmov %r0, 1\nexit";
        assert_eq!(why(deep), "rbpf: unsupported: stack access at r10-264 beyond rbpf's 256-byte call frame at insn 0");
        let copy = "mov %r2, %r10\ncall local f\nexit\nf:\nmov %r0, 1\nexit";
        assert!(why(copy).contains("use of r10 as a value"));
        let nested = "call local f\nexit\nf:\ncall local g\nexit\ng:\nmov %r0, 1\nexit";
        assert_eq!(why(nested), "rbpf: unsupported: nested BPF-to-BPF call (rbpf's third frame has no stack left) at insn 2");
        // Without local calls, deep stack use and r10 copies are fine.
        let p = assemble("stxdw [%r10-512], %r1\nmov %r2, %r10\nexit").unwrap();
        assert_eq!(eligibility(&p), Ok(()));
    }

    /// These run rbpf itself on programs whose kernel result is worked out
    /// by hand, to show each interpreter rule guards a real divergence (if
    /// an rbpf upgrade fixes one, its test fails and the rule can go).
    #[test]
    fn rbpf_really_diverges_where_we_refuse() {
        fn raw(src: &str) -> u64 {
            let bytes = crate::isa::encode_le(&assemble(src).unwrap());
            let vm = ::rbpf::EbpfVmRaw::new(Some(&bytes)).unwrap();
            let r0 = vm.execute_program(&mut []).unwrap();
            drop(vm);
            r0
        }
        // Kernel: -1 == sext(-1), jump taken, r0 = 1. rbpf compares with 0xffffffff.
        assert_eq!(raw("mov %r0, -1\njeq %r0, -1, +2\nmov %r0, 0\nexit\nmov %r0, 1\nexit"), 0);
        // Kernel: -7 s/ 2 = -3. rbpf divides unsigned.
        assert_ne!(raw("mov %r0, -7\nsdiv %r0, 2\nexit"), (-3i64) as u64);
        // Kernel: mod32 by 0 keeps the low 32 bits, zero-extended: 0x1.
        assert_eq!(raw("lddw %r0, 0x100000001\nmov %r1, 0\nmod32 %r0, %r1\nexit"), 0x1_0000_0001);
        // Kernel: movsx864 of 0x80 is -128. rbpf moves 0x80.
        assert_eq!(raw("mov %r1, 0x80\nmovsx864 %r0, %r1\nexit"), 0x80);
    }

    #[test]
    fn entry_register_reads() {
        let p = assemble("mov %r0, %r2\nexit").unwrap();
        assert_eq!(reads_before_write(&p, 2), Some(0));
        let p = assemble("mov %r2, 1\nmov %r0, %r2\nexit").unwrap();
        assert_eq!(reads_before_write(&p, 2), None);
        // Written on one path only: the join point reads it undefined.
        let p = assemble("jeq %r1, 0, +1\nmov %r2, 1\nmov %r0, %r2\nexit").unwrap();
        assert_eq!(reads_before_write(&p, 2), Some(2));
        let p = assemble("call 1\nmov %r0, %r2\nexit").unwrap();
        assert_eq!(reads_before_write(&p, 2), None, "a call defines r1-r5 (as clobbered)");
    }

    #[test]
    fn long_programs_are_refused() {
        let mut p = vec![Insn::new(0xb7, 0, 0, 0, 0); 40_000];
        p.push(Insn::new(0x95, 0, 0, 0, 0));
        assert_eq!(eligibility(&p).unwrap_err().insn, 32767);
    }
}
