//! ELF-level checks made before aya-obj sees the bytes: is it an ELF, is it
//! BPF, which byte order, are its relocations ones we can apply.
//!
//! aya-obj trusts its input (it slices section data by symbol values and
//! `todo!()`s on unexpected relocation symbols), so what can be checked
//! cheaply here is checked here, with messages that name the file.

use super::error::LoadError;
use object::read::{Object as _, ObjectSection as _, ObjectSymbol as _};
use object::{RelocationFlags, RelocationTarget, SectionKind};
use std::path::Path;
use xdpqual_isa::{opcode, ByteOrder, Insn, INSN_SIZE};

/// The largest `.data`/`.rodata`/`.bss` accepted. Each becomes one map
/// value the engine holds in memory; real XDP globals are kilobytes, and
/// without a cap a forged section header could demand terabytes.
const MAX_GLOBAL_DATA: u64 = 1 << 28;

/// `EM_BPF` from `include/uapi/linux/elf-em.h`.
const EM_BPF: u16 = 247;

// ELF relocation types for BPF (LLVM `BPFELFObjectWriter`, kernel
// Documentation/bpf/llvm_reloc.rst): only these two patch instructions.
const R_BPF_64_64: u32 = 1;
const R_BPF_64_32: u32 = 10;

/// Largest `.bss`-style (SHT_NOBITS) section accepted. Such a section has no
/// bytes in the file, only a size, and aya-obj allocates that many zero
/// bytes for the global-data map (obj.rs `parse_data_map_section`): an
/// unchecked size from a hostile file aborts the process on allocation
/// failure. 1 GiB matches the engine's cap on one map's storage.
const MAX_NOBITS_SIZE: u64 = 1 << 30;

fn reloc_type_name(t: u32) -> &'static str {
    match t {
        0 => "R_BPF_NONE",
        1 => "R_BPF_64_64",
        2 => "R_BPF_64_ABS64",
        3 => "R_BPF_64_ABS32",
        4 => "R_BPF_64_NODYLD32",
        10 => "R_BPF_64_32",
        _ => "unknown",
    }
}

/// A few machine numbers users actually hand us by mistake, for the message.
fn machine_name(m: u16) -> &'static str {
    match m {
        3 => "EM_386, x86",
        40 => "EM_ARM",
        62 => "EM_X86_64, x86-64",
        183 => "EM_AARCH64, arm64",
        243 => "EM_RISCV",
        247 => "EM_BPF",
        _ => "not BPF",
    }
}

/// Checks the ELF identification and header; returns the object's byte
/// order (`ELFDATA2MSB` is a `bpfeb` object).
pub(crate) fn precheck(bytes: &[u8], path: &Path) -> Result<ByteOrder, LoadError> {
    let p = || path.to_path_buf();
    if bytes.len() < 4 || bytes[..4] != [0x7f, b'E', b'L', b'F'] {
        return Err(LoadError::NotElf { path: p() });
    }
    // e_ident[EI_CLASS], e_ident[EI_DATA], e_machine: elf(5) "ELF header".
    if bytes.len() < 64 {
        return Err(LoadError::MalformedElf {
            path: p(),
            reason: format!("{} bytes is shorter than an ELF64 header (64 bytes)", bytes.len()),
        });
    }
    match bytes[4] {
        2 => {}
        1 => return Err(LoadError::NotElf64 { path: p() }),
        c => {
            return Err(LoadError::MalformedElf {
                path: p(),
                reason: format!("invalid ELF class byte {c}"),
            })
        }
    }
    let big = match bytes[5] {
        1 => false,
        2 => true,
        d => {
            return Err(LoadError::MalformedElf {
                path: p(),
                reason: format!("invalid ELF data-encoding byte {d}"),
            })
        }
    };
    let m = [bytes[18], bytes[19]];
    let machine = if big { u16::from_be_bytes(m) } else { u16::from_le_bytes(m) };
    if machine != EM_BPF {
        return Err(LoadError::WrongMachine {
            path: p(),
            machine,
            machine_name: machine_name(machine),
        });
    }
    object::File::parse(bytes)
        .map_err(|e| LoadError::MalformedElf { path: p(), reason: e.to_string() })?;
    Ok(if big { ByteOrder::Big } else { ByteOrder::Little })
}

