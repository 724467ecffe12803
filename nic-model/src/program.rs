//! Minimal, self-contained description of the program to check.
//!
//! Instructions and maps are the shared crates' own types (`xdpqual-isa`,
//! `xdpqual-object`); the program adds what the checks need of its section
//! and line table. Relocated `lddw` use object-relative map indices (`src = PSEUDO_MAP_FD (1)`, `imm = map index`; or
//! `src = PSEUDO_MAP_VALUE (2)`, `imm = map index`, next slot `imm = offset`).

use serde::{Deserialize, Serialize};

/// One 64-bit eBPF instruction slot: the shared instruction-set crate's.
pub use xdpqual_isa::Insn;

/// A map the program references: the loader's own definition (one type for
/// every backend, from `xdpqual-object`).
pub use xdpqual_object::{MapDef, MapOrigin, MapType};

/// The program: instructions, maps and an optional line table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSpec {
    pub name: String,
    /// ELF section name (`xdp`, `tc`, `classifier`, `xdp.frags`, ...); it decides
    /// the program type the loader would ask for.
    pub section: String,
    /// The type the program is loaded as. The loader decides it (from the
    /// section, or from the user's `--type`), so it is given, not guessed
    /// again from the section name here.
    pub prog_type: ProgType,
    /// `prog_flags` of the load (`BPF_F_XDP_HAS_FRAGS`, ...).
    pub prog_flags: u32,
    pub insns: Vec<Insn>,
    pub maps: Vec<MapDef>,
    /// `(instruction index, "file:line")`, sorted by index; an entry applies to
    /// its instruction and the ones after it up to the next entry.
    pub lines: Option<Vec<(usize, String)>>,
}

/// Program types the checker distinguishes (UAPI numbers in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgType {
    /// `BPF_PROG_TYPE_XDP` (6).
    Xdp,
    /// `BPF_PROG_TYPE_SCHED_CLS` (3).
    SchedCls,
    /// Anything else: the section name is kept for the message.
    Other,
}

/// Program flags implied by the section name (libbpf's section table).
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;

impl ProgType {
    /// Program type from a section name alone, following libbpf's
    /// `section_defs` (tools/lib/bpf/libbpf.c): `xdp*` is XDP, `tc*` and
    /// `classifier*` are SCHED_CLS. For specs built without a loader.
    pub fn from_section(section: &str) -> ProgType {
        let head = section.split('/').next().unwrap_or(section);
        match head {
            "xdp" | "xdp.frags" | "xdp_devmap" | "xdp.frags_devmap" | "xdp_cpumap"
            | "xdp.frags_cpumap" => ProgType::Xdp,
            "tc" | "classifier" | "tcx" | "tc.ingress" | "tc.egress" | "tcx.ingress"
            | "tcx.egress" => ProgType::SchedCls,
            _ => ProgType::Other,
        }
    }
}

/// `prog_flags` libbpf would pass for a section (`SEC_XDP_FRAGS`,
/// `SEC_SLEEPABLE`). For specs built without a loader.
pub fn section_prog_flags(section: &str) -> u32 {
    let head = section.split('/').next().unwrap_or("");
    let mut f = 0;
    if head.starts_with("xdp.frags") {
        f |= BPF_F_XDP_HAS_FRAGS;
    }
    if head.ends_with(".s") {
        f |= BPF_F_SLEEPABLE;
    }
    f
}

impl ProgramSpec {
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    pub fn prog_flags(&self) -> u32 {
        self.prog_flags
    }

    /// Source line of instruction `pc`, if the line table covers it.
    pub fn line_of(&self, pc: usize) -> Option<&str> {
        let lines = self.lines.as_ref()?;
        let idx = lines.partition_point(|(i, _)| *i <= pc);
        if idx == 0 {
            return None;
        }
        Some(lines[idx - 1].1.as_str())
    }
}
