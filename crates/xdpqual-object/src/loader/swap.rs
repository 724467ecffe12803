//! Big-endian (`bpfeb`) objects, rewritten as the little-endian object the
//! rest of the loader reads.
//!
//! aya-obj 0.2 reads instructions, `bpf_map_def`s, BTF and `.BTF.ext` with
//! `ptr::read_unaligned` in the host's order (obj.rs `copy_instructions`,
//! btf/types.rs `read_array`); the `Endianness` it is handed is stored and
//! not applied. So a `bpfeb` object on an x86-64 host is not parsed by
//! aya-obj; instead every *structural* field of the file is byte-swapped:
//! the ELF header and section headers, symbols, relocations, instruction
//! slots (`Insn::from_be_bytes`: the register nibbles trade places too),
//! BTF and `.BTF.ext` words, legacy `maps` definitions and `version`.
//! What the program itself reads as memory (`.data`, `.rodata`, `.bss`,
//! `.maps`, `license`) keeps its bytes: those are the big-endian machine's
//! memory, and the engine runs the program with big-endian loads and
//! stores (`Object::byte_order`). DWARF (`.debug_*`) is left as it is; the
//! loader takes line info from `.BTF.ext`, never from DWARF.
//!
//! Layouts: elf(5) for ELF64 headers, symbols (`Elf64_Sym`) and
//! relocations (`Elf64_Rel`, `Elf64_Rela`; for BPF `r_info` is one 64-bit
//! word, so swapping it keeps symbol and type). BTF: every field of the
//! type section is a 32-bit word (`struct btf_type` and all the records
//! that follow it in include/uapi/linux/btf.h: `btf_array`, `btf_member`,
//! `btf_enum`, `btf_param`, `btf_var`, `btf_var_secinfo`, `btf_decl_tag`,
//! `btf_enum64`); the header is a 16-bit magic, two bytes, then 32-bit
//! words; the string section is bytes. `.BTF.ext` (tools/lib/bpf/libbpf_internal.h
//! `btf_ext_header`, `btf_ext_info_sec`, `bpf_func_info`, `bpf_line_info`,
//! `bpf_core_relo`) is likewise the same 4-byte prefix and then 32-bit
//! words throughout. libbpf's own cross-endian support (btf.c
//! `btf_bswap_hdr`/`btf_bswap_type_base`, btf_ext.c `btf_ext_bswap_*`)
//! swaps the same fields.

const SHT_SYMTAB: u32 = 2;
const SHT_RELA: u32 = 4;
const SHT_REL: u32 = 9;
const SHT_DYNSYM: u32 = 11;
const SHT_GROUP: u32 = 17;
const SHT_SYMTAB_SHNDX: u32 = 18;
const SHT_NOBITS: u32 = 8;
const SHF_EXECINSTR: u64 = 0x4;

fn get<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], String> {
    at.checked_add(N)
        .and_then(|end| b.get(at..end))
        .map(|s| s.try_into().expect("N bytes"))
        .ok_or_else(|| format!("field at {at:#x} lies past the end of the {}-byte file", b.len()))
}

fn swap16(b: &mut [u8], at: usize) -> Result<(), String> {
    get::<2>(b, at)?;
    b[at..at + 2].reverse();
    Ok(())
}

fn swap32(b: &mut [u8], at: usize) -> Result<(), String> {
    get::<4>(b, at)?;
    b[at..at + 4].reverse();
    Ok(())
}

fn swap64(b: &mut [u8], at: usize) -> Result<(), String> {
    get::<8>(b, at)?;
    b[at..at + 8].reverse();
    Ok(())
}

/// Swaps every `width`-byte word of `b[start..start+len]`.
fn swap_words(b: &mut [u8], start: usize, len: usize, width: usize) -> Result<(), String> {
    let end = start.checked_add(len).filter(|e| *e <= b.len()).ok_or_else(|| {
        format!("{len} bytes at {start:#x} lie past the end of the {}-byte file", b.len())
    })?;
    if !len.is_multiple_of(width) {
        return Err(format!("{len} bytes at {start:#x} are not whole {width}-byte words"));
    }
    for w in b[start..end].chunks_exact_mut(width) {
        w.reverse();
    }
    Ok(())
}

