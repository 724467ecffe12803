//! `__ksym` extern variables: kernel data a program takes the address of,
//! resolved the way libbpf resolves them (tools/lib/bpf/libbpf.c
//! `bpf_object__resolve_externs`, `bpf_object__resolve_ksyms`,
//! `bpf_object__resolve_ksym_var_btf_id`, `find_ksym_btf_id`,
//! `bpf_object__read_kallsyms_file`, and the `RELO_EXTERN_LD64` case of
//! `bpf_object__relocate_data`).
//!
//! - A **typed** variable (`extern const int bpf_prog_active __ksym;`) is
//!   looked up by name as a VAR in the target kernel's BTF (vmlinux only;
//!   module BTFs are not searched), its local type must be compatible with
//!   the kernel's (relo_core.c `__bpf_core_types_are_compat`, as for
//!   kfuncs), and its `lddw` becomes `src = BPF_PSEUDO_BTF_ID`, `imm` = the
//!   VAR's id, second `imm` = 0 (the BTF object fd slot; 0 is vmlinux).
//!   The kernel then decides what the register is (kernel/bpf/verifier.c
//!   `__check_pseudo_btf_id`): a VAR listed in vmlinux's `.data..percpu`
//!   DATASEC is a per-CPU pointer, anything else read-only memory of the
//!   type's size.
//! - An **untyped** one (`extern const void jiffies __ksym;`) is looked up
//!   in `/proc/kallsyms`, and its `lddw` loads the address as a constant.
//! - A **weak** one that is absent loads 0, which is what
//!   `bpf_ksym_exists()` tests; a strong absent one is an error.

use super::btf_types::{Types, KIND_ARRAY, KIND_DATASEC, KIND_ENUM, KIND_ENUM64, KIND_INT};
use super::btf_types::{KIND_CONST, KIND_RESTRICT, KIND_TYPEDEF, KIND_TYPE_TAG, KIND_VOLATILE};
use super::btf_types::{KIND_FLOAT, KIND_PTR, KIND_STRUCT, KIND_UNION, KIND_VAR};
use super::error::LoadError;
use super::externs::Externs;
use crate::{KsymKind, KsymVar};
use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::Path;

/// Where libbpf reads kernel symbol addresses (`bpf_object__read_kallsyms_file`).
pub const KALLSYMS: &str = "/proc/kallsyms";

/// The DATASEC of vmlinux BTF whose variables are per-CPU
/// (kernel/bpf/verifier.c `find_btf_percpu_datasec`).
const PERCPU_DATASEC: &str = ".data..percpu";

