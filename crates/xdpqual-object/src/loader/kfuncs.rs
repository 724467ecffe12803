//! kfunc calls: `__ksym` extern functions resolved against the target
//! kernel's BTF as libbpf resolves them (tools/lib/bpf/libbpf.c
//! `bpf_object__resolve_ksym_func_btf_id`, `bpf_object__relocate_data`
//! `RELO_EXTERN_CALL`, `poison_kfunc_call`).
//!
//! Each call becomes `call` with `src_reg = BPF_PSEUDO_KFUNC_CALL` (2),
//! `imm` = the FUNC's id in the target BTF and `off` = 0 (vmlinux; module
//! BTFs are not searched). The local prototype must be compatible with the
//! kernel's (relo_core.c `__bpf_core_types_are_compat`). A weak kfunc the
//! kernel lacks, or whose prototype does not match, becomes libbpf's
//! poisoned helper call `POISON_CALL_KFUNC_BASE + extern index`, which the
//! kernel refuses only if it is reachable; a strong one is an error.

use super::btf_types::{Types, KIND_ARRAY, KIND_ENUM, KIND_ENUM64, KIND_FUNC, KIND_FUNC_PROTO};
use super::btf_types::{KIND_CONST, KIND_RESTRICT, KIND_TYPEDEF, KIND_TYPE_TAG, KIND_VOLATILE};
use super::btf_types::{KIND_FWD, KIND_INT, KIND_PTR, KIND_STRUCT, KIND_UNION};
use super::error::LoadError;
use super::externs::Externs;
use std::collections::BTreeMap;
use std::path::Path;

/// libbpf `POISON_CALL_KFUNC_BASE`.
pub use xdpqual_isa::helpers::KFUNC_POISON_BASE as POISON_CALL_KFUNC_BASE;

/// Resolves every kfunc of `ext` in `target` and adds the call patches.
/// Returns the resolved kfuncs, target BTF id to name.
pub(super) fn resolve(
    ext: &mut Externs,
    local: &Types,
    target: &Types,
    target_path: &Path,
    path: &Path,
) -> Result<BTreeMap<i32, String>, LoadError> {
    let mut resolved: BTreeMap<String, i32> = BTreeMap::new();
    let mut poisoned: BTreeMap<String, i32> = BTreeMap::new();
    for k in ext.kfuncs.values() {
        let site = ext.kfunc_calls.iter().find(|c| c.3 == k.name);
        let fail = |reason: String| match site {
            Some((_, section, insn, _)) => LoadError::Relocation {
                path: path.to_path_buf(),
                section: section.clone(),
                insn: *insn,
                reason: format!("call to kfunc `{}`: {reason}", k.name),
            },
            None => LoadError::Extern { path: path.to_path_buf(), name: k.name.clone(), reason },
        };
        // libbpf looks the kfunc up by its essential name (no ___flavor).
        let essential = k.name.split_once("___").map_or(k.name.as_str(), |(h, _)| h);
        let found = target
            .types
            .iter()
            .position(|t| t.kind == KIND_FUNC && t.name == essential)
            .map(|i| i as u32);
        let problem = match found {
            None => Some(format!(
                "the target kernel's BTF ({}) has no such function: that kernel does not offer \
                 it (not built in, or in a module, whose BTF xdpqual does not search)",
                target_path.display()
            )),
            Some(tid) => {
                let lproto = local.get(k.local_id).map_or(0, |t| t.size_or_type);
                let tproto = target.get(tid).map_or(0, |t| t.size_or_type);
                match compat(local, lproto, target, tproto, 32) {
                    Ok(true) => {
                        resolved.insert(k.name.clone(), tid as i32);
                        None
                    }
                    Ok(false) => Some(format!(
                        "its prototype in the object ({}) does not match the kernel's ({}) in {}",
                        describe(local, lproto),
                        describe(target, tproto),
                        target_path.display()
                    )),
                    Err(e) => Some(e),
                }
            }
        };
        if let Some(reason) = problem {
            if !k.weak {
                return Err(fail(reason));
            }
            poisoned.insert(k.name.clone(), POISON_CALL_KFUNC_BASE + k.index as i32);
        }
    }
    for (at, _, _, name) in &ext.kfunc_calls {
        let (src, imm) = match (resolved.get(name), poisoned.get(name)) {
            (Some(id), _) => (xdpqual_isa::opcode::PSEUDO_KFUNC_CALL, *id),
            (None, Some(p)) => (0, *p),
            (None, None) => continue,
        };
        let mut insn = [0u8; 8];
        insn[0] = xdpqual_isa::opcode::JMP | xdpqual_isa::opcode::CALL;
        insn[1] = src << 4;
        insn[4..8].copy_from_slice(&imm.to_le_bytes());
        ext.patches.push((*at, insn.to_vec()));
    }
    Ok(resolved.into_iter().map(|(n, id)| (id, n)).collect())
}

