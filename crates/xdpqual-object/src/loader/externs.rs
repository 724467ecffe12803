//! Extern symbols: `__kconfig` variables and `__ksym` kernel functions
//! (kfuncs), resolved the way libbpf resolves them
//! (tools/lib/bpf/libbpf.c: `bpf_object__collect_externs`,
//! `bpf_object__resolve_externs`, `bpf_object__relocate_data`).
//!
//! An extern is an undefined ELF symbol, global or weak, described in BTF by
//! a VAR or FUNC of `extern` linkage that a DATASEC places in `.kconfig` or
//! `.ksyms` (libbpf `sym_is_extern`, `find_extern_btf_id`,
//! `find_extern_sec_btf_id`).
//!
//! - `.kconfig` variables live in one read-only array map named `.kconfig`,
//!   laid out as libbpf lays it out (`cmp_externs`: alignment descending,
//!   then size ascending, then name; each at the next offset of its
//!   alignment). An `lddw` of such a variable becomes a map-value load of
//!   that map at the variable's offset (`RELO_EXTERN_LD64`). `CONFIG_*`
//!   values come from the kernel config text ([`KernelConfig::config`]),
//!   `LINUX_KERNEL_VERSION` from the release; an unset weak extern reads 0,
//!   an unset strong one is an error.
//! - `.ksyms` functions are kfunc calls: see [`super::kfuncs`].
//! - `.ksyms` variables are kernel data addresses: see [`super::ksyms`].
//!
//! The instructions and the object's BTF are patched in the bytes handed to
//! aya-obj, so every backend runs what a libbpf-based loader would hand the
//! kernel.

use super::btf_types::{self, Types, KIND_ARRAY, KIND_DATASEC, KIND_ENUM, KIND_ENUM64};
use super::btf_types::{KIND_CONST, KIND_FUNC, KIND_INT, KIND_RESTRICT, KIND_TYPEDEF};
use super::btf_types::{KIND_TYPE_TAG, KIND_VAR, KIND_VOLATILE};
use super::error::LoadError;
use object::read::{Object as _, ObjectSection as _, ObjectSymbol as _};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use xdpqual_isa::Insn;

/// What `__kconfig` externs read: the target kernel's release and config
/// (what libbpf reads from `uname(2)` and `/boot/config-$(uname -r)` or
/// `/proc/config.gz`). The caller reads them; the loader makes no system
/// calls for them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// `uname -r`: `LINUX_KERNEL_VERSION` is computed from it.
    pub release: Option<String>,
    /// The kernel's `.config` text, decompressed.
    pub config: Option<Arc<str>>,
    /// Where the text came from (`/proc/config.gz`), or why there is none,
    /// for messages.
    pub source: String,
}

/// Where `.kconfig` lddw point before the map has its index: replaced by
/// the `.kconfig` map's index once aya-obj has numbered the others.
pub(super) const KCONFIG_PLACEHOLDER: i32 = 0x7ffe_c0f6;

/// libbpf `enum kcfg_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KcfgType {
    Bool,
    Char,
    Tristate,
    Int,
    CharArr,
}

#[derive(Clone, Debug)]
struct Kcfg {
    name: String,
    weak: bool,
    size: usize,
    align: usize,
    ty: KcfgType,
    signed: bool,
    off: usize,
    set: bool,
}

/// A kfunc the object calls: its name and the local BTF FUNC describing it.
#[derive(Clone, Debug)]
pub(super) struct KfuncExtern {
    pub(super) name: String,
    pub(super) weak: bool,
    /// Local BTF id of the FUNC (extern linkage).
    pub(super) local_id: u32,
    /// Index among the object's externs (libbpf's poison call uses it).
    pub(super) index: usize,
}

/// A `__ksym` variable the object takes the address of.
#[derive(Clone, Debug)]
pub(super) struct KsymVarExtern {
    pub(super) name: String,
    pub(super) weak: bool,
    /// The VAR's type with modifiers and typedefs skipped; 0 (void) for an
    /// untyped `extern const void NAME __ksym` (libbpf
    /// `bpf_object__collect_externs` sets `ksym.type_id` this way).
    pub(super) local_type: u32,
}

