//! CO-RE ("compile once, run everywhere") relocations: the `.BTF.ext`
//! `core_relo` records that clang emits for `__builtin_preserve_access_index`
//! (`BPF_CORE_READ`, `bpf_core_field_exists`, `bpf_core_type_size`, ... and
//! every struct marked `preserve_access_index`, as `vmlinux.h` marks all of
//! them), resolved against a target kernel's BTF before anything runs.
//!
//! The resolution itself is aya-obj's `Object::relocate_btf`, which follows
//! libbpf's rules (tools/lib/bpf/relo_core.c): candidates are the target
//! types of the same kind whose name matches once a `___flavor` suffix is
//! dropped; several candidates that resolve differently are an error
//! ("ambiguous"); a relocation with no candidate is *poisoned*: its
//! instruction becomes `call 0xbad2310`, which the kernel's verifier
//! rejects only if it can reach it. That is what a libbpf-based loader hands
//! the kernel, so it is what every backend runs: the engine accepts the
//! poisoned call at load and faults if a packet reaches it
//! (the engine's `CORE_POISON`).
//!
//! This module adds what aya-obj does not: choosing and reading the target
//! BTF ([`TargetBtf`]), checking the records before aya-obj reads them, and
//! describing each relocation for `inspect` ([`CoreRelocation`]).

use super::error::LoadError;
use super::lines::BtfStrings;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Where the running kernel publishes its own BTF (CONFIG_DEBUG_INFO_BTF).
pub const HOST_BTF: &str = "/sys/kernel/btf/vmlinux";

use xdpqual_isa::helpers::CORE_RELO_POISON as CORE_POISON;

/// Largest target BTF file read: vmlinux BTF is 5–8 MiB on distribution
/// kernels; the limit keeps a wrong `--btf` path from reading gigabytes.
const MAX_TARGET_BTF_BYTES: u64 = 256 << 20;

/// Which kernel's types CO-RE relocations are resolved against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TargetBtf {
    /// The running kernel's, from [`HOST_BTF`]: the engine and the host
    /// backend must agree with the kernel they are compared with.
    #[default]
    Host,
    /// A raw BTF file (`--btf FILE`), e.g. another kernel's
    /// `/sys/kernel/btf/vmlinux` copied from a fleet machine.
    File(PathBuf),
}

impl TargetBtf {
    pub fn path(&self) -> &Path {
        match self {
            TargetBtf::Host => Path::new(HOST_BTF),
            TargetBtf::File(p) => p,
        }
    }
}

/// A parsed target BTF, shared: vmlinux BTF takes tens of milliseconds to
/// parse and every object with relocations in one run needs the same one.
pub(crate) type Target = Arc<TargetTypes>;

pub(crate) struct TargetTypes {
    pub btf: aya_obj::btf::Btf,
    /// The raw file, and its types parsed on first use (kfunc prototypes).
    raw: Vec<u8>,
    types: OnceLock<Result<super::btf_types::Types, String>>,
    /// (BTF kind, name without its `___flavor`) of every named type: the
    /// keys libbpf's candidate search (`bpf_core_find_cands`) matches on.
    essential: HashSet<(u32, String)>,
}

impl TargetTypes {
    /// Every type of the target BTF, parsed once.
    pub(super) fn types(&self) -> Result<&super::btf_types::Types, String> {
        self.types.get_or_init(|| super::btf_types::parse(&self.raw)).as_ref().map_err(Clone::clone)
    }

    fn has_candidate(&self, kind: u32, local_name: &str) -> bool {
        self.essential.contains(&(kind, essential_name(local_name).to_string()))
    }
}

/// A type's name without a `___flavor` suffix (libbpf `bpf_core_essential_name_len`).
fn essential_name(name: &str) -> &str {
    name.split_once("___").map_or(name, |(head, _)| head)
}

/// Reads and parses the target BTF, once per process for the host's.
pub(crate) fn target(which: &TargetBtf, object: &Path) -> Result<Target, LoadError> {
    static HOST: OnceLock<Result<Target, String>> = OnceLock::new();
    let parse = |path: &Path| -> Result<Target, String> {
        let bytes = crate::input::read_limited(path, "BTF file", MAX_TARGET_BTF_BYTES)
            .map_err(|e| e.to_string())?;
        // aya-obj's BTF parser indexes with values from the file; a panic on
        // a hostile file is caught here and reported like any bad input.
        let btf = std::panic::catch_unwind(|| {
            aya_obj::btf::Btf::parse(&bytes, object::Endianness::Little)
                .map_err(|e| super::error::chain(&e))
        })
        .map_err(|_| "the BTF parser crashed on it; it is malformed".to_string())??;
        let essential = super::btf_types::kinds_and_names(&bytes)?
            .into_iter()
            .filter(|(_, n)| !n.is_empty())
            .map(|(k, n)| (k, essential_name(&n).to_string()))
            .collect();
        Ok(Arc::new(TargetTypes { btf, essential, raw: bytes, types: OnceLock::new() }))
    };
    let result = match which {
        TargetBtf::Host => HOST.get_or_init(|| parse(Path::new(HOST_BTF))).clone(),
        TargetBtf::File(p) => parse(p),
    };
    result.map_err(|reason| LoadError::TargetBtf {
        path: object.to_path_buf(),
        btf: which.path().to_path_buf(),
        reason,
    })
}

