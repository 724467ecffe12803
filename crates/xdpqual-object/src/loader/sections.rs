//! Which program type a code section holds, and how the user overrides it.
//!
//! Without a hint the rule is libbpf 1.0's: a section's name must match one
//! of libbpf's `section_defs` (tools/lib/bpf/libbpf.c, matched by
//! `sec_def_matches`: a `+` entry matches the name or `NAME/...`, any other
//! entry the exact name). `xdp`, `xdp.frags`, `xdp/devmap`, `xdp/cpumap`,
//! `xdp.frags/devmap`, `xdp.frags/cpumap` are XDP; `xdp/<anything else>` is
//! plain XDP too (older libbpf named several XDP programs that way and the
//! corpus still does). Every other known name is another program type.
//!
//! A section whose name libbpf does not know (`xdp1`, `xdp_prog`, Cilium's
//! `2/1`, ...) holds code of no declared type. `bpftool prog load F type xdp`,
//! libxdp and `ip link set ... xdp obj F sec S` load such code as XDP every
//! day; xdpqual does the same when the user says so, with `--type xdp` (every
//! such section) or `PROG.o:SECTION` (that one section). A section libbpf
//! knows as another type is never forced: its code was written for another
//! context and would read the wrong fields of `xdp_md`.

use serde::Serialize;

/// How the kernel attaches an XDP program: its `expected_attach_type`
/// (include/uapi/linux/bpf.h `enum bpf_attach_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpAttach {
    /// `BPF_XDP` (37): on an interface.
    Interface,
    /// `BPF_XDP_DEVMAP` (33): run by a devmap entry on redirect.
    Devmap,
    /// `BPF_XDP_CPUMAP` (35): run by a cpumap entry on the remote CPU.
    Cpumap,
}

impl XdpAttach {
    /// The UAPI `enum bpf_attach_type` value.
    pub fn uapi(self) -> u32 {
        match self {
            XdpAttach::Interface => 37,
            XdpAttach::Devmap => 33,
            XdpAttach::Cpumap => 35,
        }
    }

    /// From a section name the loader accepted as XDP: libbpf's
    /// `xdp/devmap`, `xdp.frags/devmap` (and cpumap) carry the map attach
    /// types, everything else is `BPF_XDP`.
    pub fn of_section(section: &str) -> XdpAttach {
        match section {
            "xdp/devmap" | "xdp.frags/devmap" => XdpAttach::Devmap,
            "xdp/cpumap" | "xdp.frags/cpumap" => XdpAttach::Cpumap,
            _ => XdpAttach::Interface,
        }
    }
}

/// What a code section's name declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionType {
    Xdp {
        frags: bool,
        attach: XdpAttach,
    },
    /// Another program type libbpf knows, by its `BPF_PROG_TYPE_*` suffix.
    Other(&'static str),
    /// No type libbpf 1.0 recognises.
    Unknown,
}

/// The program type the user gave (`--type`): only XDP is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgType {
    /// Load code sections whose name declares no type as XDP (bpftool's `type xdp`).
    Xdp,
}

impl ProgType {
    /// Every type `--type` accepts, by the name the user writes.
    pub const NAMES: &'static [&'static str] = &["xdp"];
}

impl std::str::FromStr for ProgType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "xdp" => Ok(ProgType::Xdp),
            other => Err(format!(
                "'{other}' is not a program type xdpqual runs; it runs XDP programs only (--type xdp)"
            )),
        }
    }
}

