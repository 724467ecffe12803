//! Load-time checks and rewrites: a program the engine cannot run exactly is
//! refused here, naming the instruction, and never run half-way.

use super::helpers::ids;
use super::memory::*;
use xdpqual_isa::opcode::*;
use xdpqual_isa::{Insn, MAX_INSNS};
use xdpqual_object::{KsymKind, MapDef, MapType, Program};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("program '{program}', insn {insn}{}: {reason}", line.as_ref().map(|l| format!(" ({l})")).unwrap_or_default())]
pub struct PrepareError {
    pub program: String,
    pub insn: usize,
    /// `file:line` when BTF line info knows it.
    pub line: Option<String>,
    pub reason: String,
}

/// What a valid opcode byte may carry; `None` when the encoding is invalid.
pub fn check_encoding(ins: Insn) -> Result<(), String> {
    let code = ins.code;
    let op = code & 0xf0;
    let bad = || Err(format!("unknown or malformed instruction (opcode {code:#04x})"));
    if ins.dst > 10 || ins.src > 10 && !matches!(code & 7, LD) {
        return Err(format!("register number out of range (dst r{}, src r{})", ins.dst, ins.src));
    }
    match code & 0x07 {
        ALU | ALU64 => {
            let wide = code & 7 == ALU64;
            match op {
                END => {
                    if wide && code & X != 0 {
                        return bad();
                    }
                    if !matches!(ins.imm, 16 | 32 | 64) {
                        return Err(format!("byte swap width {} is not 16, 32 or 64", ins.imm));
                    }
                }
                NEG if code & X != 0 => return bad(),
                DIV | MOD if !matches!(ins.off, 0 | 1) => return bad(),
                MOV if ins.off != 0 => {
                    let ok = code & X != 0 && (matches!(ins.off, 8 | 16) || wide && ins.off == 32);
                    if !ok {
                        return bad();
                    }
                }
                ADD | SUB | MUL | DIV | MOD | OR | AND | LSH | RSH | NEG | XOR | MOV | ARSH => {
                    if ins.off != 0 && !matches!(op, DIV | MOD) {
                        return bad();
                    }
                }
                _ => return bad(),
            }
            if ins.dst == 10 {
                return Err("write to the read-only frame pointer r10".into());
            }
        }
        JMP | JMP32 => match op {
            JA | JEQ | JGT | JGE | JSET | JNE | JSGT | JSGE | JLT | JLE | JSLT | JSLE => {}
            CALL | EXIT if code & 7 == JMP => {}
            _ => return bad(),
        },
        LDX => {
            let ok = match code & 0xe0 {
                MODE_MEM => true,
                MODE_MEMSX => code & 0x18 != SIZE_DW,
                _ => false,
            };
            if !ok {
                return bad();
            }
            if ins.dst == 10 {
                return Err("write to the read-only frame pointer r10".into());
            }
        }
        ST if code & 0xe0 == MODE_MEM => {}
        STX => match code & 0xe0 {
            MODE_MEM => {}
            MODE_ATOMIC => {
                let rmw = matches!(ins.imm, ATOMIC_ADD | ATOMIC_OR | ATOMIC_AND | ATOMIC_XOR)
                    || matches!(
                        ins.imm & !ATOMIC_FETCH,
                        ATOMIC_ADD | ATOMIC_OR | ATOMIC_AND | ATOMIC_XOR
                    )
                    || ins.imm == ATOMIC_XCHG
                    || ins.imm == ATOMIC_CMPXCHG;
                let acq_rel = ins.imm == 0x100 || ins.imm == 0x110;
                if rmw && !matches!(code & 0x18, SIZE_W | SIZE_DW) || !rmw && !acq_rel {
                    return bad();
                }
            }
            _ => return bad(),
        },
        LD => match code & 0xe0 {
            MODE_ABS | MODE_IND => {
                return Err(
                    "legacy packet access (LD_ABS/LD_IND) is not allowed in XDP programs".into()
                )
            }
            _ if code == LD_DW_IMM => {}
            _ => return bad(),
        },
        _ => return bad(),
    }
    Ok(())
}

pub struct Options {
    /// Accept `callx` (bpf_conformance's runtime, not the kernel).
    pub allow_callx: bool,
    /// Check helper ids against the engine's XDP helper table.
    pub xdp_helpers: bool,
    /// The object's kfuncs, by the BTF id in their call's `imm`.
    pub kfuncs: std::collections::BTreeMap<i32, String>,
    /// The object's `__ksym` variables: a typed one's `lddw` carries its
    /// BTF id (helpers/ksym.rs).
    pub ksyms: Vec<xdpqual_object::KsymVar>,
}