/// One CO-RE relocation, as `inspect` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoreRelocation {
    /// The code section holding the instruction.
    pub section: String,
    /// Instruction index within that section.
    pub insn: usize,
    /// libbpf's name of the relocation kind (`byte_off`, `field_exists`, ...).
    pub kind: &'static str,
    /// The local type the access starts from, as the object names it
    /// (flavour suffix included).
    pub local_type: String,
    /// The access string (`0:8` = member 8 of the type at index 0).
    pub access: String,
    pub outcome: CoreOutcome,
}

/// What resolving one relocation did to its instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CoreOutcome {
    /// The instruction's immediate or offset changed from `from` to `to`.
    Rewritten { from: i64, to: i64 },
    /// The target agrees with the value compiled in.
    Unchanged { value: i64 },
    /// No candidate in the target: the instruction is now `call 0xbad2310`.
    Poisoned,
}

impl std::fmt::Display for CoreRelocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} insn {}: {} {} [{}] ",
            self.section, self.insn, self.kind, self.local_type, self.access
        )?;
        match self.outcome {
            CoreOutcome::Rewritten { from, to } => write!(f, "{from} -> {to}"),
            CoreOutcome::Unchanged { value } => write!(f, "{value} (unchanged)"),
            CoreOutcome::Poisoned => {
                f.write_str("no match in the target BTF: poisoned (call 0xbad2310)")
            }
        }
    }
}

/// A `core_relo` record (struct bpf_core_relo, include/uapi/linux/bpf.h).
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub section: String,
    /// Byte offset of the instruction in its section.
    pub insn_off: u32,
    pub type_id: u32,
    pub access: String,
    pub kind: u32,
    /// Byte offset of the record's `kind` word in `.BTF.ext`.
    pub kind_at: usize,
}

/// The `core_relo` records of `.BTF.ext`, checked for bounds and sizes so
/// that aya-obj only ever reads well-formed ones. Empty when there are none.
pub(crate) fn records(
    btf_ext: &[u8],
    strings: Option<&BtfStrings<'_>>,
    path: &Path,
) -> Result<Vec<Record>, LoadError> {
    let bad = |reason: String| LoadError::Btf {
        path: path.to_path_buf(),
        reason: format!(".BTF.ext core_relo: {reason}"),
    };
    let u32_at = |d: &[u8], o: usize| {
        d.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    // struct btf_ext_header: magic, version, flags, hdr_len, then
    // func_info/line_info offset+length pairs and, when hdr_len >= 32,
    // core_relo_off and core_relo_len (tools/lib/bpf/libbpf_internal.h).
    let Some(hdr_len) = u32_at(btf_ext, 4) else { return Ok(Vec::new()) };
    if hdr_len < 32 {
        return Ok(Vec::new());
    }
    let (Some(off), Some(len)) = (u32_at(btf_ext, 24), u32_at(btf_ext, 28)) else {
        return Err(bad("header shorter than its stated length".into()));
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let start = (hdr_len as usize).checked_add(off as usize);
    let sub = start
        .and_then(|s| btf_ext.get(s..s.checked_add(len as usize)?))
        .ok_or_else(|| bad(format!("{len} bytes at {off} run past the section")))?;
    let rec_size = u32_at(sub, 0).unwrap_or(0) as usize;
    if rec_size < 16 || !rec_size.is_multiple_of(4) {
        return Err(bad(format!("record size {rec_size} (at least 16, a multiple of 4)")));
    }
    let strings = strings.ok_or_else(|| bad("the object has CO-RE records but no .BTF".into()))?;
    let string = |off: u32, what: &str| {
        strings.at(off).ok_or_else(|| bad(format!("{what} string offset {off} is out of range")))
    };
    let mut out = Vec::new();
    let mut at = 4;
    while at < sub.len() {
        let (Some(sec_off), Some(n)) = (u32_at(sub, at), u32_at(sub, at + 4)) else {
            return Err(bad(format!("section header at byte {at} is cut short")));
        };
        let section = string(sec_off, "section name")?;
        at += 8;
        let body = (n as usize)
            .checked_mul(rec_size)
            .and_then(|b| at.checked_add(b))
            .filter(|&end| end <= sub.len())
            .ok_or_else(|| bad(format!("{n} records of section `{section}` run past the end")))?;
        while at < body {
            let word = |i: usize| u32_at(sub, at + 4 * i).expect("inside the checked body");
            let access = string(word(2), "access")?;
            if word(0) % 8 != 0 {
                return Err(bad(format!(
                    "section `{section}`: instruction offset {} is not a multiple of 8",
                    word(0)
                )));
            }
            out.push(Record {
                section: section.clone(),
                insn_off: word(0),
                type_id: word(1),
                access,
                kind: word(3),
                kind_at: start.expect("checked above") + at + 12,
            });
            at += rec_size;
        }
    }
    Ok(out)
}

/// libbpf's name for a relocation kind (enum bpf_core_relo_kind,
/// include/uapi/linux/bpf.h; names as relo_core.c `core_relo_kind_str`).
pub(crate) fn kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "byte_off",
        1 => "byte_sz",
        2 => "field_exists",
        3 => "signed",
        4 => "lshift_u64",
        5 => "rshift_u64",
        6 => "local_type_id",
        7 => "target_type_id",
        8 => "type_exists",
        9 => "type_size",
        10 => "enumval_exists",
        11 => "enumval_value",
        12 => "type_matches",
        _ => "unknown",
    }
}