/// libbpf's non-XDP `section_defs` (libbpf 1.0 to 1.5): name, whether it
/// also matches `NAME/...` (a `+` entry), and the program type.
const OTHER_TYPES: &[(&str, bool, &str)] = &[
    ("socket", false, "socket_filter"),
    ("sk_reuseport/migrate", false, "sk_reuseport"),
    ("sk_reuseport", false, "sk_reuseport"),
    ("kprobe", true, "kprobe"),
    ("uprobe", true, "kprobe"),
    ("uprobe.s", true, "kprobe"),
    ("kretprobe", true, "kprobe"),
    ("uretprobe", true, "kprobe"),
    ("uretprobe.s", true, "kprobe"),
    ("kprobe.multi", true, "kprobe"),
    ("kretprobe.multi", true, "kprobe"),
    ("kprobe.session", true, "kprobe"),
    ("uprobe.multi", true, "kprobe"),
    ("uretprobe.multi", true, "kprobe"),
    ("uprobe.multi.s", true, "kprobe"),
    ("uretprobe.multi.s", true, "kprobe"),
    ("ksyscall", true, "kprobe"),
    ("kretsyscall", true, "kprobe"),
    ("usdt", true, "kprobe"),
    ("usdt.s", true, "kprobe"),
    ("tc/ingress", false, "sched_cls"),
    ("tc/egress", false, "sched_cls"),
    ("tcx/ingress", false, "sched_cls"),
    ("tcx/egress", false, "sched_cls"),
    ("tc", false, "sched_cls"),
    ("classifier", false, "sched_cls"),
    ("action", false, "sched_act"),
    ("netkit/primary", false, "sched_cls"),
    ("netkit/peer", false, "sched_cls"),
    ("tracepoint", true, "tracepoint"),
    ("tp", true, "tracepoint"),
    ("raw_tracepoint", true, "raw_tracepoint"),
    ("raw_tp", true, "raw_tracepoint"),
    ("raw_tracepoint.w", true, "raw_tracepoint_writable"),
    ("raw_tp.w", true, "raw_tracepoint_writable"),
    ("tp_btf", true, "tracing"),
    ("fentry", true, "tracing"),
    ("fmod_ret", true, "tracing"),
    ("fexit", true, "tracing"),
    ("fentry.s", true, "tracing"),
    ("fmod_ret.s", true, "tracing"),
    ("fexit.s", true, "tracing"),
    ("freplace", true, "ext"),
    ("lsm", true, "lsm"),
    ("lsm.s", true, "lsm"),
    ("lsm_cgroup", true, "lsm"),
    ("iter", true, "tracing"),
    ("iter.s", true, "tracing"),
    ("syscall", false, "syscall"),
    ("perf_event", false, "perf_event"),
    ("lwt_in", false, "lwt_in"),
    ("lwt_out", false, "lwt_out"),
    ("lwt_xmit", false, "lwt_xmit"),
    ("lwt_seg6local", false, "lwt_seg6local"),
    ("sockops", false, "sock_ops"),
    ("sk_skb/stream_parser", false, "sk_skb"),
    ("sk_skb/stream_verdict", false, "sk_skb"),
    ("sk_skb/verdict", false, "sk_skb"),
    ("sk_skb", false, "sk_skb"),
    ("sk_msg", false, "sk_msg"),
    ("lirc_mode2", false, "lirc_mode2"),
    ("flow_dissector", false, "flow_dissector"),
    ("cgroup_skb/ingress", false, "cgroup_skb"),
    ("cgroup_skb/egress", false, "cgroup_skb"),
    ("cgroup/skb", false, "cgroup_skb"),
    ("cgroup/sock_create", false, "cgroup_sock"),
    ("cgroup/sock_release", false, "cgroup_sock"),
    ("cgroup/sock", false, "cgroup_sock"),
    ("cgroup/post_bind4", false, "cgroup_sock"),
    ("cgroup/post_bind6", false, "cgroup_sock"),
    ("cgroup/bind4", false, "cgroup_sock_addr"),
    ("cgroup/bind6", false, "cgroup_sock_addr"),
    ("cgroup/connect4", false, "cgroup_sock_addr"),
    ("cgroup/connect6", false, "cgroup_sock_addr"),
    ("cgroup/connect_unix", false, "cgroup_sock_addr"),
    ("cgroup/sendmsg4", false, "cgroup_sock_addr"),
    ("cgroup/sendmsg6", false, "cgroup_sock_addr"),
    ("cgroup/sendmsg_unix", false, "cgroup_sock_addr"),
    ("cgroup/recvmsg4", false, "cgroup_sock_addr"),
    ("cgroup/recvmsg6", false, "cgroup_sock_addr"),
    ("cgroup/recvmsg_unix", false, "cgroup_sock_addr"),
    ("cgroup/getpeername4", false, "cgroup_sock_addr"),
    ("cgroup/getpeername6", false, "cgroup_sock_addr"),
    ("cgroup/getpeername_unix", false, "cgroup_sock_addr"),
    ("cgroup/getsockname4", false, "cgroup_sock_addr"),
    ("cgroup/getsockname6", false, "cgroup_sock_addr"),
    ("cgroup/getsockname_unix", false, "cgroup_sock_addr"),
    ("cgroup/sysctl", false, "cgroup_sysctl"),
    ("cgroup/getsockopt", false, "cgroup_sockopt"),
    ("cgroup/setsockopt", false, "cgroup_sockopt"),
    ("cgroup/dev", false, "cgroup_device"),
    ("struct_ops", true, "struct_ops"),
    ("struct_ops.s", true, "struct_ops"),
    ("sk_lookup", false, "sk_lookup"),
    ("netfilter", false, "netfilter"),
];

