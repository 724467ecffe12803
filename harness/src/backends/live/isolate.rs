//! `--isolate`: a network namespace and a veth pair of our own for one run,
//! named so that a later run can tell they are ours (`xdpqual-<pid>-<n>`,
//! `xq<pid>_<n>a`/`xq<pid>_<n>b`), and removed afterwards on every path:
//! [`Sandbox`] removes them on drop (errors, panics, and SIGINT/SIGTERM,
//! which the live run turns into an error); after SIGKILL the next run finds
//! them by name and removes them ([`super::leftovers`]).
//!
//! IPv6 stays on, but quiet: the kernel's own chatter on a new link is the
//! duplicate-address-detection neighbour solicitation for the link-local
//! address it generates, the MLD report for that address's solicited-node
//! group, and router solicitations once the address is usable
//! (net/ipv6/addrconf.c addrconf_dad_begin / addrconf_dad_completed,
//! net/ipv6/mcast.c). `addr_gen_mode` = 1 ("none") generates no link-local
//! address, so none of the three happens, while `disable_ipv6` stays 0 and
//! the stack still receives the IPv6 frames the program passes (a program
//! under test sees the same IPv6 handling as on a real host). `accept_ra`,
//! `router_solicitations` and `accept_dad` are set to 0 as well, so nothing
//! else starts it. No IPv4 address is configured, so there is no ARP.
//! Whatever still shows up is recognised as foreign anyway.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Endpoint, LiveError};

/// Prefix of the namespaces we create.
pub const NETNS_PREFIX: &str = "xdpqual-";
/// Prefix of the interfaces we create.
pub const IFACE_PREFIX: &str = "xq";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        format!("running `ip` (iproute2), which --isolate uses to build its namespace: {e}")
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Our namespace and veth pair; removed on drop.
#[derive(Debug)]
pub struct Sandbox {
    pub netns: String,
    pub iface: String,
    pub peer: String,
    removed: bool,
}

/// The pid in a name we gave: `xdpqual-<pid>-<n>` or `xq<pid>_<n>[ab]`.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NETNS_PREFIX).or_else(|| name.strip_prefix(IFACE_PREFIX))?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let tail = &rest[digits.len()..];
    let well_formed = if name.starts_with(NETNS_PREFIX) {
        tail.strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    } else {
        tail.strip_prefix('_').is_some_and(|n| {
            n.len() >= 2
                && n[..n.len() - 1].bytes().all(|b| b.is_ascii_digit())
                && matches!(n.as_bytes()[n.len() - 1], b'a' | b'b')
        })
    };
    if digits.is_empty() || !well_formed {
        return None;
    }
    digits.parse().ok()
}

impl Sandbox {
    /// Creates `xdpqual-<pid>-<n>` with the veth pair `xq<pid>_<n>a` (where
    /// the program goes) and `xq<pid>_<n>b` (where frames come from) in it.
    pub fn create() -> Result<Sandbox, LiveError> {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let mut sb = Sandbox {
            netns: format!("{NETNS_PREFIX}{pid}-{n}"),
            iface: format!("{IFACE_PREFIX}{pid}_{n}a"),
            peer: format!("{IFACE_PREFIX}{pid}_{n}b"),
            removed: false,
        };
        if sb.iface.len() > 15 {
            return Err(LiveError::Other(format!("interface name {} is too long", sb.iface)));
        }
        let fail = |e: String| LiveError::Other(format!("--isolate: {e}"));
        ip(&["netns", "add", &sb.netns]).map_err(|e| {
            sb.removed = true;
            fail(e)
        })?;
        // From here on, dropping `sb` removes the namespace.
        let ns = sb.netns.clone();
        ip(&[
            "-n",
            &ns,
            "link",
            "add",
            &sb.iface,
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
            "type",
            "veth",
            "peer",
            "name",
            &sb.peer,
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
        ])
        .map_err(fail)?;
        for dev in [sb.iface.clone(), sb.peer.clone()] {
            let d = dev.clone();
            super::sys::in_netns(Some(&super::netns_path(&ns)), move || -> Result<(), String> {
                for (key, value) in [
                    ("addr_gen_mode", "1"),
                    ("accept_ra", "0"),
                    ("router_solicitations", "0"),
                    ("accept_dad", "0"),
                    ("disable_ipv6", "0"),
                ] {
                    // /proc/sys/net resolves in the opening thread's namespace.
                    let path = format!("/proc/sys/net/ipv6/conf/{d}/{key}");
                    std::fs::write(&path, value).map_err(|e| format!("writing {path}: {e}"))?;
                }
                Ok(())
            })
            .map_err(|errno| fail(format!("entering {ns}: {errno}")))?
            .map_err(fail)?;
            ip(&["-n", &ns, "link", "set", &dev, "mtu", "1500", "up"]).map_err(fail)?;
        }
        Ok(sb)
    }

    pub fn iface(&self) -> Endpoint {
        Endpoint::new(&self.iface, Some(&self.netns))
    }

    pub fn peer(&self) -> Endpoint {
        Endpoint::new(&self.peer, Some(&self.netns))
    }

    /// Deletes the pair and the namespace.
    pub fn remove(&mut self) -> Result<(), LiveError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        // Deleting one end deletes both; then the namespace. Sockets still
        // open in it would keep it alive, not the interfaces.
        let link = ip(&["-n", &self.netns, "link", "del", &self.iface]);
        let ns = ip(&["netns", "del", &self.netns]);
        ns.map_err(|e| LiveError::Other(format!("removing namespace {}: {e}", self.netns)))?;
        if let Err(e) = link {
            // Gone with the namespace anyway unless something else holds it.
            eprintln!("xdpqual: note: {e}");
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!(
                "xdpqual: warning: {e}; remove it with `ip netns del {}` (the next live run removes it too)",
                self.netns
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_names_carry_the_pid() {
        assert_eq!(owner_pid("xdpqual-1234-0"), Some(1234));
        assert_eq!(owner_pid("xq1234_7a"), Some(1234));
        assert_eq!(owner_pid("xq1234_17b"), Some(1234));
        // Not ours: other shapes that merely share a prefix.
        assert_eq!(owner_pid("xdpqual-"), None);
        assert_eq!(owner_pid("xdpqual-12"), None);
        assert_eq!(owner_pid("xq1234_7c"), None);
        assert_eq!(owner_pid("xqfoo"), None);
        assert_eq!(owner_pid("xq12a"), None);
        assert_eq!(owner_pid("eth0"), None);
    }
}
