//! The rule catalogue. Every ID here has a table row in docs/offload-rules.md
//! (NFP-* in §1.2, NSIM-* in §2.1, HXDP-* in §3.4, KERNEL-RESERVED and
//! ANALYSIS-BUDGET in §4) with the target's behaviour, its message and the
//! kernel/firmware/paper source; tests/rules_documented.rs checks both ways.

use serde::{Serialize, Serializer};

macro_rules! rules {
    ($($var:ident => $id:literal, $checked:literal, $summary:literal;)*) => {
        /// A rule of the offload specification.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RuleId { $($var),* }

        impl RuleId {
            pub const ALL: &'static [RuleId] = &[$(RuleId::$var),*];
            /// The stable ID, e.g. `NFP-I4`.
            pub fn id(self) -> &'static str { match self { $(RuleId::$var => $id),* } }
            /// One-line summary of the rule.
            pub fn summary(self) -> &'static str { match self { $(RuleId::$var => $summary),* } }
            /// Whether a program can break it (false: attach/environment/host-side rules).
            pub fn checked_statically(self) -> bool { match self { $(RuleId::$var => $checked),* } }
            pub fn from_id(s: &str) -> Option<RuleId> {
                Self::ALL.iter().copied().find(|r| r.id() == s)
            }
        }
    };
}