/// Validates `prog` and returns the instructions the interpreter runs:
/// every `lddw` pseudo source replaced by the engine address it stands for.
pub fn prepare(prog: &Program, maps: &[MapDef], opts: &Options) -> Result<Vec<Insn>, PrepareError> {
    let err = |insn: usize, reason: String| PrepareError {
        program: prog.name.clone(),
        insn,
        line: prog.lines.lookup(insn).map(|l| format!("{}:{}", l.file, l.line)),
        reason,
    };
    let n = prog.insns.len();
    if n == 0 {
        return Err(err(0, "program is empty".into()));
    }
    if n > MAX_INSNS {
        return Err(err(0, format!("{n} instructions exceed the kernel's limit of {MAX_INSNS}")));
    }
    let mut out = prog.insns.clone();
    let mut pc = 0;
    while pc < n {
        let ins = prog.insns[pc];
        check_encoding(ins).map_err(|r| err(pc, r))?;
        let class = ins.code & 7;
        if class == LD {
            let Some(hi) = prog.insns.get(pc + 1) else {
                return Err(err(pc, "lddw is missing its second half".into()));
            };
            if hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0 {
                return Err(err(pc + 1, "malformed second half of lddw".into()));
            }
            let map = |idx: i32| -> Result<&MapDef, PrepareError> {
                maps.get(idx as usize).filter(|_| idx >= 0).ok_or_else(|| {
                    err(
                        pc,
                        format!(
                            "lddw refers to map #{idx}, but the object has {} maps",
                            maps.len()
                        ),
                    )
                })
            };
            let value: Option<u64> = match ins.src {
                0 => None,
                PSEUDO_MAP_FD => {
                    map(ins.imm)?;
                    Some(addr(TAG_MAP, ins.imm as u64))
                }
                PSEUDO_MAP_VALUE => {
                    let m = map(ins.imm)?;
                    if !matches!(m.map_type, MapType::Array) {
                        return Err(err(pc, format!("direct value access into map '{}' of type {} (only ARRAY maps allow it)", m.name, m.map_type.name())));
                    }
                    let off = hi.imm as u32;
                    if off >= m.value_size {
                        return Err(err(
                            pc,
                            format!(
                                "direct value offset {off} is beyond map '{}' value size {}",
                                m.name, m.value_size
                            ),
                        ));
                    }
                    Some(addr(TAG_MAP_VALUE_BASE + ins.imm as u64, off as u64))
                }
                PSEUDO_FUNC => {
                    let target = pc as i64 + 1 + ins.imm as i64;
                    if target < 0 || target as usize >= n {
                        return Err(err(
                            pc,
                            format!("function reference to insn {target}, outside the program"),
                        ));
                    }
                    Some(addr(TAG_FUNC, target as u64))
                }
                PSEUDO_BTF_ID => {
                    let found = opts.ksyms.iter().position(|k| {
                        matches!(k.kind, KsymKind::Typed { btf_id, .. } if btf_id as i32 == ins.imm)
                    });
                    let Some(index) = found.filter(|_| hi.imm == 0) else {
                        return Err(err(
                            pc,
                            format!(
                                "lddw of kernel BTF id {} (object fd slot {}) that no __ksym \
                                 variable of the object resolved to: the engine has no kernel \
                                 to look it up in",
                                ins.imm, hi.imm
                            ),
                        ));
                    };
                    crate::helpers::ksym::check(&opts.ksyms[index], index)
                        .map_err(|r| err(pc, r))?;
                    Some(crate::helpers::ksym::base_addr(index))
                }
                s => return Err(err(pc, format!("lddw pseudo source {s} is not supported"))),
            };
            if let Some(v) = value {
                out[pc] = Insn { src: 0, imm: v as u32 as i32, ..ins };
                out[pc + 1] = Insn { imm: (v >> 32) as u32 as i32, ..out[pc + 1] };
            }
            pc += 2;
            continue;
        }
        if class == JMP || class == JMP32 {
            let op = ins.code & 0xf0;
            if op == CALL {
                if ins.code & X != 0 {
                    if !opts.allow_callx {
                        return Err(err(
                            pc,
                            "callx (indirect call) is not supported by Linux".into(),
                        ));
                    }
                } else {
                    match ins.src {
                        CALL_HELPER if opts.xdp_helpers => {
                            // A poisoned CO-RE relocation is accepted here
                            // and faults only if a packet reaches it: the
                            // kernel's verifier, too, rejects only a
                            // reachable one (loader/core.rs).
                            if ids::name(ins.imm).is_none()
                                && ins.imm != xdpqual_isa::helpers::CORE_RELO_POISON
                                && !xdpqual_isa::helpers::is_kfunc_poison(ins.imm)
                            {
                                let name = crate::helper_name(ins.imm);
                                return Err(err(
                                    pc,
                                    format!("helper {name} is not implemented by the engine"),
                                ));
                            }
                        }
                        CALL_HELPER => {}
                        PSEUDO_CALL => {
                            let t = pc as i64 + 1 + ins.imm as i64;
                            if t < 0 || t as usize >= n {
                                return Err(err(
                                    pc,
                                    format!("call to insn {t}, outside the program"),
                                ));
                            }
                        }
                        PSEUDO_KFUNC_CALL => {
                            let Some(name) = opts.kfuncs.get(&ins.imm) else {
                                return Err(err(
                                    pc,
                                    format!(
                                        "kfunc call (BTF id {}) names no kfunc the loader resolved",
                                        ins.imm
                                    ),
                                ));
                            };
                            let Some(id) = crate::helpers::kfuncs::id_of(name) else {
                                let known: Vec<&str> = crate::helpers::kfuncs::modelled().collect();
                                return Err(err(
                                    pc,
                                    format!(
                                        "kfunc {name} is not modelled by the engine (it models {})",
                                        known.join(", ")
                                    ),
                                ));
                            };
                            out[pc] = Insn { src: CALL_HELPER, off: 0, imm: id, ..ins };
                        }
                        s => return Err(err(pc, format!("call with unknown src {s}"))),
                    }
                }
            } else if op != EXIT {
                let delta =
                    if class == JMP32 && op == JA { ins.imm as i64 } else { ins.off as i64 };
                let t = pc as i64 + 1 + delta;
                if t < 0 || t as usize >= n {
                    return Err(err(pc, format!("jump to insn {t}, outside the program")));
                }
            }
        }
        pc += 1;
    }
    Ok(out)
}