/// Section names by ELF section index, for messages and program sections.
pub(crate) fn section_names(file: &object::File<'_>) -> Vec<String> {
    let mut names = Vec::new();
    for s in file.sections() {
        let i = s.index().0;
        if names.len() <= i {
            names.resize(i + 1, String::new());
        }
        names[i] = s.name().unwrap_or("?").to_string();
    }
    names
}

/// Checks what aya-obj assumes without checking: zero-filled sections have
/// a size it can allocate, symbols lie inside their
/// sections, and every relocation in code is one of the two kinds LLVM emits
/// for instructions and sits on an instruction of the matching shape.
/// Relocations against undefined (extern) symbols, which aya-obj would
/// silently leave as the constant 0, are resolved or refused by
/// `externs::collect`.
pub(crate) fn check_structure(file: &object::File<'_>, path: &Path) -> Result<(), LoadError> {
    let p = || path.to_path_buf();
    let malformed = |reason: String| LoadError::MalformedElf { path: p(), reason };

    for sec in file.sections() {
        if sec.kind() == SectionKind::UninitializedData && sec.size() > MAX_NOBITS_SIZE {
            return Err(malformed(format!(
                "section `{}` claims {} bytes of zero-initialised data (limit {MAX_NOBITS_SIZE})",
                sec.name().unwrap_or("?"),
                sec.size()
            )));
        }
    }

    for sym in file.symbols() {
        let Some(idx) = sym.section().index() else { continue };
        let sec = file
            .section_by_index(idx)
            .map_err(|e| malformed(format!("symbol #{}: {e}", sym.index().0)))?;
        if sec.kind() == SectionKind::UninitializedData {
            continue;
        }
        let end = sym.address().checked_add(sym.size());
        if end.is_none_or(|end| end > sec.size()) {
            return Err(malformed(format!(
                "symbol `{}` ({} bytes at {:#x}) lies outside its section `{}` ({} bytes)",
                sym.name().unwrap_or("?"),
                sym.size(),
                sym.address(),
                sec.name().unwrap_or("?"),
                sec.size()
            )));
        }
    }

    for sec in file.sections() {
        let name = sec.name().unwrap_or("?");
        // aya-obj makes a zero-filled Vec of a global-data section's size
        // (which for NOBITS `.bss` costs no file bytes).
        let global = [".bss", ".data", ".rodata"].iter().any(|p| name.starts_with(p));
        if global && sec.size() > MAX_GLOBAL_DATA {
            return Err(malformed(format!(
                "global data section `{name}` claims {} bytes, more than xdpqual's limit of {MAX_GLOBAL_DATA}",
                sec.size()
            )));
        }
    }

    for sec in file.sections() {
        if sec.kind() != SectionKind::Text {
            continue;
        }
        let name = sec.name().unwrap_or("?").to_string();
        let data = sec.data().map_err(|e| malformed(format!("section `{name}`: {e}")))?;
        for (offset, rel) in sec.relocations() {
            let insn = (offset / INSN_SIZE as u64) as usize;
            let err = |reason: String| LoadError::Relocation {
                path: p(),
                section: name.clone(),
                insn,
                reason,
            };
            let RelocationFlags::Elf { r_type } = rel.flags() else {
                return Err(err("relocation is not an ELF relocation".into()));
            };
            // checked: a hostile offset near u64::MAX would wrap past the
            // bound and reach the slice below (found by the loader fuzzer).
            let in_section =
                offset.checked_add(INSN_SIZE as u64).is_some_and(|end| end <= data.len() as u64);
            if !offset.is_multiple_of(INSN_SIZE as u64) || !in_section {
                return Err(err(format!(
                    "relocation offset {offset:#x} is not an instruction of this {}-byte section",
                    data.len()
                )));
            }
            let o = offset as usize;
            let slot = Insn::from_le_bytes(data[o..o + INSN_SIZE].try_into().expect("8 bytes"));
            match r_type {
                R_BPF_64_64 if slot.is_lddw() => {
                    if o + 2 * INSN_SIZE > data.len() {
                        return Err(err("relocated lddw is missing its second slot".into()));
                    }
                }
                R_BPF_64_32 if slot.code == opcode::JMP | opcode::CALL => {}
                R_BPF_64_64 | R_BPF_64_32 => {
                    return Err(err(format!(
                        "{} relocation on opcode {:#04x}, which is neither lddw nor call",
                        reloc_type_name(r_type),
                        slot.code
                    )))
                }
                t => {
                    return Err(err(format!(
                        "unsupported relocation type {} ({t}) in code; only R_BPF_64_64 (lddw) and \
                         R_BPF_64_32 (call) can be applied",
                        reloc_type_name(t)
                    )))
                }
            }
            let RelocationTarget::Symbol(si) = rel.target() else {
                return Err(err("relocation does not name a symbol".into()));
            };
            let sym = file
                .symbol_by_index(si)
                .map_err(|e| err(format!("relocation names a bad symbol: {e}")))?;
            // Relocations against undefined (extern) symbols are resolved
            // by externs.rs, which refuses those it cannot resolve.
            // aya-obj handles section symbols only with these relocation
            // sizes and otherwise reaches a `todo!()`.
            if sym.kind() == object::SymbolKind::Section && !matches!(rel.size(), 32 | 64) {
                return Err(err(format!("relocation of {} bits against a section", rel.size())));
            }
        }
    }
    Ok(())
}