rules! {
    T1 => "NFP-T1", true, "only XDP and SCHED_CLS programs can be offloaded";
    T2 => "NFP-T2", true, "no prog_flags except BPF_F_XDP_DEV_BOUND_ONLY (which is not offload)";
    T3 => "NFP-T3", false, "XDP offload must be attached with XDP_FLAGS_HW_MODE";
    T4 => "NFP-T4", false, "program must be bound to the same device/ASIC";
    T5 => "NFP-T5", false, "BPF-capable firmware, ABI 2..3, little-endian host";
    T6 => "NFP-T6", false, "one offloaded program per vNIC (XDP and TC exclusive)";
    T7 => "NFP-T7", false, "live replace needs FW cap RELO";
    T8 => "NFP-T8", false, "TC: classifier, chain 0, ETH_P_ALL, direct-action only";
    T9 => "NFP-T9", true, "no extended registers (constant blinding)";
    T10 => "NFP-T10", false, "only nfp (BPF app) and netdevsim advertise HW offload";
    S1 => "NFP-S1", true, "JITed NFP code must fit in NFP_NET_CFG_BPF_MAX_LEN";
    S2 => "NFP-S2", true, "stack over the deepest call chain (64 B frames, callee extras) within FW stack";
    S3 => "NFP-S3", true, "call depth within MAX_CALL_FRAMES; no indirect callx";
    S4 => "NFP-S4", true, "stack pointer offsets must be constant";
    S5 => "NFP-S5", true, "one insn may hit different stack offsets only with equal off % 4";
    S6 => "NFP-S6", true, "pointer type of a load/store insn may not change between paths";
    S7 => "NFP-S7", true, "no tail calls (helper 12, PROG_ARRAY)";
    I1 => "NFP-I1", true, "every opcode must have a JIT translation";
    I2 => "NFP-I2", true, "MUL operands within u32";
    I3 => "NFP-I3", true, "DIV: dividend within u32, divisor constant, within u32, non-negative";
    I4 => "NFP-I4", true, "MOD is not supported";
    I5 => "NFP-I5", false, "shift-by-register code generation depends on the range (codegen only)";
    I6 => "NFP-I6", true, "BPF_END only TO_BE; no TO_LE, no bswap";
    I7 => "NFP-I7", true, "no JMP32|JA (gotol)";
    I8 => "NFP-I8", true, "atomics: only XADD W/DW of a scalar into a map value";
    I9 => "NFP-I9", true, "atomic counters zero-initialised; no read/atomic use-type conflict";
    I10 => "NFP-I10", true, "BPF_ST (store immediate) fails translation";
    I11 => "NFP-I11", true, "no sign-extending loads (LDX|MEMSX)";
    I12 => "NFP-I12", true, "no MOVSX/SDIV/SMOD (non-zero off), rejected conservatively";
    I13 => "NFP-I13", true, "LD_ABS/LD_IND only for TC, not XDP";
    I14 => "NFP-I14", true, "LD_IMM64 pseudo sources: only BPF_PSEUDO_MAP_FD";
    I15 => "NFP-I15", false, "verifier rewrites: only conditional jump -> JA";
    M1 => "NFP-M1", true, "LDX/STX only through ctx, stack, map value, packet pointers";
    M2 => "NFP-M2", true, "no stores to map values (read-only except XADD/update helper)";
    M3 => "NFP-M3", true, "map value load offset constant and in bounds";
    M4 => "NFP-M4", true, "XDP ctx reads: only data and data_end";
    M5 => "NFP-M5", true, "XDP ctx writes: only rx_queue_index, with QUEUE_SELECT";
    M6 => "NFP-M6", true, "TC ctx reads: only len, data, data_end";
    M7 => "NFP-M7", true, "packet reach within the HW packet split boundary";
    M8 => "NFP-M8", false, "packet stores supported (memory placement note)";
    H1 => "NFP-H1", true, "helper must be one of the driver's seven (unsupported function id)";
    H2 => "NFP-H2", true, "helper needs a firmware capability";
    H3 => "NFP-H3", true, "map helper keys/values: stack pointer, constant offset, 4-byte aligned";
    H4 => "NFP-H4", true, "xdp_adjust_head: FW window, fast path, no metadata shifting";
    H5 => "NFP-H5", true, "xdp_adjust_tail: shrink only";
    H6 => "NFP-H6", true, "perf_event_output: BPF_F_CURRENT_CPU, data pointer types, async semantics";
    R1 => "NFP-R1", true, "XDP: r0 > 3 (incl. XDP_REDIRECT) is abort/drop on the NIC";
    R2 => "NFP-R2", true, "TC: r0 a known constant: SHOT, STOLEN, QUEUED or > TC_ACT_REDIRECT";
    P1 => "NFP-P1", true, "offloaded maps must be ARRAY or HASH (others: offload device mismatch)";
    P2 => "NFP-P2", false, "only PERF_EVENT_ARRAY host maps are offload-neutral (covered by NFP-P1)";
    P3 => "NFP-P3", false, "no BTF for offloaded maps (loader retries without)";
    P4 => "NFP-P4", true, "map_flags must be 0";
    P5 => "NFP-P5", true, "map type in the FW types bitmask";
    P6 => "NFP-P6", true, "number of maps within FW max_maps";
    P7 => "NFP-P7", true, "total max_entries within FW max_elems";
    P8 => "NFP-P8", true, "key, value and element sizes within FW limits";
    P9 => "NFP-P9", false, "host-side update flags <= BPF_EXIST";
    P10 => "NFP-P10", false, "host-side delete from ARRAY fails";
    P11 => "NFP-P11", false, "host map ops are FW control messages";
    P12 => "NFP-P12", true, "global data (.data/.rodata/.bss) effectively unsupported";
    NsimM1 => "NSIM-M1", true, "netdevsim maps: ARRAY or HASH only";
    NsimM2 => "NSIM-M2", true, "netdevsim maps: at most NSIM_BPF_MAX_KEYS (2) entries";
    NsimM3 => "NSIM-M3", true, "netdevsim maps: map_flags must be 0";
    HxdpT1 => "HXDP-T1", true, "hXDP runs XDP programs only";
    HxdpI1 => "HXDP-I1", true, "opcode outside the hXDP (2020) instruction set";
    HxdpC1 => "HXDP-C1", true, "program must fit in 256 VLIW instruction rows";
    HxdpS1 => "HXDP-S1", true, "stack within 512 B";
    HxdpM1 => "HXDP-M1", true, "hXDP maps: only the types of the programs the paper ran (HASH, ARRAY, PERCPU_ARRAY, LPM_TRIE, DEVMAP)";
    KernelReserved => "KERNEL-RESERVED", true, "the kernel verifier rejects the instruction (reserved fields, jump range) before any offload hook";
    HostVerifier => "KERNEL-VERIFIER", false, "the host kernel's verifier rejects the program; the offload path runs that verifier first";
    Budget => "ANALYSIS-BUDGET", true, "the abstract interpretation ran out of budget";
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}
