//! Per-instruction checks that need no register state: the opcode table
//! (nfp jit.c `instr_cb[]`), cpu=v4 forms, pseudo sources, registers.

use super::{is_nfp, Sink};
use crate::opcode::*;
use crate::profile::{Family, Profile};
use crate::program::{ProgType, ProgramSpec};
use crate::report::Severity::*;
use crate::rules::RuleId;

fn not_supported(code: u8) -> String {
    // nfp verifier.c prints `instruction %#02x not supported`.
    format!("[nfp] instruction {code:#04x} not supported")
}

pub(super) fn check(prog: &ProgramSpec, profile: &Profile, sink: &mut Sink) {
    let nfp = is_nfp(profile);
    let hxdp = profile.profile.family == Family::Hxdp;
    let ptype = prog.prog_type();

    // Program type and flags (kernel/bpf/offload.c bpf_prog_dev_bound_init).
    let ty = match ptype {
        ProgType::Xdp => "xdp",
        ProgType::SchedCls => "sched_cls",
        ProgType::Other => "",
    };
    if !profile.program.prog_types.value.iter().any(|t| t == ty) {
        let (rule, msg) = if hxdp {
            (RuleId::HxdpT1, "hXDP executes XDP programs only".to_string())
        } else {
            (RuleId::T1, "-EINVAL (program type cannot be offloaded)".to_string())
        };
        sink.add(
            rule,
            Violates,
            msg,
            format!(
                "program `{}` (section `{}`) is loaded as {}",
                prog.name,
                prog.section,
                if ty.is_empty() { "other than XDP/SCHED_CLS" } else { ty }
            ),
            None,
        );
    }
    let flags = prog.prog_flags() & !profile.program.allowed_prog_flags.value;
    if flags != 0 {
        sink.add(RuleId::T2, Violates, "-EINVAL (prog_flags not allowed for an offloaded program)".into(),
            format!("section `{}` implies prog_flags {flags:#x} (e.g. BPF_F_XDP_HAS_FRAGS for xdp.frags)", prog.section), None);
    }

    let isa = &profile.isa;
    let mut pc = 0;
    while pc < prog.insns.len() {
        let i = prog.insns[pc];
        let c = i.code;
        let at = Some(pc);
        let width = if c == LD_DW_IMM { 2 } else { 1 };

        if isa.reject_extended_regs.value && (i.dst > 10 || i.src > 10) {
            if nfp {
                sink.add(
                    RuleId::T9,
                    Violates,
                    "[nfp] program uses extended registers - jit hardening?".into(),
                    String::new(),
                    at,
                );
            } else {
                sink.add(
                    RuleId::HxdpI1,
                    Violates,
                    "register outside r0-r10".into(),
                    String::new(),
                    at,
                );
            }
        }

        // kernel/bpf/verifier.c check_cfg: "jump out of range from insn %d to %d".
        if matches!(class(c), 0x05 | 0x06) && !matches!(op(c), 0x80 | 0x90) {
            let delta = if c == 0x06 { i.imm as i64 } else { i.off as i64 };
            let target = pc as i64 + 1 + delta;
            if target < 0 || target >= prog.insns.len() as i64 {
                sink.add(
                    RuleId::KernelReserved,
                    Violates,
                    format!("jump out of range from insn {pc} to {target}"),
                    "kernel/bpf/verifier.c check_cfg".into(),
                    at,
                );
            }
        }

        // kernel/bpf/verifier.c add_subprog: a BPF-to-BPF call whose target is
        // outside the program fails with "call to invalid destination" before
        // check_cfg or any offload hook runs.
        if c == 0x85 && i.src == PSEUDO_CALL {
            let target = pc as i64 + 1 + i.imm as i64;
            if target < 0 || target >= prog.insns.len() as i64 {
                sink.add(
                    RuleId::KernelReserved,
                    Violates,
                    format!("call to invalid destination (insn {pc} calls insn {target})"),
                    "kernel/bpf/verifier.c add_subprog".into(),
                    at,
                );
            }
        }

        // check_reg_arg: "frame pointer is read only" (ALU and LDX write dst).
        if i.dst == 10 && (matches!(class(c), ALU | ALU64) || class(c) == 0x01) {
            sink.add(
                RuleId::KernelReserved,
                Violates,
                "frame pointer is read only".into(),
                "kernel/bpf/verifier.c check_reg_arg".into(),
                at,
            );
        }
        // do_check: BPF_CALL src must be a helper (0), a pseudo call (1) or a kfunc (2).
        if c == 0x85 && i.src > 2 {
            sink.add(
                RuleId::KernelReserved,
                Violates,
                "BPF_CALL uses reserved fields".into(),
                "kernel/bpf/verifier.c do_check".into(),
                at,
            );
        }

        // Opcodes with no translation.
        if isa.unsupported_opcodes.value.contains(&c) {
            let rule = if hxdp {
                RuleId::HxdpI1
            } else {
                match c {
                    0x94 | 0x97 | 0x9c | 0x9f => RuleId::I4,
                    0xd4 | 0xd7 | 0xdf => RuleId::I6,
                    0x06 => RuleId::I7,
                    0x81 | 0x89 | 0x91 => RuleId::I11,
                    0x8d => RuleId::S3,
                    _ => RuleId::I1,
                }
            };
            let msg = if hxdp {
                format!("opcode {c:#04x} is outside the hXDP instruction set")
            } else {
                not_supported(c)
            };
            sink.add(rule, Violates, msg, String::new(), at);
        } else if nfp && !known_opcode(c) {
            sink.add(
                RuleId::I1,
                Violates,
                not_supported(c),
                "not a defined eBPF opcode".into(),
                at,
            );
        }

        // cpu=v4 signed forms reuse MOV/DIV/MOD opcodes with off != 0.
        if isa.reject_signed_alu_off.value
            && matches!(class(c), ALU | ALU64)
            && i.off != 0
            && matches!(op(c), MOV | DIV | MOD)
            && !isa.unsupported_opcodes.value.contains(&c)
        {
            let what = match op(c) {
                MOV => "MOVSX",
                DIV => "SDIV",
                _ => "SMOD",
            };
            let (rule, msg) = if hxdp {
                (RuleId::HxdpI1, format!("{what} (cpu=v4) is outside the hXDP instruction set"))
            } else {
                (
                    RuleId::I12,
                    format!(
                        "{what} (off={}) would be translated as its unsigned/plain form",
                        i.off
                    ),
                )
            };
            sink.add(rule, Violates, msg, "rejected conservatively: the JIT keys on the opcode only (offload-rules.md NFP-I12, unverified on hardware)".into(), at);
        }

        // kernel/bpf/verifier.c check_alu_op: ALU ops other than MOV/DIV/MOD
        // (signed forms) and END must have off == 0; the K form src == 0, the
        // X form imm == 0 ("BPF_ALU uses reserved fields").
        if matches!(class(c), ALU | ALU64) && op(c) != END {
            let x = c & 0x08 != 0;
            let bad_off = i.off != 0 && !matches!(op(c), MOV | DIV | MOD);
            let bad_src = !x && i.src != 0;
            let bad_imm = x && i.imm != 0;
            if bad_off || bad_src || bad_imm {
                sink.add(
                    RuleId::KernelReserved,
                    Violates,
                    "BPF_ALU uses reserved fields".into(),
                    "kernel/bpf/verifier.c check_alu_op".into(),
                    at,
                );
            }
        } else if matches!(class(c), ALU | ALU64) {
            // BPF_END: imm is the width; off and src reserved.
            if !matches!(i.imm, 16 | 32 | 64) || i.off != 0 || i.src != 0 {
                sink.add(
                    RuleId::KernelReserved,
                    Violates,
                    "BPF_ALU uses reserved fields".into(),
                    "kernel/bpf/verifier.c check_alu_op".into(),
                    at,
                );
            }
        }

        if nfp {
            // Store-immediate: translation fails (mem_st handles only packet pointers... and the
            // verifier hook never records a pointer type for it).
            if isa.store_imm_fails.value && class(c) == ST && mode(c) == MODE_MEM {
                sink.add(RuleId::I10, Violates, "Translation failed with error -95".into(),
                    "BPF_ST (store immediate) is not translated (offload-rules.md NFP-I10, derived from jit.c mem_st)".into(), at);
            }
            if class(c) == STX
                && mode(c) == MODE_ATOMIC
                && isa.atomic_add_to_map_value_only.value
                && matches!(c & 0x18, SIZE_W | SIZE_DW)
                && i.imm != ATOMIC_ADD
            {
                sink.add(
                    RuleId::I8,
                    Violates,
                    format!("[nfp] atomic op not implemented: {}", i.imm),
                    String::new(),
                    at,
                );
            }
            if class(c) == LD && matches!(mode(c), MODE_ABS | MODE_IND) && ptype == ProgType::Xdp {
                sink.add(
                    RuleId::I13,
                    Violates,
                    "BPF_LD_[ABS|IND] instructions not allowed for this program type".into(),
                    "the kernel allows legacy packet loads for TC, not XDP".into(),
                    at,
                );
            }
            if c == LD_DW_IMM && !matches!(i.src, 0 | PSEUDO_MAP_FD | PSEUDO_MAP_VALUE) {
                sink.add(
                    RuleId::I14,
                    Violates,
                    "Translation failed with error -95".into(),
                    format!(
                        "lddw pseudo source {} is not handled; only BPF_PSEUDO_MAP_FD is",
                        i.src
                    ),
                    at,
                );
            }
            if class(c) == JMP && op(c) == CALL && !is_x(c) && i.src == PSEUDO_KFUNC_CALL {
                sink.add(
                    RuleId::H1,
                    Violates,
                    format!("[nfp] unsupported function id: {}", i.imm),
                    "kfunc calls reach the helper switch with their BTF id".into(),
                    at,
                );
            }
        }
        if c == LD_DW_IMM && i.src == PSEUDO_MAP_VALUE && !profile.maps.global_data.value {
            let name = prog.maps.get(i.imm as usize).map(|m| m.name.clone()).unwrap_or_default();
            sink.add(
                RuleId::P12,
                Violates,
                "global data is not supported for offload".into(),
                format!("direct map value access (BPF_PSEUDO_MAP_VALUE) to map `{name}`"),
                at,
            );
        }
        pc += width;
    }
}

/// Whether `c` is a defined eBPF opcode at all (RFC 9669 §3-5).
fn known_opcode(c: u8) -> bool {
    match class(c) {
        ALU | ALU64 => {
            let o = op(c);
            o <= END && !(o == NEG && is_x(c)) && !(o == END && class(c) == ALU64 && is_x(c))
        }
        JMP | JMP32 => {
            let o = op(c);
            match o {
                CALL | EXIT => class(c) == JMP,
                JA => true,
                _ => o <= JSLE,
            }
        }
        LD => c == LD_DW_IMM || (matches!(mode(c), MODE_ABS | MODE_IND) && c & 0x18 != SIZE_DW),
        LDX => mode(c) == MODE_MEM || (mode(c) == MODE_MEMSX && c & 0x18 != SIZE_DW),
        ST => mode(c) == MODE_MEM,
        _ /* STX */ => mode(c) == MODE_MEM || (mode(c) == MODE_ATOMIC && matches!(c & 0x18, SIZE_W | SIZE_DW)),
    }
}