/// Converts raw BTF (header, types, strings) between byte orders: `bytes`
/// is in the order its magic (0xeB9F) says, and the result is in the other.
/// Public so that a big-endian guest can be handed the BTF it expects.
pub fn swap_btf(bytes: &mut [u8]) -> Result<(), String> {
    let magic = get::<2>(bytes, 0)?;
    let big = match magic {
        [0xeb, 0x9f] => true,
        [0x9f, 0xeb] => false,
        _ => return Err(format!("bad BTF magic {:02x}{:02x}", magic[0], magic[1])),
    };
    let word = |b: &[u8], at: usize| -> Result<usize, String> {
        let w = get::<4>(b, at)?;
        Ok(if big { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) } as usize)
    };
    let hdr_len = word(bytes, 4)?;
    let (type_off, type_len) = (word(bytes, 8)?, word(bytes, 12)?);
    if hdr_len < 24 || hdr_len > bytes.len() {
        return Err(format!("BTF header length {hdr_len} is invalid"));
    }
    let start = hdr_len.checked_add(type_off).ok_or("BTF type offset overflows")?;
    swap16(bytes, 0)?;
    swap_words(bytes, 4, (hdr_len - 4) & !3, 4)?;
    swap_words(bytes, start, type_len, 4).map_err(|e| format!("BTF type section: {e}"))
}

/// Converts `.BTF.ext` between byte orders (see the module comment).
fn swap_btf_ext(bytes: &mut [u8]) -> Result<(), String> {
    swap16(bytes, 0)?;
    let len = bytes.len().saturating_sub(4) & !3;
    swap_words(bytes, 4, len, 4)
}