fn skip(types: &Types, mut id: u32) -> Result<u32, String> {
    for _ in 0..32 {
        let t = types.get(id).ok_or_else(|| format!("BTF type id {id} does not exist"))?;
        match t.kind {
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                id = t.size_or_type
            }
            _ => return Ok(id),
        }
    }
    Err("BTF modifier chain too long".into())
}

/// relo_core.c `__bpf_core_types_are_compat`: same kind after modifiers and
/// typedefs (any enum matches any enum); structs, unions, enums and
/// forward declarations match by kind alone; integers unless one is a
/// bitfield-like integer with a bit offset; pointers and arrays by their
/// element; prototypes by arity, each parameter and the return type.
pub(super) fn compat(
    local: &Types,
    lid: u32,
    target: &Types,
    tid: u32,
    depth: u32,
) -> Result<bool, String> {
    if depth == 0 {
        return Err("prototype types nest too deeply".into());
    }
    let (lid, tid) = (skip(local, lid)?, skip(target, tid)?);
    let (Some(l), Some(t)) = (local.get(lid), target.get(tid)) else { return Ok(false) };
    let any_enum = |k| k == KIND_ENUM || k == KIND_ENUM64;
    if l.kind != t.kind && !(any_enum(l.kind) && any_enum(t.kind)) {
        return Ok(false);
    }
    Ok(match l.kind {
        0 | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FWD => true,
        KIND_INT => {
            let off = |w: Option<&u32>| w.map_or(0, |w| (w >> 16) & 0xff);
            off(l.extra.first()) == 0 && off(t.extra.first()) == 0
        }
        KIND_PTR => compat(local, l.size_or_type, target, t.size_or_type, depth - 1)?,
        KIND_ARRAY => compat(local, l.extra[0], target, t.extra[0], depth - 1)?,
        KIND_FUNC_PROTO => {
            if l.vlen != t.vlen {
                return Ok(false);
            }
            for (lp, tp) in l.extra.chunks_exact(2).zip(t.extra.chunks_exact(2)) {
                if !compat(local, lp[1], target, tp[1], depth - 1)? {
                    return Ok(false);
                }
            }
            compat(local, l.size_or_type, target, t.size_or_type, depth - 1)?
        }
        _ => false,
    })
}

/// A prototype for messages: `(N args) -> KIND`.
fn describe(types: &Types, proto: u32) -> String {
    match types.get(proto) {
        Some(t) if t.kind == KIND_FUNC_PROTO => {
            let kinds: Vec<String> =
                t.extra.chunks_exact(2).map(|p| kind_word(types, p[1])).collect();
            format!("({}) -> {}", kinds.join(", "), kind_word(types, t.size_or_type))
        }
        _ => "not a prototype".into(),
    }
}

pub(super) fn kind_word(types: &Types, id: u32) -> String {
    let Ok(id) = skip(types, id) else { return "?".into() };
    match types.get(id) {
        Some(t) => match t.kind {
            0 => "void".into(),
            KIND_INT => format!("int{}", t.size_or_type * 8),
            KIND_PTR => format!("{}*", kind_word(types, t.size_or_type)),
            KIND_STRUCT => format!("struct {}", t.name),
            KIND_UNION => format!("union {}", t.name),
            KIND_ENUM | KIND_ENUM64 => format!("enum {}", t.name),
            KIND_FWD => format!("fwd {}", t.name),
            k => format!("kind {k}"),
        },
        None => "?".into(),
    }
}
