//! Backend `live:IFACE[:MODE]`: the program attached to a real interface,
//! the capture's frames sent into it from its peer, and what became of each
//! frame observed on the wire.
//!
//! - Attach: rtnetlink `IFLA_XDP` with the SKB, DRV or HW mode flag
//!   ([`netlink`]); for `hw` the program and its maps are created bound to
//!   the device (`prog_ifindex`/`map_ifindex`, [`offload`]), as offload needs.
//! - Inject: an AF_PACKET socket on the peer (the other end of a veth pair,
//!   or the link partner) sends each frame unchanged ([`observe`]).
//! - Observe: one frame is in flight at a time, so its position in the
//!   capture is its tag. In skb/drv mode an fexit probe on the program
//!   ([`probe`]) records the action of every run, exactly (DROP apart from
//!   ABORTED); the program is loaded with its BTF for that. Where the probe
//!   cannot attach (hw mode, a kernel that refuses tracing programs) the
//!   kernel's run counter (BPF_ENABLE_STATS `run_cnt`) fences each run, and
//!   the verdict is inferred from where the frame went ("tagging"): a packet
//!   socket on the interface sees it if it went to the stack (PASS: packet
//!   taps run after XDP), one on the peer if it was sent back (TX), neither
//!   if it was dropped, aborted or redirected elsewhere. The report says
//!   which method was used and why.
//! - Cleanup: an [`attach::Attachment`] detaches on drop (errors, panics),
//!   SIGINT/SIGTERM are turned into a flag the loop checks, and a program
//!   replaced with `--replace` is put back.
//!
//! `hw` on a device without offload reports the device, its driver, the
//! kernel and the kernel's refusal in words.

pub mod attach;
pub mod spec;
pub use spec::{LiveSpec, XdpMode};
pub mod foreign;
pub mod frames;
pub mod isolate;
pub mod leftovers;
pub mod netlink;
pub mod observe;
pub mod offload;
pub mod probe;
pub mod run;
/// The system calls this backend makes, all defined in the kernel layer
/// (crate `xdpqual-kernel`); gathered here under one name so the files of
/// the backend read the same whichever module of that crate a call is in.
mod sys {
    pub(crate) use xdpqual_kernel::cpu::pin_to_cpu;
    pub(crate) use xdpqual_kernel::net::*;
    pub(crate) use xdpqual_kernel::signal::InterruptGuard;
    pub(crate) use xdpqual_kernel::sys::{
        effective_caps, enable_run_stats, prog_fd_by_id, prog_load_xdp, prog_stats, Errno,
    };
}

use std::path::PathBuf;

pub use run::{run, LiveOptions, LiveReport};
pub use xdpqual_kernel::sys::Errno;

use super::kind::{BackendKind, Registration};
use super::Opened;

/// `live:IFACE[:MODE]`: runs the captures itself, after the diff's
/// per-packet pass (see `diff::live`).
pub const REGISTRATION: Registration = Registration {
    syntax: Some("live:IFACE[:skb|drv|hw]"),
    parse: |s| s.starts_with("live:").then(|| s.parse().map(BackendKind::Live)),
    open: |k, _| matches!(k, BackendKind::Live(_)).then_some(Ok(Opened::WholeRun)),
};

/// An interface, optionally in another network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub iface: String,
    /// A namespace file such as `/run/netns/NAME`; `None`: ours.
    pub netns: Option<PathBuf>,
}

impl Endpoint {
    pub fn new(iface: &str, netns: Option<&str>) -> Endpoint {
        Endpoint { iface: iface.to_string(), netns: netns.map(netns_path) }
    }
    fn describe(&self) -> String {
        match &self.netns {
            Some(p) => format!("{} (network namespace {})", self.iface, p.display()),
            None => self.iface.clone(),
        }
    }
}

/// `NAME` → `/run/netns/NAME` (where `ip netns add` puts it); a path is kept.
pub fn netns_path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/run/netns").join(name)
    }
}

/// Why a live run could not be done (as opposed to what it found).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("interface {iface} does not exist ({errno}); list interfaces with `ip link`{}", if iface.contains("namespace") { " inside that namespace" } else { "" })]
    NoSuchInterface { iface: String, errno: Errno },
    #[error("cannot enter network namespace {path}: {errno}")]
    Netns { path: String, errno: Errno },
    #[error(
        "the live backend needs {cap} to {purpose}; this process does not have it (run as root)"
    )]
    MissingPrivilege { cap: &'static str, purpose: &'static str },
    #[error("{iface} already runs XDP program id {prog_id} (`{name}`) in {mode} mode; refusing to replace it. Pass --replace to swap it out for the run (it is put back afterwards)")]
    Busy { iface: String, prog_id: u32, name: String, mode: XdpMode },
    #[error(
        "attaching to {iface} in {mode} mode failed (driver {driver}, kernel {kernel}): {err}"
    )]
    AttachRefused {
        iface: String,
        mode: XdpMode,
        driver: String,
        kernel: String,
        err: netlink::NlError,
    },
    #[error("{0}")]
    Offload(Box<offload::OffloadError>),
    #[error("{step} on {iface} failed: {errno}")]
    Io { step: String, iface: String, errno: Errno },
    #[error("netlink request about {iface} failed: {err}")]
    Netlink { iface: String, err: netlink::NlError },
    #[error("the host kernel backend is unavailable: {0}")]
    Host(String),
    #[error("the verifier of kernel {kernel} rejected `{program}`: {message}")]
    Rejected { kernel: String, program: String, message: String },
    #[error("interrupted; the program was detached from {iface}")]
    Interrupted { iface: String },
    #[error("{0}")]
    Other(String),
}

