//! eBPF opcode fields, helper ids and map types: the shared instruction-set
//! crate's, re-exported under the names the model's code uses.

pub use xdpqual_isa::opcode::*;

/// UAPI helper ids and names.
pub mod helper {
    pub use xdpqual_isa::helpers::id::*;

    /// Name for messages, without `bpf_`; `None` for ids the UAPI lacks.
    pub fn name(id: i32) -> Option<&'static str> {
        xdpqual_isa::helpers::bare_name(id)
    }
}

/// UAPI `enum bpf_map_type` numbers and names.
pub mod map_type {
    pub use xdpqual_isa::map_types::*;
}
