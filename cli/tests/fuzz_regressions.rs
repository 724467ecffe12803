//! Inputs found by the fuzz targets in `harness/fuzz/` that once crashed a
//! target, kept so the fix (or the containment) stays in place. Each test
//! says which target found it and what went wrong.

use std::path::Path;

use xdpqual::loader::load_object_bytes;

/// `corpus/build/subprogs.v2.o` with one bit flipped: byte 5243, 0x00 ->
/// 0x10, inside `.BTF.ext` line info. Found by the `loader` target after
/// 352 executions. aya-obj 0.2.1 panics on it (`Option::unwrap()` on `None`
/// at src/btf/btf.rs:903, while collecting line-info sections); the loader
/// must contain that and return a clear error naming the file. The input is
/// kept as base object + flip because libFuzzer could not shrink it (every
/// smaller file is refused before aya-obj's BTF.ext parsing).
#[test]
fn loader_btf_ext_line_info_bit_flip_is_an_error_not_a_panic() {
    const BASE: &[u8] = include_bytes!("../../corpus/build/subprogs.v2.o");
    const AT: usize = 5243;
    // If the committed object is rebuilt differently, the flip no longer
    // lands where it did; fail loudly instead of testing something else.
    assert_eq!(BASE.len(), 11208, "corpus/build/subprogs.v2.o changed; re-derive this input");
    assert_eq!(BASE[AT], 0x00, "corpus/build/subprogs.v2.o changed; re-derive this input");
    assert!(
        load_object_bytes(BASE, Path::new("subprogs.v2.o")).is_ok(),
        "the unmodified object must load"
    );

    let mut bytes = BASE.to_vec();
    bytes[AT] ^= 0x10;
    let err = load_object_bytes(&bytes, Path::new("flipped.o"))
        .expect_err("a corrupt .BTF.ext must be refused");
    let msg = err.to_string();
    assert!(msg.contains("flipped.o"), "error must name the file: {msg}");
}

/// Little-endian field readers for the ELF64 patches below.
fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap()) as usize
}
fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}
fn u64_at(b: &[u8], o: usize) -> usize {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize
}

/// File offsets of the section headers of a little-endian ELF64 file
/// (`Elf64_Ehdr.e_shoff` at 0x28, `e_shentsize` 0x3a, `e_shnum` 0x3c),
/// indexed by section number.
fn section_headers(elf: &[u8]) -> Vec<usize> {
    let shoff = u64_at(elf, 0x28);
    let (shentsize, shnum) = (u16_at(elf, 0x3a), u16_at(elf, 0x3c));
    (0..shnum).map(|i| shoff + i * shentsize).collect()
}

/// Sets `sh_size` of every SHT_NOBITS section; returns how many it changed
/// (`Elf64_Shdr.sh_type` at 0x04, `sh_size` at 0x20).
fn set_nobits_size(elf: &mut [u8], size: u64) -> usize {
    let mut changed = 0;
    for sh in section_headers(elf) {
        if u32_at(elf, sh + 4) == 8 {
            elf[sh + 0x20..sh + 0x28].copy_from_slice(&size.to_le_bytes());
            changed += 1;
        }
    }
    changed
}

/// A `.bss` whose header claims 0x6f760900632e736c bytes (the size in the
/// input the `loader` target found, a heavily mutated
/// `corpus/build/globals.*.o`). aya-obj 0.2.1 allocates a zeroed buffer of
/// the section's size for the global-data map (src/obj.rs:1223), and a
/// failed allocation aborts the process: no error, no catchable panic.
/// Fixed in `loader/elf.rs` `check_structure`, which now refuses
/// zero-filled sections over 1 GiB before aya-obj sees the file. Without
/// that check this test aborts the test binary.
#[test]
fn loader_huge_bss_is_refused_before_aya_obj_allocates_it() {
    let mut bytes = include_bytes!("../../corpus/build/globals.v4.o").to_vec();
    assert!(
        load_object_bytes(&bytes, Path::new("globals.v4.o")).is_ok(),
        "the unmodified object must load"
    );
    assert_eq!(
        set_nobits_size(&mut bytes, 0x6f76_0900_632e_736c),
        1,
        "globals.v4.o must have one .bss"
    );

    let err = load_object_bytes(&bytes, Path::new("huge-bss.o"))
        .expect_err("a 8 EiB .bss must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("huge-bss.o") && msg.contains("`.bss`"),
        "error must name the file and section: {msg}"
    );
    assert!(
        msg.contains(&0x6f76_0900_632e_736c_u64.to_string()),
        "error must give the claimed size: {msg}"
    );
}

/// Sets `r_offset` of the first relocation that applies to an executable
/// section; returns that section's index. `sh_flags` at 0x08
/// (`SHF_EXECINSTR` = 4), `sh_offset` at 0x18 and `sh_info` at 0x2c (the
/// section a SHT_REL (9) section relocates).
fn set_first_text_reloc_offset(elf: &mut [u8], r_offset: u64) -> Option<usize> {
    let headers = section_headers(elf);
    for &sh in &headers {
        let target = u32_at(elf, sh + 0x2c);
        if u32_at(elf, sh + 4) == 9
            && headers.get(target).is_some_and(|&t| u64_at(elf, t + 8) & 4 != 0)
        {
            let at = u64_at(elf, sh + 0x18);
            elf[at..at + 8].copy_from_slice(&r_offset.to_le_bytes());
            return Some(target);
        }
    }
    None
}

/// A relocation of a program section whose `r_offset` is
/// 0xffff_ffff_ffff_fff8: a multiple of 8, so it passed the alignment
/// check, and `offset + 8` wrapped to 0, so it passed the bound check too
/// and reached the slice of the section's bytes. Found by the `loader`
/// target (as "attempt to add with overflow" at loader/elf.rs
/// `check_structure`; a release build panicked on the slice instead).
/// Fixed with a checked add; the error names the file, section and offset.
#[test]
fn loader_relocation_offset_near_u64_max_is_an_error_not_a_panic() {
    let mut bytes = include_bytes!("../../corpus/build/firewall.v3.o").to_vec();
    assert!(
        load_object_bytes(&bytes, Path::new("firewall.v3.o")).is_ok(),
        "the unmodified object must load"
    );
    assert!(
        set_first_text_reloc_offset(&mut bytes, 0xffff_ffff_ffff_fff8).is_some(),
        "firewall.v3.o relocates its program"
    );

    let err = load_object_bytes(&bytes, Path::new("wrapped-reloc.o"))
        .expect_err("an offset past the section must be refused");
    let msg = err.to_string();
    assert!(msg.contains("wrapped-reloc.o"), "error must name the file: {msg}");
    assert!(msg.contains("0xfffffffffffffff8"), "error must give the offset: {msg}");
}