/// The type a section's name declares (see the module comment).
pub fn classify(name: &str) -> SectionType {
    match name {
        "xdp" => return SectionType::Xdp { frags: false, attach: XdpAttach::Interface },
        "xdp.frags" => return SectionType::Xdp { frags: true, attach: XdpAttach::Interface },
        "xdp/devmap" | "xdp/cpumap" => {
            return SectionType::Xdp { frags: false, attach: XdpAttach::of_section(name) }
        }
        "xdp.frags/devmap" | "xdp.frags/cpumap" => {
            return SectionType::Xdp { frags: true, attach: XdpAttach::of_section(name) }
        }
        _ if name.starts_with("xdp/") => {
            return SectionType::Xdp { frags: false, attach: XdpAttach::Interface }
        }
        _ => {}
    }
    for &(def, prefix, ty) in OTHER_TYPES {
        let matches = name == def
            || (prefix && name.strip_prefix(def).is_some_and(|rest| rest.starts_with('/')));
        if matches {
            return SectionType::Other(ty);
        }
    }
    SectionType::Unknown
}

/// What the user said about program types.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--type`: sections of unknown type are loaded as this.
    pub prog_type: Option<ProgType>,
    /// `PROG.o:SECTION`: the section (or function) the user chose. A section
    /// of unknown type that it names is loaded as XDP.
    pub select: Option<String>,
    /// List sections of unknown type instead of refusing the object
    /// (`inspect`).
    pub list_unknown: bool,
    /// The kernel BTF that CO-RE relocations are resolved against
    /// (`--btf FILE`; by default the running kernel's).
    pub target_btf: super::core::TargetBtf,
    /// `--map-size NAME=N`: `max_entries` set before any map is created.
    pub map_sizes: Vec<(String, u32)>,
    /// The target kernel's release and config, which `__kconfig` externs
    /// read (`LINUX_KERNEL_VERSION`, `CONFIG_*`).
    pub kconfig: super::externs::KernelConfig,
}

/// What the loader does with one code section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// XDP by its name; handed to aya-obj as `xdp` / `xdp.frags` (plus
    /// `/devmap`, `/cpumap`).
    Xdp,
    /// XDP because the user said so; handed to aya-obj as `xdp`.
    ForcedXdp,
    /// Not run: listed with its type.
    Other(&'static str),
    /// Not run: listed as of unknown type.
    ListedUnknown,
}

/// Why a selected program is not run, for the loader's error.
pub const UNKNOWN_HINT: &str = "unknown: pass --type xdp or PROG.o:SECTION";

/// How `inspect` describes the type an XDP program of `section` is loaded
/// as: libbpf's type and attach type, or that the user forced it.
pub fn xdp_label(section: &str, frags: bool) -> String {
    let attach = match XdpAttach::of_section(section) {
        XdpAttach::Interface => "BPF_XDP",
        XdpAttach::Devmap => "BPF_XDP_DEVMAP",
        XdpAttach::Cpumap => "BPF_XDP_CPUMAP",
    };
    let frags = if frags { ", frags" } else { "" };
    match classify(section) {
        SectionType::Unknown => "xdp (forced: --type xdp or named)".to_string(),
        _ => format!("xdp ({attach}{frags})"),
    }
}
