//! The object's BTF and each linked program's `func_info`/`line_info`, in
//! the form BPF_BTF_LOAD and BPF_PROG_LOAD take them (what libbpf uploads).
//!
//! aya-obj does the BTF fix-ups a kernel needs (DATASEC sizes and variable
//! offsets, which clang leaves at zero in the ELF). The records come from
//! each function as it was before call linking, moved to where the linker
//! placed it, the same way `lines` does for source lines.

use crate::ProgramBtf;
use aya_obj::btf::{Btf, BtfFeatures, BtfKind};
use aya_obj::Function;

/// Sanitised BTF bytes of `obj`, or why there are none.
///
/// The feature set is "everything": the host kernels this project targets
/// (5.x and later) accept every BTF kind clang 14-19 emits. A kernel that
/// does not refuses BPF_BTF_LOAD, and the host backend then loads without
/// BTF and says why.
pub(super) fn sanitized(obj: &mut aya_obj::Object) -> Result<Vec<u8>, String> {
    let features = BtfFeatures::new(true, true, true, true, true, true, true);
    match obj.fixup_and_sanitize_btf(&features) {
        Ok(Some(btf)) => Ok(btf.to_bytes()),
        Ok(None) => Err("the object has no .BTF section (build with clang -g)".into()),
        Err(e) => Err(format!("its BTF could not be prepared for the kernel: {e}")),
    }
}

/// Adds the records of function `f`, placed at instruction `start` of the
/// linked program. A program's own records are relative to its start; a
/// `.text` function's to its section (aya-obj `get_func_and_line_info`).
///
/// aya-obj finds a function's records by its section's name, and sees
/// renamed sections (`xdp/NAME`, forced or untyped names) by their new name
/// (see `elf::renamed_for_aya`),
/// so their functions come without records; the FUNC is then found by the
/// function's name, which is what clang names it, and they get no line info.
pub(super) fn add_function(
    out: &mut ProgramBtf,
    start: usize,
    f: &Function,
    is_program: bool,
    btf: Option<&Btf>,
) {
    let type_id = match f.func_info.func_info.first() {
        Some(fi) => fi.type_id,
        None => match btf.and_then(|b| b.id_by_type_name_kind(&f.name, BtfKind::Func).ok()) {
            Some(id) => id,
            None => return,
        },
    };
    out.func_info.push((start as u32, type_id));
    let base = if is_program { 0 } else { f.section_offset / 8 };
    for li in &f.line_info.line_info {
        let Some(rel) = (li.insn_off as usize).checked_sub(base) else { continue };
        if rel < f.instructions.len() {
            out.line_info.push(((start + rel) as u32, li.file_name_off, li.line_off, li.line_col));
        }
    }
}

/// Puts the records in the order the kernel checks: func_info strictly
/// increasing (kernel/bpf/verifier.c check_btf_func_early), line_info
/// strictly increasing with a record at every function's first
/// instruction (check_btf_line, "missing bpf_line_info for func#"). Line
/// info that cannot meet that is dropped; func_info alone is enough to
/// make the program BTF-aware.
pub(super) fn finish(mut p: ProgramBtf) -> ProgramBtf {
    p.func_info.sort_by_key(|f| f.0);
    p.func_info.dedup_by_key(|f| f.0);
    p.line_info.sort_by_key(|l| l.0);
    p.line_info.dedup_by_key(|l| l.0);
    let covered =
        p.func_info.iter().all(|f| p.line_info.binary_search_by_key(&f.0, |l| l.0).is_ok());
    if !covered {
        p.line_info.clear();
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_info_must_cover_every_function() {
        let p = finish(ProgramBtf {
            func_info: vec![(5, 9), (0, 3)],
            line_info: vec![(5, 1, 2, 3), (0, 1, 1, 1), (2, 1, 1, 1)],
        });
        assert_eq!(p.func_info, vec![(0, 3), (5, 9)]);
        assert_eq!(p.line_info.iter().map(|l| l.0).collect::<Vec<_>>(), vec![0, 2, 5]);
        let q =
            finish(ProgramBtf { func_info: vec![(0, 3), (5, 9)], line_info: vec![(0, 1, 1, 1)] });
        assert!(q.line_info.is_empty());
        assert_eq!(q.func_info.len(), 2);
    }
}
