//! The kfuncs the engine models: what the kernel's own bodies do with no
//! driver support and no flowtable.
//!
//! A kfunc call reaches the engine as `call` with `src_reg` 2 and the target
//! kernel's BTF id; the loader records which kfunc each id is
//! (`Object::kfuncs`), and `prepare` turns each call into a call of one of
//! the internal ids below, which no kernel helper uses (helper ids are
//! below 300), so the interpreter and the JIT dispatch it like a helper.

/// First internal id.
const BASE: i32 = 0x7ff0_0000;
/// `bpf_xdp_metadata_rx_timestamp(ctx, u64 *)`.
pub const XDP_RX_TIMESTAMP: i32 = BASE + 1;
/// `bpf_xdp_metadata_rx_hash(ctx, u32 *, enum xdp_rss_hash_type *)`.
pub const XDP_RX_HASH: i32 = BASE + 2;
/// `bpf_xdp_metadata_rx_vlan_tag(ctx, __be16 *, u16 *)`.
pub const XDP_RX_VLAN_TAG: i32 = BASE + 3;
/// `bpf_xdp_flow_lookup(ctx, struct bpf_fib_lookup *, struct
/// bpf_flowtable_opts *, u32 opts_len)`.
pub const XDP_FLOW_LOOKUP: i32 = BASE + 4;

/// The conntrack kfuncs ([`super::conntrack`]).
pub const XDP_CT_LOOKUP: i32 = BASE + 0x40;
pub const XDP_CT_ALLOC: i32 = BASE + 0x41;
pub const CT_INSERT_ENTRY: i32 = BASE + 0x42;
pub const CT_RELEASE: i32 = BASE + 0x43;
pub const CT_SET_TIMEOUT: i32 = BASE + 0x44;
pub const CT_CHANGE_TIMEOUT: i32 = BASE + 0x45;
pub const CT_SET_STATUS: i32 = BASE + 0x46;
pub const CT_CHANGE_STATUS: i32 = BASE + 0x47;

/// Whether `id` is one of the conntrack kfuncs.
pub fn is_conntrack(id: i32) -> bool {
    (XDP_CT_LOOKUP..=CT_CHANGE_STATUS).contains(&id)
}

const TABLE: &[(&str, i32)] = &[
    ("bpf_xdp_metadata_rx_timestamp", XDP_RX_TIMESTAMP),
    ("bpf_xdp_metadata_rx_hash", XDP_RX_HASH),
    ("bpf_xdp_metadata_rx_vlan_tag", XDP_RX_VLAN_TAG),
    ("bpf_xdp_flow_lookup", XDP_FLOW_LOOKUP),
    ("bpf_xdp_ct_lookup", XDP_CT_LOOKUP),
    ("bpf_xdp_ct_alloc", XDP_CT_ALLOC),
    ("bpf_ct_insert_entry", CT_INSERT_ENTRY),
    ("bpf_ct_release", CT_RELEASE),
    ("bpf_ct_set_timeout", CT_SET_TIMEOUT),
    ("bpf_ct_change_timeout", CT_CHANGE_TIMEOUT),
    ("bpf_ct_set_status", CT_SET_STATUS),
    ("bpf_ct_change_status", CT_CHANGE_STATUS),
];

/// The internal id of a modelled kfunc.
pub fn id_of(name: &str) -> Option<i32> {
    all().find(|(n, _)| *n == name).map(|(_, id)| *id)
}

/// The name of an internal kfunc id.
pub fn name(id: i32) -> Option<&'static str> {
    all().find(|(_, i)| *i == id).map(|(n, _)| *n)
}

/// Every kfunc the engine models, by name.
pub fn modelled() -> impl Iterator<Item = &'static str> {
    all().map(|(n, _)| *n)
}

/// This table and the dynptr kfuncs' ([`super::dynptr::KFUNCS`]).
fn all() -> impl Iterator<Item = &'static (&'static str, i32)> {
    TABLE.iter().chain(super::dynptr::KFUNCS)
}

/// `-EOPNOTSUPP`: what the XDP metadata kfuncs return on a device whose
/// driver does not implement them. net/core/xdp.c defines the default
/// `bpf_xdp_metadata_rx_*` bodies as returning it; kernel/bpf/verifier.c
/// (`specialize_kfunc`) swaps in the driver's op for a program bound to a
/// device that has one. The kernel never runs them under test-run: the
/// verifier refuses a program that is not device-bound ("metadata kfuncs
/// require device-bound program", kernel/bpf/offload.c
/// `bpf_dev_bound_kfunc_check`) and test-run refuses a device-bound one
/// (net/bpf/test_run.c `bpf_prog_test_run_xdp`), so the host backend
/// cannot be compared on them and says so.
pub const EOPNOTSUPP: i64 = -95;
/// `-EINVAL`, `-ENOENT`, `-EAFNOSUPPORT`: the errors
/// net/netfilter/nf_flow_table_bpf.c `bpf_xdp_flow_lookup` stores in
/// `opts->error`.
pub const EINVAL: i32 = -22;
pub const ENOENT: i32 = -2;
pub const EAFNOSUPPORT: i32 = -97;
/// `NF_BPF_FLOWTABLE_OPTS_SZ`: `sizeof(struct bpf_flowtable_opts)`.
pub const FLOWTABLE_OPTS_SZ: u32 = 4;