/// Everything [`collect`] found, and what to patch.
#[derive(Clone, Debug, Default)]
pub(super) struct Externs {
    /// The `.kconfig` map's initial contents, if there are kconfig externs.
    pub(super) kconfig: Option<Vec<u8>>,
    /// Byte patches of the ELF (instructions and BTF), file offsets.
    pub(super) patches: Vec<(usize, Vec<u8>)>,
    /// kfunc externs by ELF symbol name.
    pub(super) kfuncs: BTreeMap<String, KfuncExtern>,
    /// Call sites of kfuncs: (file offset of the call, section, insn, name).
    pub(super) kfunc_calls: Vec<(usize, String, usize, String)>,
    /// `__ksym` variables by ELF symbol name.
    pub(super) ksym_vars: BTreeMap<String, KsymVarExtern>,
    /// Their `lddw` sites: (file offset, section, insn, name, dst register).
    pub(super) ksym_loads: Vec<(usize, String, usize, String, u8)>,
    /// Where the object's BTF starts in the file, and its `.ksyms` DATASEC
    /// (for the BTF patch libbpf makes to variables in it).
    pub(super) btf_start: usize,
    pub(super) ksyms_sec: Option<u32>,
}

/// What kind of extern an ELF symbol is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExternKind {
    Kconfig,
    Kfunc,
    KsymVar,
}

