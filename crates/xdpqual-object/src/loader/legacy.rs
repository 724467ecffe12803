//! Objects built before BTF: size-0 map symbols in a legacy `maps`
//! section, and program symbols of type NOTYPE.
//!
//! Objects built by LLVM before BTF-defined maps (the Linux `samples/bpf`
//! programs, prototype-kernel, Suricata's filter) put `struct bpf_map_def`
//! values in a section named `maps` and emit every map symbol with
//! `st_size` 0. aya-obj takes a legacy map's definition size from its
//! symbol, so it refuses them ("error parsing map"). Pre-1.0 libbpf loaded
//! them by assuming every definition in the section has the same size,
//! `section size / number of map symbols`, and refused a section that does
//! not divide evenly ("unable to determine legacy map definition size",
//! `bpf_object__init_user_maps` in libbpf v0.8 `src/libbpf.c`); iproute2's
//! `bpf_elf_map` loader does the same division in `bpf_fetch_maps_end`
//! (`lib/bpf_legacy.c`).
//!
//! The same LLVM versions emit every function symbol as `STT_NOTYPE` with
//! size 0, where aya-obj (and libbpf 1.x) look for `STT_FUNC` symbols with
//! their sizes to find programs. The loaders those objects were written for
//! took a program to run from its symbol to the next one, or to the end of
//! its section (the samples' `bpf_load.c` and iproute2 load one section as
//! one program; pre-1.0 libbpf `bpf_object__add_programs` splits a section
//! at its global symbols).
//!
//! [`patched_for_aya`] applies those rules: when every map symbol of `maps` has
//! size 0 and the section divides evenly, a copy of the object with those
//! symbols' `st_size` set to the common size is handed to aya-obj. Nothing
//! else changes, so what users see (names, offsets, definitions) is read
//! from the object as it was built.

use std::borrow::Cow;

use object::read::{Object as _, ObjectSection as _, ObjectSymbol as _};
use object::{SectionIndex, SymbolKind};

/// The section pre-BTF loaders read map definitions from.
const LEGACY_MAPS_SECTION: &str = "maps";
/// `sizeof(Elf64_Sym)`; `st_size` is its last field, at offset 16 (elf(5)).
const ELF64_SYM_SIZE: usize = 24;
const ST_SIZE_OFFSET: usize = 16;

/// Why a `maps` section with size-0 symbols cannot be sized.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsizable {
    pub(crate) section_size: u64,
    pub(crate) symbols: usize,
}

impl std::fmt::Display for Unsizable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "legacy `maps` section of {} bytes holds {} map symbols of size 0, so the size of \
             one definition cannot be worked out (pre-1.0 libbpf divides the section evenly \
             among its symbols and refuses this too)",
            self.section_size, self.symbols
        )
    }
}

/// `bytes` as aya-obj can read them: legacy map symbols sized
/// ([`sized_maps`]) and NOTYPE program symbols typed ([`typed_programs`]).
/// Objects built by current compilers come back unchanged.
pub(crate) fn patched_for_aya<'a>(
    file: &object::File<'_>,
    bytes: Cow<'a, [u8]>,
) -> Result<Cow<'a, [u8]>, Unsizable> {
    let bytes = sized_maps(file, bytes)?;
    Ok(typed_programs(file, bytes))
}

/// `bytes` with the size-0 map symbols of a legacy `maps` section given the
/// section's common definition size, or `bytes` unchanged when there is no
/// such section or its symbols already have sizes.
fn sized_maps<'a>(
    file: &object::File<'_>,
    bytes: Cow<'a, [u8]>,
) -> Result<Cow<'a, [u8]>, Unsizable> {
    let Some(section) = file.section_by_name(LEGACY_MAPS_SECTION) else { return Ok(bytes) };
    let symbols = map_symbols(file, section.index());
    if symbols.is_empty() || symbols.iter().any(|s| s.size != 0) {
        return Ok(bytes);
    }
    let section_size = section.size();
    let unsizable = || Unsizable { section_size, symbols: symbols.len() };
    let count = symbols.len() as u64;
    if section_size == 0 || section_size % count != 0 {
        return Err(unsizable());
    }
    let def_size = section_size / count;
    // libbpf v0.8 also refuses a symbol whose definition would run past the
    // end of the section.
    if symbols.iter().any(|s| s.value.checked_add(def_size).is_none_or(|end| end > section_size)) {
        return Err(unsizable());
    }
    let patches: Vec<(usize, Option<u8>, u64)> =
        symbols.iter().map(|s| (s.index, None, def_size)).collect();
    Ok(patch_symbols(file, bytes, &patches))
}

/// `bytes` with each global `STT_NOTYPE` symbol of an executable section
/// made an `STT_FUNC` that runs to the next global symbol of its section or
/// to the section's end, when the section has no `STT_FUNC` symbol at all
/// (so objects from current compilers are never touched).
fn typed_programs<'a>(file: &object::File<'_>, bytes: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
    let mut patches = Vec::new();
    for section in file.sections() {
        if section.kind() != object::SectionKind::Text {
            continue;
        }
        let in_section: Vec<_> =
            file.symbols().filter(|s| s.section_index() == Some(section.index())).collect();
        if in_section.iter().any(|s| s.kind() == SymbolKind::Text) {
            continue;
        }
        let mut starts: Vec<(u64, usize)> = in_section
            .iter()
            .filter(|s| s.is_global() && s.kind() == SymbolKind::Unknown && s.size() == 0)
            .map(|s| (s.address(), s.index().0))
            .collect();
        starts.sort_unstable();
        for (i, &(start, index)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(section.size(), |&(next, _)| next);
            if end > start {
                patches.push((index, Some(STT_FUNC), end - start));
            }
        }
    }
    patch_symbols(file, bytes, &patches)
}

