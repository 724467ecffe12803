//! Can this process load and test-run XDP programs in the host kernel?
//!
//! What the kernel checks (kernel/bpf/syscall.c, 6.x):
//! - `bpf_prog_load`: every program type other than socket filters and
//!   cgroup-skb needs `bpf_token_capable(token, CAP_BPF)`, and
//!   `is_net_admin_prog_type()` (which lists BPF_PROG_TYPE_XDP) additionally
//!   needs CAP_NET_ADMIN. Without a BPF token `bpf_token_capable(NULL, cap)`
//!   is `capable(cap) || (cap != CAP_SYS_ADMIN && capable(CAP_SYS_ADMIN))`,
//!   so CAP_SYS_ADMIN stands in for either (kernel/bpf/token.c).
//! - `map_create`: ARRAY/HASH/PROG_ARRAY/PERCPU_*/RINGBUF need nothing more
//!   unless `kernel.unprivileged_bpf_disabled` is set; LRU, LPM_TRIE,
//!   CPUMAP, QUEUE/STACK, BLOOM need CAP_BPF; DEVMAP/DEVMAP_HASH/XSKMAP need
//!   CAP_NET_ADMIN. Loading an XDP program already requires both.
//! - `bpf_prog_test_run`: no capability check of its own in 6.x (it was
//!   CAP_SYS_ADMIN before 5.8); holding the program's fd is enough.
//! - `bpf_obj_get_next_id` (used by the leak counter): `capable(CAP_SYS_ADMIN)`.
//! - `bpf_prog_get_info_by_fd`: without `bpf_capable()` the xlated and jited
//!   lengths read as 0.
//!
//! Capabilities are necessary but not sufficient: a user namespace, an LSM
//! or lockdown can still refuse, and the syscall may not exist at all. So
//! [`check`] also loads and runs a two-instruction program.

use crate::sys::{self, Errno};
use std::fmt;

/// A Linux capability by number (include/uapi/linux/capability.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    NetAdmin,
    NetRaw,
    SysAdmin,
    Bpf,
}

impl Capability {
    pub fn number(self) -> u32 {
        match self {
            Capability::NetAdmin => 12,
            Capability::NetRaw => 13,
            Capability::SysAdmin => 21,
            Capability::Bpf => 39,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::NetRaw => "CAP_NET_RAW",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
            Capability::Bpf => "CAP_BPF",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

/// Why the host-kernel backend cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error(
        "the host-kernel backend needs {missing} (or CAP_SYS_ADMIN (21)) to {purpose}; \
         this process's effective capability set lacks both (run as root, or grant it with \
         `setcap cap_bpf,cap_net_admin+ep` on the binary)"
    )]
    MissingCapability { missing: Capability, purpose: &'static str },
    #[error(
        "the kernel has no bpf(2) system call (ENOSYS): it was built without \
         CONFIG_BPF_SYSCALL, or a seccomp filter blocks it"
    )]
    NoBpfSyscall,
    #[error(
        "the kernel refused to {what} with {errno} although the capabilities are present: \
         a user namespace, a security module or kernel lockdown is denying BPF"
    )]
    Denied { what: &'static str, errno: Errno },
    #[error("could not read this process's capabilities with capget(2): {0}")]
    Capget(Errno),
    #[error("probing the kernel failed: {what} returned {errno}")]
    Probe { what: &'static str, errno: Errno },
    #[error(
        "probing the kernel failed: a program returning XDP_PASS (2) returned {retval} \
         under BPF_PROG_TEST_RUN"
    )]
    ProbeWrongResult { retval: u32 },
}

/// Whether the capability set `caps` (as [`crate::sys::effective_caps`]
/// returns it) holds `c`.
pub fn has(caps: u64, c: Capability) -> bool {
    caps & (1u64 << c.number()) != 0
}

/// Which capability is missing for loading XDP programs, given an
/// effective set; `None` when loading is allowed by capabilities.
pub fn missing_for_xdp(caps: u64) -> Option<Unavailable> {
    let sys_admin = has(caps, Capability::SysAdmin);
    if !has(caps, Capability::Bpf) && !sys_admin {
        return Some(Unavailable::MissingCapability {
            missing: Capability::Bpf,
            purpose: "load BPF programs (kernel/bpf/syscall.c bpf_prog_load)",
        });
    }
    if !has(caps, Capability::NetAdmin) && !sys_admin {
        return Some(Unavailable::MissingCapability {
            missing: Capability::NetAdmin,
            purpose: "load XDP programs (is_net_admin_prog_type in kernel/bpf/syscall.c)",
        });
    }
    None
}

/// Checks capabilities, then loads and test-runs `r0 = XDP_PASS; exit`.
pub fn check() -> Result<(), Unavailable> {
    let caps = sys::effective_caps().map_err(Unavailable::Capget)?;
    if let Some(why) = missing_for_xdp(caps) {
        return Err(why);
    }
    probe()
}

fn probe() -> Result<(), Unavailable> {
    use crate::isa::{opcode as op, Insn};
    let insns = [
        Insn::new(op::ALU64 | op::MOV | op::K, 0, 0, 0, 2),
        Insn::new(op::JMP | op::EXIT, 0, 0, 0, 0),
    ];
    let bytes = sys::encode_native(&insns);
    let spec = sys::ProgSpec {
        prog_type: super::prog::BPF_PROG_TYPE_XDP,
        expected_attach_type: super::prog::BPF_XDP,
        prog_flags: 0,
        insns: &bytes,
        license: c"GPL",
        name: "xdpqual_probe",
        log_level: 0,
        btf: None,
        attach: None,
    };
    let fd =
        sys::prog_load(&spec, &mut []).map_err(|f| classify("load an XDP program", f.errno))?;
    let frame = [0u8; 64];
    let out = sys::prog_test_run(
        &fd,
        sys::TestRunIn {
            data_in: &frame,
            data_out: None,
            ctx_in: None,
            ctx_out: None,
            repeat: 1,
            flags: 0,
            batch_size: 0,
        },
    )
    .map_err(|f| classify("test-run an XDP program", f.errno))?;
    if out.retval != 2 {
        return Err(Unavailable::ProbeWrongResult { retval: out.retval });
    }
    Ok(())
}

fn classify(what: &'static str, errno: Errno) -> Unavailable {
    match errno.0 {
        libc::ENOSYS => Unavailable::NoBpfSyscall,
        libc::EPERM | libc::EACCES => Unavailable::Denied { what, errno },
        _ => Unavailable::Probe { what, errno },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_capability() {
        let bpf = 1u64 << 39;
        let net = 1u64 << 12;
        let sys = 1u64 << 21;
        assert_eq!(missing_for_xdp(bpf | net), None);
        assert_eq!(missing_for_xdp(sys), None);
        assert!(matches!(
            missing_for_xdp(net),
            Some(Unavailable::MissingCapability { missing: Capability::Bpf, .. })
        ));
        assert!(matches!(
            missing_for_xdp(bpf),
            Some(Unavailable::MissingCapability { missing: Capability::NetAdmin, .. })
        ));
        let msg = missing_for_xdp(0).unwrap().to_string();
        assert!(msg.contains("CAP_BPF (39)"), "{msg}");
    }
}