/// Rewrites a big-endian ELF64 BPF object as a little-endian one (see the
/// module comment). `bytes` has passed `elf::precheck`'s identification
/// checks; every offset read here is bounds-checked.
pub(crate) fn to_little_endian(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut b = bytes.to_vec();
    let be16 = |b: &[u8], at| get::<2>(b, at).map(|v| u16::from_be_bytes(v) as usize);
    let be32 = |b: &[u8], at| get::<4>(b, at).map(u32::from_be_bytes);
    let be64 = |b: &[u8], at| get::<8>(b, at).map(u64::from_be_bytes);

    let phoff = usize::try_from(be64(&b, 32)?).map_err(|e| e.to_string())?;
    let phentsize = be16(&b, 54)?;
    let phnum = be16(&b, 56)?;
    let shoff = usize::try_from(be64(&b, 40)?).map_err(|e| e.to_string())?;
    let shentsize = be16(&b, 58)?;
    let mut shnum = be16(&b, 60)?;
    let mut shstrndx = be16(&b, 62)?;
    if shoff != 0 && shentsize < 64 {
        return Err(format!("section header size {shentsize} is smaller than ELF64's 64"));
    }
    if shoff != 0 && shnum == 0 {
        // Extended numbering (elf(5)): the count is section 0's sh_size.
        shnum = usize::try_from(be64(&b, shoff.saturating_add(32))?).map_err(|e| e.to_string())?;
    }
    if shstrndx == 0xffff {
        shstrndx = be32(&b, shoff.saturating_add(40))? as usize;
    }
    let _ = shstrndx;

    // Section contents first, while the headers are still big-endian.
    let mut sections = Vec::new();
    for i in 0..shnum {
        let h = i
            .checked_mul(shentsize)
            .and_then(|o| o.checked_add(shoff))
            .ok_or("section header offset overflows")?;
        let name = be32(&b, h)? as usize;
        let ty = be32(&b, h.saturating_add(4))?;
        let flags = be64(&b, h.saturating_add(8))?;
        let off = usize::try_from(be64(&b, h.saturating_add(24))?).map_err(|e| e.to_string())?;
        let size = usize::try_from(be64(&b, h.saturating_add(32))?).map_err(|e| e.to_string())?;
        sections.push((h, name, ty, flags, off, size));
    }
    let names = sections.get(shstrndx).map(|s| (s.4, s.5));
    let name_of = |b: &[u8], n: usize| -> String {
        let Some((off, size)) = names else { return String::new() };
        let Some(table) = off.checked_add(size).and_then(|e| b.get(off..e)) else {
            return String::new();
        };
        let s = table.get(n..).unwrap_or(&[]);
        let end = s.iter().position(|c| *c == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    };
    for &(_, name, ty, flags, off, size) in &sections {
        if ty == SHT_NOBITS || size == 0 {
            continue;
        }
        let name = name_of(bytes, name);
        let what = |e: String| format!("section `{name}`: {e}");
        match ty {
            SHT_SYMTAB | SHT_DYNSYM => {
                if !size.is_multiple_of(24) {
                    return Err(what(format!("{size} bytes is not whole 24-byte symbols")));
                }
                let end = off.checked_add(size).ok_or_else(|| what("size overflows".into()))?;
                for s in (off..end).step_by(24) {
                    swap32(&mut b, s).map_err(what)?;
                    swap16(&mut b, s.saturating_add(6)).map_err(what)?;
                    swap64(&mut b, s.saturating_add(8)).map_err(what)?;
                    swap64(&mut b, s.saturating_add(16)).map_err(what)?;
                }
            }
            SHT_REL | SHT_RELA => swap_words(&mut b, off, size, 8).map_err(what)?,
            SHT_GROUP | SHT_SYMTAB_SHNDX => swap_words(&mut b, off, size, 4).map_err(what)?,
            _ if flags & SHF_EXECINSTR != 0 => {
                if !size.is_multiple_of(xdpqual_isa::INSN_SIZE) {
                    return Err(what(format!("{size} bytes of code is not whole instructions")));
                }
                let end = off.checked_add(size).filter(|e| *e <= b.len()).ok_or_else(|| {
                    what(format!("{size} bytes at {off:#x} lie past the end of the file"))
                })?;
                for slot in b[off..end].chunks_exact_mut(8) {
                    let insn = xdpqual_isa::Insn::from_be_bytes((&*slot).try_into().expect("8"));
                    slot.copy_from_slice(&insn.to_le_bytes());
                }
            }
            _ => {
                let end = off.checked_add(size).filter(|e| *e <= b.len()).ok_or_else(|| {
                    what(format!("{size} bytes at {off:#x} lie past the end of the file"))
                })?;
                match name.as_str() {
                    ".BTF" => swap_btf(&mut b[off..end]).map_err(what)?,
                    ".BTF.ext" => swap_btf_ext(&mut b[off..end]).map_err(what)?,
                    // Legacy `struct bpf_map_def`: five or more u32 fields.
                    "maps" | "version" => swap_words(&mut b, off, size & !3, 4).map_err(what)?,
                    _ => {}
                }
            }
        }
    }
    for &(h, ..) in &sections {
        // sh_name, sh_type, then u64 flags, addr, offset, size, u32 link,
        // info, u64 addralign, entsize.
        for (at, w) in [(0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 4), (44, 4)] {
            swap_words(&mut b, h.saturating_add(at), w, w)?;
        }
        swap64(&mut b, h.saturating_add(48))?;
        swap64(&mut b, h.saturating_add(56))?;
    }
    for i in 0..phnum {
        let h = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or("program header offset overflows")?;
        swap32(&mut b, h)?;
        swap32(&mut b, h.saturating_add(4))?;
        for k in 0..6 {
            swap64(&mut b, h.saturating_add(8) + 8 * k)?;
        }
    }
    // The ELF header: e_ident is bytes; EI_DATA becomes ELFDATA2LSB.
    b[5] = 1;
    for (at, w) in [(16, 2), (18, 2), (20, 4), (24, 8), (32, 8), (40, 8), (48, 4)] {
        swap_words(&mut b, at, w, w)?;
    }
    for at in [52, 54, 56, 58, 60, 62] {
        swap16(&mut b, at)?;
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btf_round_trip() {
        // A header-only BTF with one INT type: magic, version 1, flags 0,
        // hdr_len 24, type_off 0, type_len 16, str_off 16, str_len 5.
        let mut le = Vec::new();
        le.extend_from_slice(&0xeb9fu16.to_le_bytes());
        le.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, 16, 16, 5, 1, 0x0100_0000, 4, 0x20] {
            le.extend_from_slice(&w.to_le_bytes());
        }
        le.extend_from_slice(b"\0int\0");
        let mut be = le.clone();
        swap_btf(&mut be).unwrap();
        assert_eq!(&be[..2], &[0xeb, 0x9f]);
        assert_eq!(&be[24..28], &1u32.to_be_bytes());
        assert_eq!(&be[be.len() - 5..], b"\0int\0", "strings are bytes");
        swap_btf(&mut be).unwrap();
        assert_eq!(be, le);
    }

    /// Every truncation and many single-byte corruptions of a real bpfeb
    /// object give a result or an error, never a panic.
    #[test]
    fn hostile_big_endian_objects_do_not_panic() {
        let good: &[u8] = include_bytes!("../../../../cli/tests/data/loader/bpfeb.o");
        let le = to_little_endian(good).expect("the clang object converts");
        assert_eq!(le[5], 1, "EI_DATA is little-endian afterwards");
        assert_eq!(u16::from_le_bytes([le[18], le[19]]), 247, "e_machine EM_BPF");
        for n in (0..good.len()).step_by(7) {
            let _ = to_little_endian(&good[..n]);
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bad = good.to_vec();
            let at = (seed as usize) % bad.len();
            bad[at] = (seed >> 32) as u8;
            let _ = to_little_endian(&bad);
        }
    }

    #[test]
    fn truncated_btf_is_an_error() {
        let mut b = vec![0xeb, 0x9f, 1, 0, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 1, 0];
        assert!(swap_btf(&mut b).is_err());
    }
}