/// `STT_FUNC` in an `Elf64_Sym`'s `st_info` low nibble (elf(5)).
const STT_FUNC: u8 = 2;
/// `st_info` is the byte after the 4-byte `st_name`.
const ST_INFO_OFFSET: usize = 4;

/// Writes `(symbol index, new st_info type, new st_size)` into a copy of
/// the symbol table. An entry outside the file leaves `bytes` as they were:
/// aya-obj then reports the object itself, as without this module.
fn patch_symbols<'a>(
    file: &object::File<'_>,
    bytes: Cow<'a, [u8]>,
    patches: &[(usize, Option<u8>, u64)],
) -> Cow<'a, [u8]> {
    if patches.is_empty() {
        return bytes;
    }
    let Some((symtab_offset, _)) = file.section_by_name(".symtab").and_then(|s| s.file_range())
    else {
        return bytes;
    };
    let mut out = bytes.clone().into_owned();
    for &(index, kind, size) in patches {
        let Some(entry) = usize::try_from(symtab_offset)
            .ok()
            .and_then(|o| o.checked_add(index.checked_mul(ELF64_SYM_SIZE)?))
            .and_then(|at| out.get_mut(at..at.checked_add(ELF64_SYM_SIZE)?))
        else {
            return bytes;
        };
        let encoded = if file.is_little_endian() { size.to_le_bytes() } else { size.to_be_bytes() };
        entry[ST_SIZE_OFFSET..ST_SIZE_OFFSET + 8].copy_from_slice(&encoded);
        if let Some(kind) = kind {
            entry[ST_INFO_OFFSET] = (entry[ST_INFO_OFFSET] & 0xf0) | kind;
        }
    }
    Cow::Owned(out)
}

struct MapSymbol {
    index: usize,
    value: u64,
    size: u64,
}

/// The symbols that name maps in section `maps` (not the section symbol).
fn map_symbols(file: &object::File<'_>, maps: SectionIndex) -> Vec<MapSymbol> {
    file.symbols()
        .filter(|s| s.section_index() == Some(maps) && s.kind() != SymbolKind::Section)
        .map(|s| MapSymbol { index: s.index().0, value: s.address(), size: s.size() })
        .collect()
}

/// One definition of a legacy `maps` section, as the words it was built
/// with (in the object's byte order).
pub(crate) struct LegacyDef {
    pub(crate) name: String,
    pub(crate) words: Vec<u32>,
}

/// The layout a legacy `maps` section's definitions follow, told apart by
/// their size, as the loaders that read them did: each loader took the
/// size from the section (`section size / map symbols`) and read the words
/// it knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegacyLayout {
    /// libbpf's `struct bpf_map_def` (5 words): no inner-map words at all.
    Libbpf,
    /// The kernel samples' `struct bpf_load_map_def` (samples/bpf/
    /// bpf_load.h: 7 words), whose 6th word is `inner_map_idx`: the
    /// position in the section of the inner-map template.
    SamplesBpfLoad,
    /// iproute2's `struct bpf_elf_map` (include/bpf_elf.h: 9 words):
    /// `id` (6th), `pinning`, `inner_id` (the `id` of the template) and
    /// `inner_idx` (the outer slot the map fills, or `u32::MAX` for none:
    /// `bpf_maps_attach_all` in lib/bpf_legacy.c).
    Iproute2,
}

/// Size in bytes of iproute2's `struct bpf_elf_map` and of the samples'
/// `struct bpf_load_map_def` up to and including `inner_map_idx`.
const BPF_ELF_MAP_SIZE: u64 = 36;
const SAMPLES_INNER_IDX_END: u64 = 24;

/// The definitions of the legacy `maps` section in section order, with
/// their layout; `None` when the object has no such section or its
/// definitions cannot be sized (aya-obj then refuses them first).
pub(crate) fn definitions(file: &object::File<'_>) -> Option<(LegacyLayout, Vec<LegacyDef>)> {
    let section = file.section_by_name(LEGACY_MAPS_SECTION)?;
    let data = section.data().ok()?;
    let mut symbols = map_symbols(file, section.index());
    if symbols.is_empty() {
        return None;
    }
    symbols.sort_by_key(|s| s.value);
    let def_size = match symbols[0].size {
        0 => data.len() as u64 / symbols.len() as u64,
        n => n,
    };
    let layout = match def_size {
        s if s >= BPF_ELF_MAP_SIZE => LegacyLayout::Iproute2,
        s if s >= SAMPLES_INNER_IDX_END => LegacyLayout::SamplesBpfLoad,
        _ => LegacyLayout::Libbpf,
    };
    let little = file.is_little_endian();
    let defs = symbols
        .iter()
        .filter_map(|s| {
            let name = file.symbol_by_index(object::SymbolIndex(s.index)).ok()?.name().ok()?;
            let start = usize::try_from(s.value).ok()?;
            let end = start.checked_add(usize::try_from(def_size).ok()?)?;
            let words = data
                .get(start..end)?
                .chunks_exact(4)
                .map(|w| {
                    let w = [w[0], w[1], w[2], w[3]];
                    if little {
                        u32::from_le_bytes(w)
                    } else {
                        u32::from_be_bytes(w)
                    }
                })
                .collect();
            Some(LegacyDef { name: name.to_string(), words })
        })
        .collect();
    Some((layout, defs))
}
