//! Where aya-obj's linker put each function.
//!
//! `Object::relocate_calls` appends every callee to the program and copies
//! the callee's `func_info` records with `insn_off` set to where it landed,
//! but it does not say so otherwise. Before linking we give every function a
//! single `func_info` record whose `type_id` is our own tag for it; after
//! linking, the program's `func_info` lists `(start, tag)` for each function
//! it contains. The real func_info (BTF function prototypes) is not used by
//! any backend, so overwriting it loses nothing.

use aya_obj::generated::bpf_func_info;
use aya_obj::{Function, Object};

/// Function keys (`(section index, address)`) in tag order.
pub(crate) struct Tags {
    keys: Vec<(usize, u64)>,
}

/// One function inside a linked program.
pub(crate) struct Placement {
    pub start: usize,
    /// The key of the function in `Object::functions`.
    pub key: (usize, u64),
}

pub(crate) fn tag_functions(obj: &mut Object) -> Tags {
    let keys: Vec<(usize, u64)> = obj.functions.keys().copied().collect();
    for (tag, f) in obj.functions.values_mut().enumerate() {
        f.func_info.func_info = vec![bpf_func_info { insn_off: 0, type_id: tag as u32 }];
        f.func_info.num_info = 1;
    }
    Tags { keys }
}

impl Tags {
    /// The functions in a linked program, sorted by start.
    pub(crate) fn placements(&self, linked: &Function) -> Vec<Placement> {
        let mut out: Vec<Placement> = linked
            .func_info
            .func_info
            .iter()
            .filter_map(|fi| {
                let key = *self.keys.get(fi.type_id as usize)?;
                Some(Placement { start: fi.insn_off as usize, key })
            })
            .collect();
        out.sort_by_key(|p| p.start);
        out.dedup_by_key(|p| p.start);
        out
    }
}