/// Kinds aya-obj 0.2 resolves. `type_matches` (kind 12, libbpf 1.1) is
/// refused by name rather than mis-resolved.
pub(crate) fn supported(kind: u32) -> bool {
    kind <= 11
}

/// Rewrites the `core_relo` subsection of `.BTF.ext` in place so that it
/// holds only the blocks of the sections in `keep`: kept blocks move to the
/// front and the header's `core_relo_len` shrinks, so nothing else in the
/// file moves. Called on bytes [`records`] has already checked.
pub(crate) fn keep_sections(
    ext: &mut [u8],
    strings: Option<&BtfStrings<'_>>,
    keep: &HashSet<&str>,
) {
    let u32_at = |d: &[u8], o: usize| {
        d.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let (Some(hdr_len), Some(off), Some(len)) = (u32_at(ext, 4), u32_at(ext, 24), u32_at(ext, 28))
    else {
        return;
    };
    let start = hdr_len as usize + off as usize;
    let Some(sub) = ext.get(start..start + len as usize) else { return };
    let rec_size = u32_at(sub, 0).unwrap_or(0) as usize;
    let mut out = sub[..4].to_vec();
    let mut at = 4;
    while let (Some(sec_off), Some(n)) = (u32_at(sub, at), u32_at(sub, at + 4)) {
        let end = at + 8 + n as usize * rec_size;
        let name = strings.and_then(|s| s.at(sec_off)).unwrap_or_default();
        if keep.contains(name.as_str()) {
            out.extend_from_slice(&sub[at..end.min(sub.len())]);
        }
        at = end;
    }
    ext[start..start + out.len()].copy_from_slice(&out);
    ext[28..32].copy_from_slice(&(out.len() as u32).to_le_bytes());
}

const TYPE_ID_TARGET: u32 = 7;
const TYPE_EXISTS: u32 = 8;
const TYPE_SIZE: u32 = 9;

/// Records that aya-obj 0.2 would refuse but libbpf resolves: a
/// `target_type_id` or `type_size` relocation whose type has no candidate
/// in the target. libbpf gives both the value 0 ("type-based relos return
/// zero when target type is not found", relo_core.c
/// `bpf_core_calc_type_relo`); aya-obj reports a missing definition. A
/// `type_exists` relocation with no candidate also resolves to 0 in both,
/// and it patches the same instruction forms, so these records are handed
/// to aya-obj as `type_exists` (returns the `.BTF.ext` offsets of the kind
/// words to rewrite).
pub(crate) fn zero_when_missing(
    records: &[Record],
    local_types: &[(u32, String)],
    target: &TargetTypes,
) -> Vec<usize> {
    records
        .iter()
        .filter(|r| matches!(r.kind, TYPE_ID_TARGET | TYPE_SIZE))
        .filter(|r| {
            local_types
                .get(r.type_id as usize)
                .is_some_and(|(kind, name)| !name.is_empty() && !target.has_candidate(*kind, name))
        })
        .map(|r| r.kind_at)
        .collect()
}

/// The kind written over the records [`zero_when_missing`] picks.
pub(crate) const ZERO_RESULT_KIND: u32 = TYPE_EXISTS;

/// What a relocation did, judged from the instruction before and after.
/// `lddw` carries its value in two immediates.
pub(crate) fn outcome(
    before: &[aya_obj::generated::bpf_insn],
    after: &[aya_obj::generated::bpf_insn],
) -> CoreOutcome {
    let (Some(b), Some(a)) = (before.first(), after.first()) else {
        return CoreOutcome::Poisoned;
    };
    if a.code == 0x85 && a.imm == CORE_POISON && !(b.code == 0x85 && b.imm == CORE_POISON) {
        return CoreOutcome::Poisoned;
    }
    let value = |i: &[aya_obj::generated::bpf_insn]| -> i64 {
        let first = i[0];
        let class = first.code & 0x07;
        match class {
            // lddw: 64-bit immediate over two slots.
            0x00 if first.code == 0x18 && i.len() > 1 => {
                (first.imm as u32 as i64) | ((i[1].imm as u32 as i64) << 32)
            }
            // Loads and stores: the relocated value is the offset.
            0x01..=0x03 => first.off as i64,
            _ => first.imm as i64,
        }
    };
    let (from, to) = (value(before), value(after));
    if from == to {
        CoreOutcome::Unchanged { value: to }
    } else {
        CoreOutcome::Rewritten { from, to }
    }
}
