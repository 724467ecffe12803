//! Engine faults: what stops a program other than its own `exit`.
//!
//! A fault is a per-packet outcome, distinct from a program that returns
//! XDP_ABORTED. In the kernel most of these could not happen because the
//! verifier would have refused the program; in the engine they are how the
//! sandbox reports that the program tried something it must not.

use std::fmt;

/// The memory region an address points into, for messages and cost models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    Packet,
    Stack,
    Ctx,
    /// A map value (index into the object's maps).
    MapValue(u32),
    /// A BPF_MAP_TYPE_RINGBUF reservation.
    Ringbuf,
    /// The flat memory of a conformance test (`-- mem`).
    Mem,
    /// A `struct nf_conn` of the modelled conntrack table.
    Conntrack,
    /// A `__ksym` kernel variable (index into `Object::ksyms`).
    Ksym(u32),
    /// Not an address of any region.
    Invalid,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Packet => f.write_str("packet"),
            Region::Stack => f.write_str("stack"),
            Region::Ctx => f.write_str("ctx"),
            Region::MapValue(m) => write!(f, "value of map #{m}"),
            Region::Ringbuf => f.write_str("ringbuf record"),
            Region::Mem => f.write_str("test memory"),
            Region::Conntrack => f.write_str("struct nf_conn"),
            Region::Ksym(k) => write!(f, "kernel variable #{k}"),
            Region::Invalid => f.write_str("no region"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// A load or store outside the region its address points into.
    OutOfBounds {
        addr: u64,
        size: u8,
        write: bool,
        region: Region,
        /// The valid byte range of that region at the time of the access,
        /// as offsets, for the message.
        valid: (u64, u64),
    },
    /// A store into read-only memory (ctx, `.rodata`, DEVMAP values).
    ReadOnly { addr: u64, region: Region },
    /// A ctx access the kernel's `xdp_is_valid_access` would refuse.
    InvalidCtxAccess { offset: i64, size: u8 },
    /// The per-packet instruction budget ran out.
    BudgetExhausted { budget: u64 },
    /// More than 8 nested BPF-to-BPF call frames (`MAX_CALL_FRAMES`).
    CallDepth,
    /// An opcode the engine does not know (normally refused at load).
    InvalidInstruction { code: u8 },
    /// The program counter left the program.
    PcOutOfRange { pc: i64 },
    /// A helper was called with arguments the verifier would have refused.
    HelperArgument { helper: &'static str, reason: String },
    /// A helper or behaviour the engine refuses to guess at.
    NotModelled { what: String },
    /// A null or non-pointer value used as a pointer.
    NotAPointer { addr: u64 },
    /// A per-packet resource budget ([`super::budget`]) ran out.
    ResourceExhausted { resource: super::budget::Resource, limit: u64 },
    /// Growing a map would pass the engine's map memory cap
    /// (`EngineConfig::map_memory_cap`); the kernel has no such cap, so this
    /// is a fault rather than an errno.
    MapMemoryCap { map: String, cap: u64 },
    /// The program reached an instruction that CO-RE relocation poisoned
    /// (no match in the target kernel's BTF); the kernel's verifier would
    /// have refused to load a program that can get here.
    CorePoisoned,
    /// A bug in the engine (a panic in its own code) surfaced as a
    /// per-packet fault instead of taking the process down.
    Internal { what: String },
}

/// A fault with the instruction that caused it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Fault {
    /// Instruction index in the program that was running.
    pub pc: usize,
    /// Name of the program that was running (differs after a tail call).
    pub program: String,
    /// `file:line` of the instruction, from BTF line info, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::OutOfBounds { addr, size, write, region, valid } => write!(
                f,
                "{} of {size} bytes at {addr:#x} is outside the {region} (valid offsets {}..{})",
                if *write { "store" } else { "load" },
                valid.0,
                valid.1
            ),
            FaultKind::ReadOnly { addr, region } => {
                write!(f, "store to read-only {region} at {addr:#x}")
            }
            FaultKind::InvalidCtxAccess { offset, size } => write!(
                f,
                "invalid access to struct xdp_md at offset {offset} size {size} (the verifier allows 4-byte reads of its fields)"
            ),
            FaultKind::BudgetExhausted { budget } => {
                write!(f, "instruction budget of {budget} exhausted (runaway program?)")
            }
            FaultKind::CallDepth => f.write_str("BPF-to-BPF call depth exceeds 8 frames"),
            FaultKind::InvalidInstruction { code } => write!(f, "invalid instruction opcode {code:#04x}"),
            FaultKind::PcOutOfRange { pc } => write!(f, "jump to instruction {pc}, outside the program"),
            FaultKind::HelperArgument { helper, reason } => write!(f, "{helper}: {reason}"),
            FaultKind::NotModelled { what } => write!(f, "not modelled: {what}"),
            FaultKind::NotAPointer { addr } => write!(f, "dereference of non-pointer value {addr:#x}"),
            FaultKind::ResourceExhausted { resource, limit } => write!(
                f,
                "resource budget exhausted: {resource} (limit {})",
                super::budget::show_limit(*resource, *limit)
            ),
            FaultKind::MapMemoryCap { map, cap } => write!(
                f,
                "map '{map}' cannot grow: the map memory cap of {} (the engine's, or the whole process's: XDPQUAL_MAP_MEMORY) is reached",
                super::budget::show_limit(super::budget::Resource::AllocBytes, *cap)
            ),
            FaultKind::CorePoisoned => f.write_str(
                "reached an instruction poisoned by an unresolved CO-RE relocation (call 0xbad2310); \
                 the kernel rejects a program that can reach one",
            ),
            FaultKind::Internal { what } => write!(f, "internal error in {what}"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at insn {} of {}", self.kind, self.pc, self.program)?;
        if let Some(l) = &self.line {
            write!(f, " ({l})")?;
        }
        Ok(())
    }
}