/// aya-obj 0.2 decides a program's type from its section's name and knows
/// fewer names than libbpf (no `xdp/<name>`, `tc`, `tc/ingress`, ...), and
/// none of the untyped names a user may force to XDP. We hand aya-obj a copy
/// of the object in which each section of `renames` is called by the name
/// given (`xdp`, `xdp.frags`, `classifier`): the section-name string table
/// is copied to the end of the file with those names appended, and the
/// section headers point there. The real names are read from the original
/// bytes by section index, so nothing the user sees changes.
///
/// aya-obj finds a program's func_info/line_info by its section's name, so
/// a renamed section's programs lose their line info (btf_info.rs finds
/// their FUNC by name instead).
///
/// Returns the original bytes when there is nothing to rename or the
/// headers are not where `check_structure` left them (aya-obj then reports
/// the section itself).
pub(crate) fn renamed_for_aya<'a>(
    bytes: &'a [u8],
    renames: &[(usize, &str)],
) -> std::borrow::Cow<'a, [u8]> {
    if renames.is_empty() {
        return std::borrow::Cow::Borrowed(bytes);
    }
    match rename_sections(bytes, renames) {
        Some(v) => std::borrow::Cow::Owned(v),
        None => std::borrow::Cow::Borrowed(bytes),
    }
}

