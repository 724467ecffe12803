//! The host backend with `--fib`: a network namespace of our own built from
//! the FIB file, so that the kernel's `bpf_fib_lookup` answers from the same
//! interfaces, routes and neighbours as the engine's model
//! (`xdpqual_engine::fib`). BPF_PROG_TEST_RUN takes the receive device (the
//! ingress ifindex, or loopback) from the calling thread's namespace
//! (net/bpf/test_run.c xdp_convert_md_to_buff, bpf_prog_test_run_xdp), and
//! bpf_xdp_fib_lookup looks routes up in that device's namespace
//! (`dev_net(ctx->rxq->dev)`, net/core/filter.c); so the diff runs its
//! packets on a thread inside the namespace.
//!
//! What is built, with iproute2 as `--isolate` does, and only inside the
//! new namespace (`ip -n NAME ...`; the host's own interfaces and routes
//! are never touched):
//! - each interface as one end of a veth pair with the file's ifindex
//!   (`index`, IFLA_IFINDEX), MAC and MTU, up, and no IPv6 link-local
//!   address (`addr_gen_mode` 1), so that no interface has an address, as
//!   in the model; the other ends live in a second namespace of ours
//!   (`NAME-peers`), up, so the devices have a carrier and the FIB
//!   namespace holds no device the file does not name (not every kernel
//!   has the `dummy` driver; every one test-run needs has veth);
//! - `net.ipv4.conf.all.forwarding` and `net.ipv6.conf.all.forwarding` set
//!   to 1 (which sets every device, loopback included), then 0 on the
//!   devices whose `forwarding` is false;
//! - each route with its type, table and metric; gateways `onlink`, since
//!   no interface has an address to make them reachable;
//! - each neighbour as a permanent entry.
//!
//! Loopback stays down, so its 127.0.0.1 and ::1 are never configured and
//! the local table stays empty. The namespace is deleted on drop.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{anyhow, bail, Context, Result};

use crate::engine::fib::{Fib, RouteType};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace built from a FIB; deleted on drop.
#[derive(Debug)]
pub struct FibNamespace {
    pub name: String,
    /// A second namespace holding the veth peers, so that no device the
    /// file does not name exists in `name`.
    pub peers: String,
    removed: bool,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        anyhow!("running `ip` (iproute2), which builds the --fib namespace for the host: {e}")
    })?;
    if !out.status.success() {
        bail!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl FibNamespace {
    /// The namespace's file, for setns(2).
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Creates `xdpqual-fib<pid>-<n>` holding `fib`.
    pub fn create(fib: &Fib) -> Result<FibNamespace> {
        let name =
            format!("xdpqual-fib{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let peers = format!("{name}-peers");
        ip(&["netns", "add", &name])?;
        // From here on, dropping `ns` deletes the namespaces.
        let mut ns = FibNamespace { name, peers: peers.clone(), removed: false };
        if let Err(e) = ip(&["netns", "add", &peers]) {
            ns.peers.clear();
            return Err(e);
        }
        ns.populate(fib).with_context(|| format!("building namespace {} from the FIB", ns.name))?;
        Ok(ns)
    }

    fn sysctls(&self, writes: Vec<(String, &'static str)>) -> Result<()> {
        xdpqual_kernel::net::in_netns(Some(&self.path()), move || -> Result<()> {
            for (path, value) in writes {
                // /proc/sys/net resolves in the opening thread's namespace.
                std::fs::write(&path, value).with_context(|| format!("writing {path}"))?;
            }
            Ok(())
        })
        .map_err(|e| anyhow!("entering namespace {}: {e}", self.name))?
    }

    fn populate(&self, fib: &Fib) -> Result<()> {
        let n = self.name.as_str();
        for i in &fib.interfaces {
            let (index, mtu, addr) = (i.ifindex.to_string(), i.mtu.to_string(), mac(&i.mac));
            let peer = format!("p{}", i.ifindex);
            ip(&[
                "-n",
                n,
                "link",
                "add",
                "name",
                &i.name,
                "index",
                &index,
                "address",
                &addr,
                "mtu",
                &mtu,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
                "netns",
                &self.peers,
                "mtu",
                &mtu,
            ])?;
            self.sysctls(vec![(format!("/proc/sys/net/ipv6/conf/{}/addr_gen_mode", i.name), "1")])?;
            ip(&["-n", n, "link", "set", "dev", &i.name, "up"])?;
            // The peer up too, so the device has a carrier (a route through
            // a device without one is marked linkdown).
            ip(&["-n", &self.peers, "link", "set", "dev", &peer, "up"])?;
        }
        let mut writes = vec![
            ("/proc/sys/net/ipv4/conf/all/forwarding".to_string(), "1"),
            ("/proc/sys/net/ipv6/conf/all/forwarding".to_string(), "1"),
        ];
        for i in fib.interfaces.iter().filter(|i| !i.forwarding) {
            writes.push((format!("/proc/sys/net/ipv4/conf/{}/forwarding", i.name), "0"));
            writes.push((format!("/proc/sys/net/ipv6/conf/{}/forwarding", i.name), "0"));
        }
        self.sysctls(writes)?;
        let dev_name = |ifindex: u32| -> Result<&str> {
            fib.interfaces
                .iter()
                .find(|i| i.ifindex == ifindex)
                .map(|i| i.name.as_str())
                .ok_or_else(|| anyhow!("no interface with ifindex {ifindex}"))
        };
        if fib.routes.iter().any(|r| r.dst.is_ipv4() && r.gateway.is_some()) {
            // An `onlink` IPv4 gateway must be a unicast address in the
            // local table (net/ipv4/fib_semantics.c fib_check_nh_v4_gw,
            // inet_addr_type_dev_table), which only exists once something
            // was put in it: add a route there and take it out again, which
            // leaves the table, empty.
            let probe = ["-n", n, "-4", "route", "add", "unreachable", "203.0.113.255/32"];
            ip(&[&probe[..], &["table", "local"]].concat())?;
            let mut del = probe;
            del[4] = "del";
            ip(&[&del[..], &["table", "local"]].concat())?;
        }
        for r in &fib.routes {
            let family = if r.dst.is_ipv4() { "-4" } else { "-6" };
            let prefix = format!("{}/{}", r.dst, r.prefix_len);
            let (table, metric) = (r.table.to_string(), r.metric.to_string());
            let mut args: Vec<String> =
                vec!["-n".into(), n.into(), family.into(), "route".into(), "add".into()];
            if r.kind != RouteType::Unicast {
                args.push(r.kind.name().into());
            }
            args.push(prefix);
            if let Some(gw) = r.gateway {
                args.extend(["via".into(), gw.to_string()]);
            }
            if let Some(d) = r.dev {
                args.extend(["dev".into(), dev_name(d)?.to_string()]);
            }
            if r.gateway.is_some() {
                args.push("onlink".into());
            }
            args.extend(["table".into(), table, "metric".into(), metric]);
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            ip(&a)?;
        }
        for nb in &fib.neighbours {
            ip(&[
                "-n",
                n,
                "neigh",
                "add",
                &nb.ip.to_string(),
                "lladdr",
                &mac(&nb.mac),
                "dev",
                dev_name(nb.ifindex)?,
                "nud",
                "permanent",
            ])?;
        }
        Ok(())
    }

    /// Deletes the namespace (and with it its devices and routes).
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let main = ip(&["netns", "del", &self.name]);
        if !self.peers.is_empty() {
            ip(&["netns", "del", &self.peers])?;
        }
        main
    }
}

impl Drop for FibNamespace {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("xdpqual: warning: {e:#}; remove it with `ip netns del {}`", self.name);
        }
    }
}
