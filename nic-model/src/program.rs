//! Minimal, self-contained description of the program to check.
//!
//! The harness crate depends on this crate, so these types mirror (but do not
//! import) its loader-to-backend contract: relocated `lddw` use object-relative
//! map indices (`src = PSEUDO_MAP_FD (1)`, `imm = map index`; or
//! `src = PSEUDO_MAP_VALUE (2)`, `imm = map index`, next slot `imm = offset`).

use serde::{Deserialize, Serialize};

/// One 64-bit eBPF instruction slot: the shared instruction-set crate's.
pub use xdpqual_isa::Insn;

/// A map the program references, as created by the loader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSpec {
    pub name: String,
    /// UAPI `enum bpf_map_type` number (1 = HASH, 2 = ARRAY, 4 = PERF_EVENT_ARRAY, ...).
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// `.data`, `.rodata`, `.bss` and friends (libbpf's internal maps).
    pub is_global_data: bool,
}

/// The program: instructions, maps and an optional line table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramSpec {
    pub name: String,
    /// ELF section name (`xdp`, `tc`, `classifier`, `xdp.frags`, ...); it decides
    /// the program type the loader would ask for.
    pub section: String,
    pub insns: Vec<Insn>,
    pub maps: Vec<MapSpec>,
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

impl ProgramSpec {
    /// Program type from the section name, following libbpf's `section_defs`
    /// (tools/lib/bpf/libbpf.c): `xdp*` is XDP, `tc*`/`classifier*` is SCHED_CLS.
    pub fn prog_type(&self) -> ProgType {
        let s = self.section.as_str();
        let head = s.split('/').next().unwrap_or(s);
        match head {
            "xdp" | "xdp.frags" | "xdp_devmap" | "xdp.frags_devmap" | "xdp_cpumap"
            | "xdp.frags_cpumap" => ProgType::Xdp,
            "tc" | "classifier" | "tcx" | "tc.ingress" | "tc.egress" | "tcx.ingress"
            | "tcx.egress" => ProgType::SchedCls,
            _ => ProgType::Other,
        }
    }

    /// `prog_flags` libbpf would pass for this section (`SEC_XDP_FRAGS`, `SEC_SLEEPABLE`).
    pub fn prog_flags(&self) -> u32 {
        let head = self.section.split('/').next().unwrap_or("");
        let mut f = 0;
        if head.starts_with("xdp.frags") {
            f |= BPF_F_XDP_HAS_FRAGS;
        }
        if head.ends_with(".s") {
            f |= BPF_F_SLEEPABLE;
        }
        f
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