fn rename_sections(bytes: &[u8], renames: &[(usize, &str)]) -> Option<Vec<u8>> {
    // ELF64 little-endian header and section header fields (elf(5)).
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    let shstrndx = usize::from(u16_at(0x3e)?);
    if shentsize < 0x40 || shstrndx >= shnum {
        return None;
    }
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let str_hdr = header(shstrndx)?;
    let str_off = usize::try_from(u64_at(str_hdr + 0x18)?).ok()?;
    let str_size = usize::try_from(u64_at(str_hdr + 0x20)?).ok()?;
    let table = bytes.get(str_off..str_off.checked_add(str_size)?)?;

    let mut out = bytes.to_vec();
    let new_off = out.len().next_multiple_of(8);
    out.resize(new_off, 0);
    out.extend_from_slice(table);
    let mut added: Vec<(&str, usize)> = Vec::new();
    for &(index, name) in renames {
        if index >= shnum || name.contains('\0') {
            return None;
        }
        let at = match added.iter().find(|(n, _)| *n == name) {
            Some(&(_, at)) => at,
            None => {
                let at = out.len() - new_off;
                out.extend_from_slice(name.as_bytes());
                out.push(0);
                added.push((name, at));
                at
            }
        };
        let h = header(index)?;
        out.get_mut(h..h + 4)?.copy_from_slice(&u32::try_from(at).ok()?.to_le_bytes());
    }
    let new_size = (out.len() - new_off) as u64;
    out.get_mut(str_hdr + 0x18..str_hdr + 0x20)?.copy_from_slice(&(new_off as u64).to_le_bytes());
    out.get_mut(str_hdr + 0x20..str_hdr + 0x28)?.copy_from_slice(&new_size.to_le_bytes());
    Some(out)
}

/// Checks the layout of `.BTF.ext`'s func_info and line_info subsections the
/// way libbpf's `btf_ext_setup_info` does: a record size of at least the
/// UAPI struct (`bpf_func_info` 8 bytes, `bpf_line_info` 16), and per-section
/// blocks (`btf_ext_info_sec`: name offset, record count) whose records fit.
/// aya-obj slices these without checking.
pub(crate) fn check_btf_ext(file: &object::File<'_>, path: &Path) -> Result<(), LoadError> {
    let Some(sec) = file.section_by_name(".BTF.ext") else { return Ok(()) };
    let data = sec.data().map_err(|e| LoadError::MalformedElf {
        path: path.to_path_buf(),
        reason: format!(".BTF.ext: {e}"),
    })?;
    let bad = |reason: String| LoadError::Btf {
        path: path.to_path_buf(),
        reason: format!(".BTF.ext: {reason}"),
    };
    let u32_at =
        |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4")));
    let hdr_len = u32_at(4).ok_or_else(|| bad("shorter than its header".into()))? as usize;
    if hdr_len < 24 || hdr_len > data.len() {
        return Err(bad(format!(
            "header length {hdr_len} is invalid for a {}-byte section",
            data.len()
        )));
    }
    for (what, off_at, min_rec) in [("func_info", 8, 8usize), ("line_info", 16, 16)] {
        let off = u32_at(off_at).expect("inside header") as usize;
        let len = u32_at(off_at + 4).expect("inside header") as usize;
        if len == 0 {
            continue;
        }
        let start = hdr_len.checked_add(off);
        let end = start.and_then(|s| s.checked_add(len));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(bad(format!("{what} subsection overflows")));
        };
        let Some(sub) = data.get(start..end) else {
            return Err(bad(format!(
                "{what} subsection ({len} bytes at {start}) runs past the section"
            )));
        };
        let rec = sub.get(0..4).map(|b| u32::from_le_bytes(b.try_into().expect("4"))).unwrap_or(0)
            as usize;
        if rec < min_rec || !rec.is_multiple_of(4) {
            return Err(bad(format!(
                "{what} record size {rec} is invalid (at least {min_rec}, a multiple of 4)"
            )));
        }
        let mut at = 4;
        while at < sub.len() {
            let hdr = sub
                .get(at..at + 8)
                .ok_or_else(|| bad(format!("{what} section header is truncated")))?;
            let num = u32::from_le_bytes(hdr[4..8].try_into().expect("4")) as usize;
            at += 8;
            let size = num
                .checked_mul(rec)
                .ok_or_else(|| bad(format!("{what} record count {num} overflows")))?;
            if num == 0 || at + size > sub.len() {
                return Err(bad(format!("{what} section block with {num} records does not fit")));
            }
            at += size;
        }
    }
    Ok(())
}