/// Resolves every `__ksym` variable of `ext`, adds the instruction and BTF
/// patches, and returns what each resolved to, in name order. `target` is
/// the target kernel's BTF, needed (and given) only for typed variables.
pub(super) fn resolve(
    ext: &mut Externs,
    local: &Types,
    target: Option<&Types>,
    target_path: &Path,
    kallsyms: &Path,
    path: &Path,
) -> Result<Vec<KsymVar>, LoadError> {
    let err = |name: &str, reason: String| LoadError::Extern {
        path: path.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    let mut out: BTreeMap<String, KsymVar> = BTreeMap::new();
    let typed: Vec<_> = ext.ksym_vars.values().filter(|v| v.local_type != 0).cloned().collect();
    if let (false, Some(target)) = (typed.is_empty(), target) {
        let percpu: Vec<u32> = target
            .types
            .iter()
            .find(|t| t.kind == KIND_DATASEC && t.name == PERCPU_DATASEC)
            .map(|t| t.extra.chunks_exact(3).map(|e| e[0]).collect())
            .unwrap_or_default();
        for v in typed {
            let found = target
                .types
                .iter()
                .position(|t| t.kind == KIND_VAR && t.name == v.name)
                .map(|i| i as u32);
            let Some(tid) = found else {
                if v.weak {
                    out.insert(v.name.clone(), absent(&v.name, true));
                    continue;
                }
                return Err(err(
                    &v.name,
                    format!(
                        "extern (var ksym) not found in the target kernel's BTF ({}): that \
                         kernel has no such variable, or its BTF does not describe it (pahole \
                         emits only per-CPU variables unless built with global_var; module \
                         BTFs are not searched); declare it __weak to load 0 when it is absent",
                        target_path.display()
                    ),
                ));
            };
            let ttype = target.get(tid).map_or(0, |t| t.size_or_type);
            // libbpf checks compatibility even for a weak extern.
            if !super::kfuncs::compat(local, v.local_type, target, ttype, 32)
                .map_err(|r| err(&v.name, r))?
            {
                return Err(err(
                    &v.name,
                    format!(
                        "extern (var ksym): incompatible types: the object declares {}, the \
                         kernel's BTF ({}) has {}",
                        super::kfuncs::kind_word(local, v.local_type),
                        target_path.display(),
                        super::kfuncs::kind_word(target, ttype)
                    ),
                ));
            }
            let size = resolve_size(target, ttype, 0).map_err(|r| {
                err(&v.name, format!("the size of its type in the kernel's BTF: {r}"))
            })?;
            out.insert(
                v.name.clone(),
                KsymVar {
                    name: v.name.clone(),
                    weak: v.weak,
                    kind: KsymKind::Typed {
                        btf_id: tid,
                        type_name: super::kfuncs::kind_word(target, ttype),
                        size,
                        percpu: percpu.contains(&tid),
                    },
                },
            );
        }
    }
    let untyped: Vec<_> = ext.ksym_vars.values().filter(|v| v.local_type == 0).cloned().collect();
    if !untyped.is_empty() {
        let wanted: Vec<&str> = untyped.iter().map(|v| v.name.as_str()).collect();
        let addrs = read_kallsyms(kallsyms, &wanted)
            .map_err(|(name, reason)| err(name.as_deref().unwrap_or(wanted[0]), reason))?;
        for v in untyped {
            let kind = match addrs.get(&v.name) {
                Some(&addr) if addr != 0 => KsymKind::Untyped { addr },
                Some(_) if !v.weak => {
                    return Err(err(
                        &v.name,
                        format!(
                            "{} lists it at address 0: kernel.kptr_restrict hides addresses \
                             from this user (run as root)",
                            kallsyms.display()
                        ),
                    ))
                }
                None if !v.weak => {
                    return Err(err(
                        &v.name,
                        format!(
                            "extern (ksym) not resolved: {} has no such symbol; declare it \
                             __weak to load 0 when it is absent",
                            kallsyms.display()
                        ),
                    ))
                }
                _ => KsymKind::Absent,
            };
            out.insert(v.name.clone(), KsymVar { name: v.name.clone(), weak: v.weak, kind });
        }
    }
    for (at, _, _, name, dst) in ext.ksym_loads.clone() {
        let Some(v) = out.get(&name) else { continue };
        // The first half's code and dst stay as compiled.
        let (src, lo, hi) = match &v.kind {
            KsymKind::Typed { btf_id, .. } => {
                (xdpqual_isa::opcode::PSEUDO_BTF_ID, *btf_id as i32, 0)
            }
            KsymKind::Untyped { addr } => (0, *addr as u32 as i32, (*addr >> 32) as u32 as i32),
            KsymKind::Absent => (0, 0, 0),
        };
        ext.ksym_patch(at, dst, src, lo, hi);
    }
    btf_patch(ext, local);
    Ok(out.into_values().collect())
}

fn absent(name: &str, weak: bool) -> KsymVar {
    KsymVar { name: name.to_string(), weak, kind: KsymKind::Absent }
}

impl Externs {
    /// Patches an `lddw` at file offset `at`: its source register, and the
    /// two halves of its immediate.
    fn ksym_patch(&mut self, at: usize, dst: u8, src: u8, lo: i32, hi: i32) {
        // Byte 1 holds dst in the low nibble and src in the high one
        // (little-endian objects; big-endian ones were rewritten as
        // little-endian before the loader reads them).
        self.patches.push((at + 1, vec![(src << 4) | (dst & 0xf)]));
        self.patches.push((at + 4, lo.to_le_bytes().to_vec()));
        self.patches.push((at + 12, hi.to_le_bytes().to_vec()));
    }
}

/// libbpf leaves `.ksyms` variables in BTF as allocated 4-byte `int`s at
/// consecutive offsets, since the kernel refuses extern linkage in a
/// DATASEC (`bpf_object__collect_externs`, "pretending that each extern is
/// a 8-byte variable", which in fact uses the object's 4-byte int). Done
/// here only when the DATASEC holds nothing but variables and the object
/// has such an int; otherwise the object's BTF stays as it was (and the
/// host backend loads without it if the kernel refuses it).
fn btf_patch(ext: &mut Externs, local: &Types) {
    let Some(sec) = ext.ksyms_sec else { return };
    let Some(st) = local.get(sec) else { return };
    let entries: Vec<u32> = st.extra.chunks_exact(3).map(|e| e[0]).collect();
    if entries.iter().any(|&id| local.get(id).is_none_or(|t| t.kind != KIND_VAR)) {
        return;
    }
    let Some(int_id) = local.types.iter().position(|t| {
        t.kind == KIND_INT && t.size_or_type == 4 && t.extra.first().is_some_and(|e| e >> 24 == 1)
    }) else {
        return;
    };
    let base = ext.btf_start;
    ext.patches.push((base + st.at + 8, (4 * entries.len() as u32).to_le_bytes().to_vec()));
    for (i, id) in entries.iter().enumerate() {
        let entry = base + st.at + 12 + 12 * i;
        ext.patches.push((entry + 4, (4 * i as u32).to_le_bytes().to_vec()));
        ext.patches.push((entry + 8, 4u32.to_le_bytes().to_vec()));
        let var = local.get(*id).expect("checked above");
        ext.patches.push((base + var.at + 8, (int_id as u32).to_le_bytes().to_vec()));
        ext.patches.push((base + var.at + 12, 1u32.to_le_bytes().to_vec()));
    }
}

/// Kernel BTF's `btf_resolve_size` of the types a kernel variable has.
fn resolve_size(types: &Types, id: u32, depth: usize) -> Result<u32, String> {
    if depth > 16 {
        return Err("type nesting too deep".into());
    }
    let mut id = id;
    for _ in 0..32 {
        let t = types.get(id).ok_or_else(|| format!("type id {id} does not exist"))?;
        match t.kind {
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                id = t.size_or_type
            }
            KIND_INT | KIND_ENUM | KIND_ENUM64 | KIND_STRUCT | KIND_UNION | KIND_FLOAT => {
                return Ok(t.size_or_type)
            }
            KIND_PTR => return Ok(8),
            KIND_ARRAY => {
                let elem = resolve_size(types, t.extra[0], depth + 1)?;
                return elem.checked_mul(t.extra[2]).ok_or_else(|| "array size overflows".into());
            }
            k => return Err(format!("a type of BTF kind {k} has no size")),
        }
    }
    Err("modifier chain too long".into())
}

