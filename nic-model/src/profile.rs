//! Offload profiles: the limits of one offload target, as data.
//!
//! Every constant is a [`Sourced`] value that says where it comes from, and
//! whether it is an assumption. Built-in profiles live in `profiles/*.toml` and
//! are embedded; a user's own profile is read from a path with the same schema.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A constant with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sourced<T> {
    pub value: T,
    /// Where the value was read (file and symbol, document and section).
    pub source: String,
    /// True when the value is not read from a source but assumed or derived.
    #[serde(default)]
    pub assumption: bool,
}

/// Which rule catalogue and verifier-hook semantics apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Netronome nfp driver + firmware (offload-rules.md §1).
    Nfp,
    /// netdevsim offload simulation (offload-rules.md §2): no ISA limits.
    Netdevsim,
    /// hXDP on NetFPGA-SUME (offload-rules.md §3).
    Hxdp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub profile: Identity,
    pub program: ProgramLimits,
    pub isa: IsaLimits,
    pub helpers: HelperLimits,
    pub stack: StackLimits,
    pub code: CodeLimits,
    pub packet: PacketLimits,
    pub maps: MapLimits,
    pub exit: ExitBehaviour,
    /// Constants for the datapath emulation and throughput estimate (issue parts 3/4).
    #[serde(default)]
    pub perf: Option<PerfModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub name: String,
    pub family: Family,
    pub description: String,
    /// The whole profile is an assumption (e.g. a firmware whose capability table was not seen).
    #[serde(default)]
    pub assumption: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramLimits {
    /// Accepted program types: "xdp", "sched_cls".
    pub prog_types: Sourced<Vec<String>>,
    /// Mask of `prog_flags` bits that may be set.
    pub allowed_prog_flags: Sourced<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsaLimits {
    /// Opcode bytes that cannot be translated at all.
    pub unsupported_opcodes: Sourced<Vec<u8>>,
    /// NFP-I2/I3: MUL/DIV operands must be provably within u32.
    pub mul_div_u32_only: Sourced<bool>,
    /// NFP-I8: only XADD (W/DW, imm = BPF_ADD) into a map value, of a scalar.
    pub atomic_add_to_map_value_only: Sourced<bool>,
    /// NFP-I10: `BPF_ST` (store immediate) fails translation.
    pub store_imm_fails: Sourced<bool>,
    /// NFP-I12: MOVSX / SDIV / SMOD (non-zero `off`) rejected conservatively.
    pub reject_signed_alu_off: Sourced<bool>,
    /// NFP-T9: registers above r10 (constant blinding) are rejected.
    pub reject_extended_regs: Sourced<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperLimits {
    /// Helper ids the driver knows at all (`None` = no helper restriction).
    pub driver_known: Option<Sourced<Vec<i32>>>,
    /// Helper ids for which the firmware declares support (subset of `driver_known`).
    pub firmware: Option<Sourced<Vec<i32>>>,
    /// `bpf_xdp_adjust_head` window (ADJUST_HEAD capability TLV).
    pub adjust_head: Option<AdjustHead>,
    /// Largest delta for the adjust_head fast path (`ETH_ZLEN - ETH_HLEN`).
    pub adjust_head_fast_max_add: Option<Sourced<i64>>,
    /// `bpf_xdp_adjust_tail` may only shrink.
    pub adjust_tail_shrink_only: Sourced<bool>,
    /// Minimum packet length after adjust_head/adjust_tail (`ETH_HLEN`).
    pub min_len_after_adjust: Option<Sourced<u32>>,
    /// XDP ctx write to `rx_queue_index` (QUEUE_SELECT capability).
    pub queue_select: Sourced<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustHead {
    /// Capability flag `NFP_BPF_ADJUST_HEAD_NO_META`.
    pub no_meta: Sourced<bool>,
    pub off_min: Sourced<i64>,
    pub off_max: Sourced<i64>,
    pub guaranteed_sub: Sourced<i64>,
    pub guaranteed_add: Sourced<i64>,
    /// Offset of the packet start in its buffer when the program starts
    /// (the window `[off_min, off_max]` is in these units).
    #[serde(default)]
    pub start_offset: Option<Sourced<i64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackLimits {
    pub max_bytes: Sourced<u32>,
    /// Each frame is rounded up to this (NFP `STACK_FRAME_ALIGN`); 1 = no rounding.
    pub frame_align: Sourced<u32>,
    /// Extra bytes per callee frame for the return address.
    pub callee_ret_addr: Sourced<u32>,
    /// Extra bytes per callee frame that writes r6-r9.
    pub callee_saved_regs: Sourced<u32>,
    /// Maximum call frames (`MAX_CALL_FRAMES`).
    pub max_call_frames: Sourced<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum CodeLimits {
    /// No code-size limit.
    None,
    /// NFP: JITed 64-bit NFP instructions (`NFP_NET_CFG_BPF_MAX_LEN`).
    Nfp {
        max_insns: Sourced<u32>,
        outro_insns: Sourced<u32>,
        prefetch_nops: Sourced<u32>,
        cost: NfpCost,
    },
    /// VLIW instruction memory: rows of `lanes` slots.
    Vliw {
        max_rows: Sourced<u32>,
        lanes: Sourced<u32>,
        /// Typical eBPF instructions per row after scheduling (paper: 2-3x
        /// fewer rows); used when `compiler` is absent.
        typical_insns_per_row: Sourced<f64>,
        /// The target's compiler passes, for a real schedule ([`crate::vliw`]):
        /// code size in rows, and rows on each packet's path for the estimate.
        #[serde(default)]
        compiler: Option<VliwCompiler>,
    },
}

/// Which passes and constraints of hXDP's parallelizer to model (see
/// [`crate::vliw`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VliwCompiler {
    pub lane_forwarding: Sourced<bool>,
    pub branch_lane0: Sourced<bool>,
    pub mov_alu: Sourced<bool>,
    pub movi_exit: Sourced<bool>,
    pub alu32_patterns: Sourced<bool>,
    pub load_store48: Sourced<bool>,
    pub memset_to_zero: Sourced<bool>,
    pub remove_bounds_checks: Sourced<bool>,
}

impl VliwCompiler {
    pub fn options(&self, lanes: u32) -> crate::vliw::Options {
        crate::vliw::Options {
            lanes: lanes.max(1) as usize,
            lane_forwarding: self.lane_forwarding.value,
            branch_lane0: self.branch_lane0.value,
            mov_alu: self.mov_alu.value,
            movi_exit: self.movi_exit.value,
            alu32_patterns: self.alu32_patterns.value,
            load_store48: self.load_store48.value,
            memset_to_zero: self.memset_to_zero.value,
            remove_bounds_checks: self.remove_bounds_checks.value,
        }
    }
}

/// NFP instructions per eBPF instruction class, for the code-size estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NfpCost {
    pub alu32: Sourced<u32>,
    pub alu64: Sourced<u32>,
    pub mul: Sourced<u32>,
    pub div: Sourced<u32>,
    pub jmp: Sourced<u32>,
    pub load: Sourced<u32>,
    pub store: Sourced<u32>,
    pub helper_call: Sourced<u32>,
    pub other: Sourced<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketLimits {
    /// Largest packet offset the program may reach (`INL_MTU*64 - 32`); `None` = no limit.
    pub split_boundary: Option<Sourced<u32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapLimits {
    /// Map types the kernel lets be offloaded (UAPI numbers).
    pub offloadable_types: Sourced<Vec<u32>>,
    /// Host map types an offloaded program may still use (offload-neutral).
    pub host_types: Sourced<Vec<u32>>,
    /// Types in the firmware/device bitmask.
    pub device_types: Sourced<Vec<u32>>,
    pub flags_must_be_zero: Sourced<bool>,
    pub max_maps: Option<Sourced<u32>>,
    pub max_total_entries: Option<Sourced<u64>>,
    pub max_entries_per_map: Option<Sourced<u32>>,
    pub max_key_size: Option<Sourced<u32>>,
    pub max_value_size: Option<Sourced<u32>>,
    /// `round_up(key, 8) + round_up(value, 8)` limit.
    pub max_elem_size: Option<Sourced<u32>>,
    /// Global data (`.data/.rodata/.bss`) usable.
    pub global_data: Sourced<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitBehaviour {
    /// XDP return values above this are treated as abort (drop).
    pub xdp_max_action: Option<Sourced<u64>>,
    /// TC direct-action: r0 must be a known constant, of an allowed value.
    pub tc_constant_return: Sourced<bool>,
}

/// Constants the datapath emulation and throughput estimate will need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerfModel {
    pub clock_mhz: Option<Sourced<f64>>,
    pub cores: Option<Sourced<u32>>,
    pub threads_per_core: Option<Sourced<u32>>,
    pub lanes: Option<Sourced<u32>>,
    /// Fixed per-packet overhead in cycles.
    pub per_packet_cycles: Option<Sourced<f64>>,
    /// Memory latencies in cycles, by memory name (CLS, CTM, IMEM, EMEM, LMEM...).
    #[serde(default)]
    pub mem_latency_cycles: Vec<NamedLatency>,
    pub line_rate_mpps: Option<Sourced<f64>>,
    /// Receive queues for RSS.
    pub rx_queues: Option<Sourced<u32>>,
    /// Issue rate for targets without a per-class cost table or a modelled
    /// compiler (eBPF instructions per cycle); when set it replaces
    /// `[code.cost]`. A VLIW profile with `[code.compiler]` counts the rows
    /// of its schedule instead.
    #[serde(default)]
    pub insns_per_cycle: Option<Sourced<f64>>,
    /// Which memory (a `mem_latency_cycles` name) each region lives in.
    #[serde(default)]
    pub region_memory: Option<RegionMemory>,
    /// Helper costs by id; helpers not listed cost `default_helper_cycles`.
    #[serde(default)]
    pub helper_cycles: Vec<HelperCost>,
    #[serde(default)]
    pub default_helper_cycles: Option<Sourced<f64>>,
    /// bpf_xdp_adjust_head code paths (beyond the call instruction).
    #[serde(default)]
    pub adjust_head_fast_cycles: Option<Sourced<f64>>,
    #[serde(default)]
    pub adjust_head_slow_cycles: Option<Sourced<f64>>,
    /// Line rate in Gbit/s: the cap is computed for the traced frame size
    /// (takes precedence over `line_rate_mpps`).
    #[serde(default)]
    pub line_rate_gbps: Option<Sourced<f64>>,
    /// Seed of the NIC's pseudo-random generator in the datapath emulation.
    #[serde(default)]
    pub prandom_seed: Option<Sourced<u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionMemory {
    pub packet: Option<Sourced<String>>,
    pub stack: Option<Sourced<String>>,
    pub ctx: Option<Sourced<String>>,
    pub map_value: Option<Sourced<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperCost {
    pub id: i32,
    /// Cycles the core is busy.
    pub compute: Sourced<f64>,
    /// Cycles waiting on memory (hidden by other threads).
    #[serde(default)]
    pub wait: Option<Sourced<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedLatency {
    pub memory: String,
    pub cycles: Sourced<f64>,
}

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no built-in offload profile named `{name}`; built-in profiles are: {known}")]
    UnknownName { name: String, known: String },
    #[error("cannot read offload profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("offload profile {file}, line {line}: {message}{}", key.as_ref().map(|k| format!(" (key `{k}`)")).unwrap_or_default())]
    Parse { file: String, line: usize, key: Option<String>, message: String },
    #[error("offload profile {file}: key `{key}`: {message}")]
    Invalid { file: String, key: String, message: String },
}

/// Built-in profiles: (name, file name, text).
const BUILTIN: &[(&str, &str, &str)] = &[
    ("nfp-corenic", "nfp-corenic.toml", include_str!("../profiles/nfp-corenic.toml")),
    ("nfp-agilio-ebpf", "nfp-agilio-ebpf.toml", include_str!("../profiles/nfp-agilio-ebpf.toml")),
    ("netdevsim", "netdevsim.toml", include_str!("../profiles/netdevsim.toml")),
    ("hxdp", "hxdp.toml", include_str!("../profiles/hxdp.toml")),
];

impl Profile {
    /// The modelled VLIW compiler's options, for a profile that has one.
    pub fn vliw_options(&self) -> Option<crate::vliw::Options> {
        match &self.code {
            CodeLimits::Vliw { lanes, compiler: Some(c), .. } => Some(c.options(lanes.value)),
            _ => None,
        }
    }

    /// Names of the built-in profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _, _)| *n).collect()
    }

    /// Load a built-in profile by name.
    pub fn builtin(name: &str) -> Result<Profile, ProfileError> {
        let Some((_, file, text)) = BUILTIN.iter().find(|(n, _, _)| *n == name) else {
            return Err(ProfileError::UnknownName {
                name: name.to_string(),
                known: Self::builtin_names().join(", "),
            });
        };
        Self::parse(text, &format!("profiles/{file} (built-in)"))
    }

    /// Load a user's profile from a TOML file.
    pub fn from_path(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ProfileError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// A built-in name, or else a path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if BUILTIN.iter().any(|(n, _, _)| *n == name_or_path) {
            Self::builtin(name_or_path)
        } else if name_or_path.ends_with(".toml") || Path::new(name_or_path).exists() {
            Self::from_path(Path::new(name_or_path))
        } else {
            Self::builtin(name_or_path)
        }
    }

    /// Parse profile text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            let key = e.span().and_then(|s| key_at(text, s.start));
            ProfileError::Parse {
                file: file.to_string(),
                line,
                key,
                message: e.message().to_string(),
            }
        })?;
        profile.validate(file)?;
        Ok(profile)
    }

    fn validate(&self, file: &str) -> Result<(), ProfileError> {
        let bad = |key: &str, message: &str| {
            Err(ProfileError::Invalid {
                file: file.into(),
                key: key.into(),
                message: message.into(),
            })
        };
        for t in &self.program.prog_types.value {
            if t != "xdp" && t != "sched_cls" {
                return bad(
                    "program.prog_types",
                    &format!("unknown program type `{t}` (expected xdp or sched_cls)"),
                );
            }
        }
        if self.stack.frame_align.value == 0 {
            return bad("stack.frame_align", "must be at least 1");
        }
        if let CodeLimits::Vliw { lanes, typical_insns_per_row, .. } = &self.code {
            if lanes.value == 0 {
                return bad("code.lanes", "must be at least 1");
            }
            // Written so that NaN is refused too.
            if typical_insns_per_row.value.partial_cmp(&1.0).is_none_or(|o| o.is_lt()) {
                return bad("code.typical_insns_per_row", "must be at least 1.0");
            }
        }
        if let (Some(known), Some(fw)) = (&self.helpers.driver_known, &self.helpers.firmware) {
            if let Some(h) = fw.value.iter().find(|h| !known.value.contains(h)) {
                return bad(
                    "helpers.firmware",
                    &format!("helper {h} is not in helpers.driver_known"),
                );
            }
        }
        let mut sources = Vec::new();
        collect_sources(&serde_json::to_value(self).unwrap_or_default(), "", &mut sources);
        if let Some(k) = sources.iter().find(|(_, s)| s.trim().is_empty()) {
            return bad(&k.0, "every constant must cite its source (empty `source`)");
        }
        Ok(())
    }

    /// Every sourced constant as (dotted key, source), for audits and tests.
    pub fn sources(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        collect_sources(&serde_json::to_value(self).unwrap_or_default(), "", &mut out);
        out
    }
}

fn collect_sources(v: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(_), Some(serde_json::Value::String(s))) = (m.get("value"), m.get("source"))
            {
                out.push((path.to_string(), s.clone()));
                return;
            }
            for (k, x) in m {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                collect_sources(x, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect_sources(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The TOML key at or before byte `pos`: the nearest `key =` on that line, else
/// the table header above it.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let pos = pos.min(text.len());
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("");
    let table = text[..line_start]
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .map(|l| l.trim().trim_matches(|c| c == '[' || c == ']').to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    }
}