/// `--isolate`: runs the captures through `program` on a veth pair in a
/// namespace of our own ([`isolate::Sandbox`]), which is removed afterwards
/// whatever happens; `opts.iface` and `opts.peer` are replaced by its ends.
pub fn run_isolated(
    obj: &crate::program::Object,
    program: &crate::program::Program,
    captures: &[PathBuf],
    opts: &LiveOptions,
) -> Result<LiveReport, LiveError> {
    require_caps(true)?;
    // SIGINT/SIGTERM while the namespace is built are kept for later, so it
    // is removed, not left behind.
    let interrupt = sys::InterruptGuard::install(xdpqual_kernel::signal::SecondSignal::Deferred);
    let stale = leftovers::clean_stale(attach::detach_recorded);
    let mut sandbox = isolate::Sandbox::create()?;
    if interrupt.interrupted() {
        sandbox.remove()?;
        return Err(LiveError::Interrupted { iface: sandbox.iface.clone() });
    }
    let mut o = opts.clone();
    o.iface = sandbox.iface();
    o.peer = sandbox.peer();
    let result = run(obj, program, captures, &o);
    let removed = sandbox.remove();
    let mut report = result?;
    removed?;
    if interrupt.interrupted() {
        return Err(LiveError::Interrupted { iface: sandbox.iface.clone() });
    }
    report.notes.extend(stale.into_iter().map(|s| format!("cleanup of an earlier run: {s}")));
    report.notes.push(format!(
        "isolated: namespace {} with the veth pair {} / {} (IPv6 on, addr_gen_mode=1: no link-local address, so no DAD, MLD or router solicitations), removed after the run",
        sandbox.netns, sandbox.iface, sandbox.peer
    ));
    Ok(report)
}

/// The other end of the veth `iface`, where frames are sent from when no
/// peer is named (`xdpqual diff --backends live:IFACE`).
pub fn veth_peer(iface: &Endpoint) -> Result<Endpoint, LiveError> {
    let ifc = attach::Interface::resolve(iface)?;
    if ifc.driver() != "veth" {
        return Err(LiveError::Other(format!("{} is not a veth (driver {}), so its peer cannot be found; run `xdpqual live --peer IFACE` to name the interface frames are sent from", ifc.describe(), ifc.driver())));
    }
    let Some(peer) = ifc.peer_ifindex else {
        return Err(LiveError::Other(format!("the peer of the veth {} is in another network namespace; run `xdpqual live --peer IFACE --peer-netns NS` instead", ifc.describe())));
    };
    let name = sys::in_netns(iface.netns.as_deref(), || sys::if_name(peer))
        .map_err(|errno| LiveError::Netns {
            path: iface.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            errno,
        })?
        .map_err(|errno| LiveError::Io {
            step: format!("naming the peer (ifindex {peer})"),
            iface: ifc.describe(),
            errno,
        })?;
    Ok(Endpoint { iface: name, netns: iface.netns.clone() })
}

/// Capabilities the live backend itself needs beyond the host backend's.
fn require_caps(netns: bool) -> Result<(), LiveError> {
    use crate::backends::host::caps::{has as holds, Capability};
    let caps = sys::effective_caps()
        .map_err(|errno| LiveError::Other(format!("capget failed: {errno}")))?;
    let has = |c: Capability| holds(caps, c);
    if !has(Capability::NetAdmin) {
        return Err(LiveError::MissingPrivilege {
            cap: "CAP_NET_ADMIN",
            purpose: "attach XDP programs to an interface",
        });
    }
    if !has(Capability::NetRaw) {
        return Err(LiveError::MissingPrivilege {
            cap: "CAP_NET_RAW",
            purpose: "send and capture frames with packet sockets",
        });
    }
    if netns && !has(Capability::SysAdmin) {
        return Err(LiveError::MissingPrivilege {
            cap: "CAP_SYS_ADMIN",
            purpose: "enter another network namespace (setns)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backend_names() {
        assert_eq!(
            "live:veth0:skb".parse::<LiveSpec>(),
            Ok(LiveSpec { iface: "veth0".into(), mode: XdpMode::Skb })
        );
        assert_eq!("live:eth1".parse::<LiveSpec>().unwrap().mode, XdpMode::Drv);
        assert_eq!("live:ens1f0np0:hw".parse::<LiveSpec>().unwrap().mode, XdpMode::Hw);
        assert!("live:eth0:turbo".parse::<LiveSpec>().unwrap_err().contains("unknown XDP mode"));
        assert!("live:".parse::<LiveSpec>().is_err());
        assert!("host".parse::<LiveSpec>().is_err());
        assert!("live:averyveryverylongname".parse::<LiveSpec>().is_err());
    }

    #[test]
    fn netns_names_and_paths() {
        assert_eq!(netns_path("xq-a"), PathBuf::from("/run/netns/xq-a"));
        assert_eq!(netns_path("/proc/1/ns/net"), PathBuf::from("/proc/1/ns/net"));
    }
}