/// Finds the object's externs, lays out and fills `.kconfig`, and lists the
/// instruction and BTF patches. An object without externs gives an empty
/// [`Externs`].
pub(super) fn collect(
    file: &object::File<'_>,
    btf: Option<&[u8]>,
    cfg: &KernelConfig,
    path: &Path,
) -> Result<Externs, LoadError> {
    let err = |name: &str, reason: String| LoadError::Extern {
        path: path.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    // libbpf sym_is_extern: undefined, global or weak, with a name.
    let syms: Vec<(usize, String, bool)> = file
        .symbols()
        .filter(|s| s.is_undefined() && (s.is_global() || s.is_weak()))
        .filter_map(|s| {
            let name = s.name().ok()?;
            (!name.is_empty()).then(|| (s.index().0, name.to_string(), s.is_weak()))
        })
        .collect();
    let mut out = Externs::default();
    if syms.is_empty() {
        return Ok(out);
    }
    let Some(btf) = btf else {
        return Err(err(
            &syms[0].1,
            "the object has no .BTF section, and libbpf needs BTF to tell a __kconfig from a \
             __ksym extern (build with clang -g)"
                .into(),
        ));
    };
    let types = btf_types::parse(btf)
        .map_err(|reason| LoadError::Btf { path: path.to_path_buf(), reason })?;
    let (btf_start, _) = file
        .section_by_name(".BTF")
        .and_then(|s| s.file_range())
        .ok_or_else(|| err(&syms[0].1, ".BTF section has no file data".into()))?;
    let btf_start = btf_start as usize;

    let mut kcfgs: Vec<Kcfg> = Vec::new();
    let mut kind_of: BTreeMap<usize, (String, ExternKind)> = BTreeMap::new();
    out.btf_start = btf_start;
    let mut kcfg_sec: Option<u32> = None;
    for (index, (sym_index, name, weak)) in syms.iter().enumerate() {
        // libbpf find_extern_btf_id: a VAR or FUNC of that name with extern
        // linkage (BTF_VAR_GLOBAL_EXTERN = 2, BTF_FUNC_EXTERN = 2).
        let id = types
            .types
            .iter()
            .position(|t| {
                &t.name == name
                    && match t.kind {
                        KIND_VAR => t.extra.first() == Some(&2),
                        KIND_FUNC => t.vlen == 2,
                        _ => false,
                    }
            })
            .ok_or_else(|| err(name, "no BTF VAR or FUNC of extern linkage describes it".into()))?
            as u32;
        let sec = types
            .types
            .iter()
            .position(|t| t.kind == KIND_DATASEC && t.extra.chunks_exact(3).any(|e| e[0] == id))
            .ok_or_else(|| err(name, "no BTF DATASEC lists it".into()))? as u32;
        let sec_name = &types.types[sec as usize].name;
        let t = &types.types[id as usize];
        match sec_name.as_str() {
            ".kconfig" => {
                if t.kind == KIND_FUNC {
                    return Err(err(name, "a function cannot be a __kconfig extern".into()));
                }
                let (size, align) = size_align(&types, t.size_or_type, 0)
                    .map_err(|r| err(name, format!("size of its type: {r}")))?;
                let (ty, signed) = kcfg_type(&types, t.size_or_type, 0).ok_or_else(|| {
                    err(
                        name,
                        "its type is not one libbpf supports for __kconfig (bool, char, \
                         enum libbpf_tristate, 1/2/4/8-byte integers, char arrays)"
                            .into(),
                    )
                })?;
                kcfg_sec = Some(sec);
                kcfgs.push(Kcfg {
                    name: name.clone(),
                    weak: *weak,
                    size,
                    align,
                    ty,
                    signed,
                    off: 0,
                    set: false,
                });
                kind_of.insert(*sym_index, (name.clone(), ExternKind::Kconfig));
            }
            ".ksyms" if t.kind == KIND_VAR => {
                // An unresolvable modifier chain counts as untyped: the
                // variable then resolves through kallsyms by name.
                let local_type = skip(&types, t.size_or_type).unwrap_or(0);
                out.ksyms_sec = Some(sec);
                out.ksym_vars.insert(
                    name.clone(),
                    KsymVarExtern { name: name.clone(), weak: *weak, local_type },
                );
                kind_of.insert(*sym_index, (name.clone(), ExternKind::KsymVar));
            }
            ".ksyms" => {
                out.kfuncs.insert(
                    name.clone(),
                    KfuncExtern { name: name.clone(), weak: *weak, local_id: id, index },
                );
                kind_of.insert(*sym_index, (name.clone(), ExternKind::Kfunc));
            }
            other => {
                return Err(err(name, format!("unrecognized extern section `{other}`")));
            }
        }
    }

    if let Some(sec) = kcfg_sec {
        // libbpf cmp_externs: alignment descending, size ascending, name.
        kcfgs.sort_by(|a, b| {
            b.align.cmp(&a.align).then(a.size.cmp(&b.size)).then(a.name.cmp(&b.name))
        });
        let mut off = 0usize;
        for k in &mut kcfgs {
            k.off = off.div_ceil(k.align) * k.align;
            off = k.off + k.size;
        }
        let mut data = vec![0u8; off];
        fill_values(&mut kcfgs, &mut data, cfg, path)?;
        // BTF as libbpf leaves it for the kernel: the DATASEC sized, each
        // VAR at its offset with linkage GLOBAL_ALLOCATED (1).
        let st = &types.types[sec as usize];
        out.patches.push((btf_start + st.at + 8, (off as u32).to_le_bytes().to_vec()));
        for (i, e) in st.extra.chunks_exact(3).enumerate() {
            let Some(var) = types.get(e[0]) else { continue };
            let Some(k) = kcfgs.iter().find(|k| k.name == var.name) else {
                return Err(err(&var.name, "listed in .kconfig but not an extern symbol".into()));
            };
            let entry = btf_start + st.at + 12 + 12 * i;
            out.patches.push((entry + 4, (k.off as u32).to_le_bytes().to_vec()));
            out.patches.push((btf_start + var.at + 12, 1u32.to_le_bytes().to_vec()));
        }
        out.kconfig = Some(data);
    }

    // Instructions that refer to externs.
    for sec in file.sections() {
        if sec.kind() != object::SectionKind::Text {
            continue;
        }
        let Some((sec_start, _)) = sec.file_range() else { continue };
        let Ok(data) = sec.data() else { continue };
        let sec_name = sec.name().unwrap_or("?").to_string();
        for (offset, rel) in sec.relocations() {
            let object::RelocationTarget::Symbol(si) = rel.target() else { continue };
            let Some((name, kind)) = kind_of.get(&si.0) else {
                if file.symbol_by_index(si).is_ok_and(|s| s.is_undefined()) {
                    let name = file
                        .symbol_by_index(si)
                        .ok()
                        .and_then(|s| s.name().ok().map(str::to_string))
                        .unwrap_or_default();
                    return Err(LoadError::Relocation {
                        path: path.to_path_buf(),
                        section: sec_name,
                        insn: offset as usize / 8,
                        reason: format!(
                            "refers to undefined symbol `{name}`, which is neither a __kconfig \
                             nor a __ksym extern (a local symbol or one without BTF)"
                        ),
                    });
                }
                continue;
            };
            let o = offset as usize;
            let Some(raw) = data.get(o..o + 8) else { continue };
            let insn = Insn::from_le_bytes(raw.try_into().expect("8 bytes"));
            let at = sec_start as usize + o;
            let bad = |what: &str| LoadError::Relocation {
                path: path.to_path_buf(),
                section: sec_name.clone(),
                insn: o / 8,
                reason: format!("extern `{name}` is used by {what}"),
            };
            if *kind == ExternKind::KsymVar {
                // RELO_EXTERN_LD64 for a ksym: patched once resolved
                // (ksyms.rs); libbpf relocates data only through lddw.
                if !insn.is_lddw() || data.len() < o + 16 {
                    return Err(bad("an instruction other than lddw (a kernel variable)"));
                }
                out.ksym_loads.push((at, sec_name.clone(), o / 8, name.clone(), insn.dst));
            } else if *kind == ExternKind::Kconfig {
                if !insn.is_lddw() || data.len() < o + 16 {
                    return Err(bad("an instruction other than lddw"));
                }
                let k = kcfgs.iter().find(|k| &k.name == name).expect("collected above");
                // RELO_EXTERN_LD64 for a kcfg extern: a map-value load of the
                // .kconfig map at the extern's offset.
                let first = Insn {
                    src: xdpqual_isa::opcode::PSEUDO_MAP_VALUE,
                    imm: KCONFIG_PLACEHOLDER,
                    ..insn
                };
                out.patches.push((at, first.to_le_bytes().to_vec()));
                out.patches.push((at + 12, (k.off as i32).to_le_bytes().to_vec()));
            } else {
                if insn.code != xdpqual_isa::opcode::JMP | xdpqual_isa::opcode::CALL {
                    return Err(bad("an instruction other than call (taking a kfunc's address)"));
                }
                out.kfunc_calls.push((at, sec_name.clone(), o / 8, name.clone()));
            }
        }
    }
    Ok(out)
}

/// Skips typedefs and modifiers (libbpf `skip_mods_and_typedefs`).
fn skip(types: &Types, mut id: u32) -> Option<u32> {
    for _ in 0..32 {
        if id == 0 {
            return Some(0);
        }
        let t = types.get(id)?;
        match t.kind {
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                id = t.size_or_type
            }
            _ => return Some(id),
        }
    }
    None
}