/// Addresses of `wanted` symbols in a kallsyms file, as libbpf's
/// `libbpf_kallsyms_parse` reads it (`ADDR TYPE NAME [module]`, a data
/// symbol's `.llvm.` suffix dropped). A symbol listed twice at different
/// addresses is ambiguous, as in libbpf. The error names the symbol when
/// there is one.
fn read_kallsyms(
    file: &Path,
    wanted: &[&str],
) -> Result<BTreeMap<String, u64>, (Option<String>, String)> {
    let f = std::fs::File::open(file).map_err(|e| {
        (None, format!("reading {} for untyped __ksym externs: {e}", file.display()))
    })?;
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|e| (None, format!("reading {}: {e}", file.display())))?;
        let mut it = line.split_ascii_whitespace();
        let (Some(addr), Some(ty), Some(mut name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ty.eq_ignore_ascii_case("d") {
            if let Some(i) = name.find(".llvm.") {
                name = &name[..i];
            }
        }
        if !wanted.contains(&name) {
            continue;
        }
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        if let Some(&prev) = out.get(name) {
            if prev != addr {
                return Err((
                    Some(name.to_string()),
                    format!(
                        "extern (ksym) resolution is ambiguous: {} lists it at {prev:#x} and \
                         {addr:#x}",
                        file.display()
                    ),
                ));
            }
        }
        out.insert(name.to_string(), addr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lines_as_libbpf_reads_them() {
        let dir = std::env::temp_dir().join(format!("xdpqual-kallsyms-{}", std::process::id()));
        std::fs::write(
            &dir,
            "ffffffff81000000 T _stext\nffffffff82000010 d foo.llvm.123\n\
             ffffffffc0000000 t bar\t[mod]\nffffffff81000008 D jiffies\n",
        )
        .unwrap();
        let got = read_kallsyms(&dir, &["jiffies", "foo", "bar", "missing"]).unwrap();
        assert_eq!(got.get("jiffies"), Some(&0xffffffff81000008));
        assert_eq!(got.get("foo"), Some(&0xffffffff82000010));
        assert_eq!(got.get("bar"), Some(&0xffffffffc0000000));
        assert_eq!(got.get("missing"), None);
        std::fs::write(&dir, "1 T x\n2 T x\n").unwrap();
        assert!(read_kallsyms(&dir, &["x"]).unwrap_err().1.contains("ambiguous"));
        std::fs::remove_file(&dir).unwrap();
    }
}