/// Size and alignment (libbpf `btf__resolve_size`, `btf__align_of` with
/// BPF's 8-byte pointers) of the types a kconfig extern can have.
fn size_align(types: &Types, id: u32, depth: usize) -> Result<(usize, usize), String> {
    if depth > 8 {
        return Err("type nesting too deep".into());
    }
    let id = skip(types, id).ok_or("typedef chain broken")?;
    let t = types.get(id).ok_or("type id out of range")?;
    match t.kind {
        KIND_INT | KIND_ENUM | KIND_ENUM64 => {
            let s = t.size_or_type as usize;
            if s == 0 {
                return Err("zero-sized".into());
            }
            Ok((s, s.min(8)))
        }
        KIND_ARRAY => {
            let (es, ea) = size_align(types, t.extra[0], depth + 1)?;
            let n = t.extra[2] as usize;
            let size =
                es.checked_mul(n).filter(|&s| s > 0 && s <= 1 << 20).ok_or("bad array size")?;
            Ok((size, ea))
        }
        k => Err(format!("BTF kind {k}")),
    }
}

/// libbpf `find_kcfg_type`: the kconfig type and its signedness.
fn kcfg_type(types: &Types, id: u32, depth: usize) -> Option<(KcfgType, bool)> {
    let t = types.get(skip(types, id)?)?;
    match t.kind {
        KIND_INT => {
            let enc = t.extra.first()? >> 24;
            if enc & 4 != 0 {
                // BTF_INT_BOOL
                return (t.size_or_type == 1).then_some((KcfgType::Bool, false));
            }
            let signed = enc & 1 != 0;
            match t.size_or_type {
                1 => Some((KcfgType::Char, signed)),
                2 | 4 | 8 => Some((KcfgType::Int, signed)),
                _ => None,
            }
        }
        KIND_ENUM if t.size_or_type == 4 && t.name == "libbpf_tristate" => {
            Some((KcfgType::Tristate, false))
        }
        KIND_ENUM64 if t.name == "libbpf_tristate" => Some((KcfgType::Tristate, false)),
        KIND_ARRAY if depth == 0 && t.extra[2] > 0 => {
            match kcfg_type(types, t.extra[0], depth + 1)? {
                (KcfgType::Char, _) => Some((KcfgType::CharArr, false)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// libbpf `KERNEL_VERSION(a, b, c)` of a `uname -r` string, as
/// `get_kernel_version` computes it (`sscanf("%u.%u.%u")`, patch capped at
/// 255). Ubuntu's and Debian's special sources (`/proc/version_signature`,
/// the uname version string) are not read.
pub fn kernel_version_code(release: &str) -> Option<u32> {
    let mut nums = [0u32; 3];
    let mut rest = release;
    for (i, n) in nums.iter_mut().enumerate() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        *n = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        if i < 2 {
            rest = rest.strip_prefix('.')?;
        }
    }
    Some((nums[0] << 16) + (nums[1] << 8) + nums[2].min(255))
}

/// Fills `.kconfig` the way `bpf_object__resolve_externs` does.
fn fill_values(
    kcfgs: &mut [Kcfg],
    data: &mut [u8],
    cfg: &KernelConfig,
    path: &Path,
) -> Result<(), LoadError> {
    let err = |name: &str, reason: String| LoadError::Extern {
        path: path.to_path_buf(),
        name: name.to_string(),
        reason,
    };
    let mut need_config = false;
    for k in kcfgs.iter_mut() {
        if k.name.starts_with("CONFIG_") {
            need_config = true;
            continue;
        }
        if k.name == "LINUX_KERNEL_VERSION" {
            let release = cfg
                .release
                .as_deref()
                .ok_or_else(|| err(&k.name, "the target kernel's release is not known".into()))?;
            let v = kernel_version_code(release).ok_or_else(|| {
                err(&k.name, format!("cannot read a version from kernel release `{release}`"))
            })?;
            set_num(k, data, u64::from(v)).map_err(|r| err(&k.name, r))?;
        } else if k.name == "LINUX_HAS_BPF_COOKIE" || k.name == "LINUX_HAS_SYSCALL_WRAPPER" {
            // libbpf fills these by probing the kernel (kernel_supports);
            // xdpqual does not probe.
            return Err(err(
                &k.name,
                "libbpf fills it by probing the running kernel, which xdpqual does not model"
                    .into(),
            ));
        } else if !k.name.starts_with("LINUX_") || !k.weak {
            return Err(err(&k.name, "unrecognized virtual __kconfig extern".into()));
        }
    }
    if need_config {
        let text = cfg.config.as_deref().ok_or_else(|| {
            let k = kcfgs.iter().find(|k| k.name.starts_with("CONFIG_")).expect("need_config");
            err(&k.name, format!("the target kernel's config is not available ({})", cfg.source))
        })?;
        for (n, line) in text.lines().enumerate() {
            process_line(kcfgs, data, line).map_err(|r| {
                err(
                    line.split('=').next().unwrap_or(line),
                    format!("{} line {}: `{line}`: {r}", cfg.source, n + 1),
                )
            })?;
        }
    }
    if let Some(k) = kcfgs.iter().find(|k| !k.set && !k.weak) {
        return Err(err(
            &k.name,
            format!(
                "strong extern not resolved: the target kernel's config ({}) does not set it; \
                 declare it __weak to read 0 when it is unset",
                cfg.source
            ),
        ));
    }
    Ok(())
}

/// libbpf `bpf_object__process_kconfig_line`.
fn process_line(kcfgs: &mut [Kcfg], data: &mut [u8], line: &str) -> Result<(), String> {
    if !line.starts_with("CONFIG_") {
        return Ok(());
    }
    let (name, value) = line.split_once('=').ok_or("no separator")?;
    if value.is_empty() {
        return Err("no value".into());
    }
    let Some(k) = kcfgs.iter_mut().find(|k| k.name == name) else { return Ok(()) };
    if k.set {
        return Ok(());
    }
    let slot = &mut data[k.off..k.off + k.size];
    match value.as_bytes()[0] {
        c @ (b'y' | b'n' | b'm') => {
            match k.ty {
                KcfgType::Bool if c == b'm' => {
                    return Err("value 'm' implies tristate or char type".into())
                }
                KcfgType::Bool => slot[0] = u8::from(c == b'y'),
                // enum libbpf_tristate: TRI_NO 0, TRI_YES 1, TRI_MODULE 2.
                KcfgType::Tristate => {
                    let v: u32 = match c {
                        b'y' => 1,
                        b'm' => 2,
                        _ => 0,
                    };
                    slot[..4].copy_from_slice(&v.to_le_bytes());
                }
                KcfgType::Char => slot[0] = c,
                _ => return Err("value implies bool, tristate, or char type".into()),
            }
            k.set = true;
        }
        b'"' => {
            if k.ty != KcfgType::CharArr {
                return Err("value implies char array type".into());
            }
            if value.len() < 2 || !value.ends_with('"') {
                return Err("invalid string config".into());
            }
            let s = &value.as_bytes()[1..value.len() - 1];
            // Truncated to the array, always NUL-terminated (libbpf
            // set_kcfg_value_str).
            let n = s.len().min(k.size - 1);
            slot[..n].copy_from_slice(&s[..n]);
            slot[n] = 0;
            k.set = true;
        }
        _ => {
            let v = parse_u64(value).ok_or("isn't a valid integer")?;
            if k.ty != KcfgType::Int && k.ty != KcfgType::Char {
                return Err("value implies integer type".into());
            }
            set_num(k, data, v)?;
        }
    }
    Ok(())
}

/// `strtoull(value, &end, 0)` with the whole string consumed: decimal,
/// `0x` hexadecimal, `0` octal, an optional sign (a minus wraps, as in C).
fn parse_u64(value: &str) -> Option<u64> {
    let (neg, v) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if v.len() > 1 && v.starts_with('0') {
        u64::from_str_radix(&v[1..], 8).ok()?
    } else {
        v.parse::<u64>().ok()?
    };
    Some(if neg { n.wrapping_neg() } else { n })
}

/// libbpf `set_kcfg_value_num`, with `is_kcfg_value_in_range`.
fn set_num(k: &mut Kcfg, data: &mut [u8], v: u64) -> Result<(), String> {
    if !matches!(k.ty, KcfgType::Int | KcfgType::Char | KcfgType::Bool) {
        return Err(format!("value {v} implies integer, char, or boolean type"));
    }
    if k.ty == KcfgType::Bool && v > 1 {
        return Err(format!("value {v} isn't boolean compatible"));
    }
    let bits = k.size * 8;
    let fits = bits == 64
        || if k.signed {
            v.wrapping_add(1u64 << (bits - 1)) < (1u64 << bits)
        } else {
            v >> bits == 0
        };
    if !fits {
        return Err(format!("value {v} doesn't fit in {} bytes", k.size));
    }
    data[k.off..k.off + k.size].copy_from_slice(&v.to_le_bytes()[..k.size]);
    k.set = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_as_libbpf_computes_it() {
        assert_eq!(kernel_version_code("6.18.44-fc-v1300"), Some((6 << 16) + (18 << 8) + 44));
        assert_eq!(kernel_version_code("4.19.300"), Some((4 << 16) + (19 << 8) + 255));
        assert_eq!(kernel_version_code("6.12"), None);
    }

    #[test]
    fn integers_as_strtoull_reads_them() {
        assert_eq!(parse_u64("250"), Some(250));
        assert_eq!(parse_u64("0x10"), Some(16));
        assert_eq!(parse_u64("010"), Some(8));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64("12a"), None);
    }
}
