//! `--fib FILE`: the forwarding table `bpf_fib_lookup` consults, as JSON.
//!
//! ```json
//! { "interfaces": [
//!     { "ifindex": 2, "name": "fwd0", "mtu": 1500, "mac": "02:00:00:00:00:02" },
//!     { "ifindex": 3, "name": "fwd1", "mtu": 1500, "mac": "02:00:00:00:00:03",
//!       "forwarding": false } ],
//!   "routes": [
//!     { "dst": "10.1.0.0/16", "dev": "fwd0" },
//!     { "dst": "0.0.0.0/0", "via": "192.0.2.1", "dev": "fwd1", "metric": 10 },
//!     { "dst": "2001:db8::/32", "dev": "fwd0", "table": 100 },
//!     { "dst": "10.66.0.0/16", "type": "blackhole" } ],
//!   "neighbours": [
//!     { "ip": "192.0.2.1", "mac": "02:00:00:00:00:99", "dev": "fwd1" } ] }
//! ```
//!
//! Interfaces have an ifindex (2 or more: 1 is loopback, which every
//! namespace has), a name, an MTU (1280..=65535, so IPv6 stays on) and a
//! MAC; `forwarding` (default true) is the device's IPv4 and IPv6
//! forwarding switch. Routes have a prefix (`dst`, host bits zero), a type
//! (`unicast`, the default, `blackhole`, `unreachable`, `prohibit`), for
//! unicast an output device (`dev`) and optionally a gateway (`via`, same
//! family), a `metric` and a `table` (default 254, main). One route per
//! prefix and table. Neighbours map an address on a device to a MAC.
//! Everything is checked before a packet runs; the error names the file
//! and the entry.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::engine::fib::{
    Fib, Interface, Neighbour, Route, RouteType, IPV6_DEFAULT_METRIC, LOOPBACK_IFINDEX, TABLE_MAIN,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FibFile {
    #[serde(default)]
    interfaces: Vec<IfaceSpec>,
    #[serde(default)]
    routes: Vec<RouteSpec>,
    #[serde(default)]
    neighbours: Vec<NeighSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IfaceSpec {
    ifindex: u32,
    name: String,
    #[serde(default = "default_mtu")]
    mtu: u32,
    mac: String,
    #[serde(default = "yes")]
    forwarding: bool,
}

fn default_mtu() -> u32 {
    1500
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    dst: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    dev: Option<String>,
    #[serde(default)]
    metric: Option<u32>,
    #[serde(default)]
    table: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NeighSpec {
    ip: String,
    mac: String,
    dev: String,
}

/// A FIB file, parsed and checked.
#[derive(Clone, Debug)]
pub struct FibSpec {
    pub path: PathBuf,
    pub fib: Fib,
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || anyhow!("'{s}' is not a MAC address (six hex bytes separated by ':')");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        bail!("'{s}' is a multicast MAC address; an interface or neighbour needs a unicast one");
    }
    Ok(mac)
}

fn parse_prefix(s: &str) -> Result<(IpAddr, u8)> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| anyhow!("'{s}' is not a prefix (ADDRESS/LENGTH, e.g. 10.0.0.0/8)"))?;
    let addr: IpAddr = a.parse().map_err(|_| anyhow!("'{a}' is not an IPv4 or IPv6 address"))?;
    let len: u8 = l.parse().map_err(|_| anyhow!("'{l}' is not a prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len > max {
        bail!("prefix length {len} is longer than {max}");
    }
    let host_bits_zero = match addr {
        IpAddr::V4(v) => len == 32 || u32::from(v) & (u32::MAX >> len) == 0,
        IpAddr::V6(v) => len == 128 || u128::from(v) & (u128::MAX >> len) == 0,
    };
    if !host_bits_zero {
        bail!("'{s}' has host bits set (the kernel refuses it: 'Invalid prefix for given prefix length')");
    }
    Ok((addr, len))
}

fn parse_addr(s: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| anyhow!("'{s}' is not an IPv4 or IPv6 address"))
}

impl FibSpec {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<FibSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading FIB file {}", path.display()))?;
        let fib = parse(&text).with_context(|| format!("FIB file {}", path.display()))?;
        Ok(FibSpec { path: path.to_path_buf(), fib })
    }
}

/// Parses and checks a FIB file's text.
pub fn parse(text: &str) -> Result<Fib> {
    let file: FibFile = serde_json::from_str(text).context("not a valid FIB file (JSON)")?;
    let mut fib = Fib::default();
    let mut names: BTreeMap<String, u32> = BTreeMap::new();
    for (i, s) in file.interfaces.iter().enumerate() {
        let at = || format!("interfaces[{i}] ('{}')", s.name);
        if s.ifindex <= LOOPBACK_IFINDEX || s.ifindex > i32::MAX as u32 {
            bail!(
                "{}: ifindex {} is out of range (2 ..= 2147483647; 1 is loopback, which every namespace has)",
                at(),
                s.ifindex
            );
        }
        if s.name.is_empty()
            || s.name.len() > 15
            || s.name == "lo"
            || s.name == "."
            || s.name == ".."
            || !s.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            bail!(
                "{}: '{}' is not a usable interface name (1-15 characters of letters, digits, '-', '_', '.'; not 'lo')",
                at(),
                s.name
            );
        }
        if !(1280..=65535).contains(&s.mtu) {
            bail!("{}: MTU {} is outside 1280 ..= 65535 (below 1280 the kernel turns IPv6 off on the device)", at(), s.mtu);
        }
        let mac = parse_mac(&s.mac).with_context(at)?;
        if mac == [0; 6] {
            bail!("{}: the all-zero MAC is not an interface address", at());
        }
        if fib.interfaces.iter().any(|x: &Interface| x.ifindex == s.ifindex) {
            bail!("{}: ifindex {} is given twice", at(), s.ifindex);
        }
        if names.insert(s.name.clone(), s.ifindex).is_some() {
            bail!("{}: interface name '{}' is given twice", at(), s.name);
        }
        fib.interfaces.push(Interface {
            ifindex: s.ifindex,
            name: s.name.clone(),
            mtu: s.mtu,
            mac,
            forwarding: s.forwarding,
        });
    }
    let dev_of = |name: &str| -> Result<u32> {
        names.get(name).copied().ok_or_else(|| {
            anyhow!(
                "interface '{name}' is not one of the file's interfaces ({})",
                names.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    };
    for (i, s) in file.routes.iter().enumerate() {
        let at = || format!("routes[{i}] ('{}')", s.dst);
        let (dst, prefix_len) = parse_prefix(&s.dst).with_context(at)?;
        let kind = match s.kind.as_deref().unwrap_or("unicast") {
            "unicast" => RouteType::Unicast,
            "blackhole" => RouteType::Blackhole,
            "unreachable" => RouteType::Unreachable,
            "prohibit" => RouteType::Prohibit,
            other => bail!(
                "{}: route type '{other}' is not one of unicast, blackhole, unreachable, prohibit",
                at()
            ),
        };
        let table = s.table.unwrap_or(TABLE_MAIN);
        if table == 0 || table == 255 || table > i32::MAX as u32 {
            bail!("{}: table {table} cannot be used (1 ..= 2147483647 except 255, local)", at());
        }
        let (gateway, dev) = if kind == RouteType::Unicast {
            let dev = s.dev.as_deref().ok_or_else(|| {
                anyhow!("{}: a unicast route needs an output device ('dev')", at())
            })?;
            let dev = dev_of(dev).with_context(at)?;
            let gw = s.via.as_deref().map(parse_addr).transpose().with_context(at)?;
            if let Some(g) = gw {
                if g.is_ipv4() != dst.is_ipv4() {
                    bail!("{}: gateway {g} is not of the route's address family", at());
                }
                if g.is_unspecified() || g.is_multicast() {
                    bail!("{}: gateway {g} is not a unicast address", at());
                }
            }
            (gw, Some(dev))
        } else {
            if s.via.is_some() || s.dev.is_some() {
                bail!("{}: a {} route takes no 'via' or 'dev'", at(), kind.name());
            }
            (None, None)
        };
        let metric = match (s.metric.unwrap_or(0), dst.is_ipv6()) {
            (0, true) => IPV6_DEFAULT_METRIC,
            (m, _) => m,
        };
        if let Some(j) = fib
            .routes
            .iter()
            .position(|r: &Route| r.table == table && r.dst == dst && r.prefix_len == prefix_len)
        {
            bail!(
                "{}: prefix {}/{prefix_len} is already routed in table {table} by routes[{j}]; the model has one route per prefix and table (no ECMP, no metric fallback)",
                at(),
                dst
            );
        }
        fib.routes.push(Route { table, dst, prefix_len, kind, gateway, dev, metric });
    }
    for (i, s) in file.neighbours.iter().enumerate() {
        let at = || format!("neighbours[{i}] ('{}' on '{}')", s.ip, s.dev);
        let ip = parse_addr(&s.ip).with_context(at)?;
        if ip.is_unspecified() || ip.is_multicast() {
            bail!("{}: {ip} is not a unicast address", at());
        }
        let mac = parse_mac(&s.mac).with_context(at)?;
        let ifindex = dev_of(&s.dev).with_context(at)?;
        if fib.neighbours.iter().any(|n: &Neighbour| n.ifindex == ifindex && n.ip == ip) {
            bail!("{}: {ip} on '{}' is given twice", at(), s.dev);
        }
        fib.neighbours.push(Neighbour { ifindex, ip, mac });
    }
    Ok(fib)
}

/// `ip -j ARGS` inside network namespace `netns`, parsed.
fn ip_json(netns: &str, args: &[&str]) -> Result<serde_json::Value> {
    let out = std::process::Command::new("ip")
        .args(["-j", "-n", netns])
        .args(args)
        .output()
        .map_err(|e| anyhow!("running `ip` (iproute2) to read namespace {netns}: {e}"))?;
    if !out.status.success() {
        bail!(
            "`ip -j -n {netns} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the output of `ip -j -n {netns} {}`", args.join(" ")))
}

/// `--fib-from-netns NAME`: a snapshot of an existing network namespace's
/// interfaces (Ethernet ones; loopback is implicit), routes (every table)
/// and valid neighbours, read with iproute2's JSON output and checked as a
/// FIB file is. What the model cannot hold is left out and said in the
/// returned notes (local-table routes, i.e. the namespace's own
/// addresses; IPv6 link-local and multicast routes, which bpf_fib_lookup
/// never uses), or refused (multipath routes, other route types,
/// interfaces whose IPv4 and IPv6 forwarding differ).
pub fn from_netns(netns: &str) -> Result<(Fib, Vec<String>)> {
    use serde_json::{json, Value};
    let ctx = || format!("snapshotting the FIB of network namespace {netns}");
    let mut notes = Vec::new();
    let links = ip_json(netns, &["link", "show"]).with_context(ctx)?;
    let mut interfaces = Vec::new();
    let path = PathBuf::from("/run/netns").join(netns);
    for l in links.as_array().into_iter().flatten() {
        let name = l["ifname"].as_str().unwrap_or_default().to_string();
        if l["link_type"] != "ether" {
            if l["link_type"] != "loopback" {
                notes.push(format!(
                    "interface {name} ({}) is not Ethernet: left out",
                    l["link_type"]
                ));
            }
            continue;
        }
        let n2 = name.clone();
        let fwd = xdpqual_kernel::net::in_netns(Some(&path), move || {
            let read = |f: &str| -> Result<bool> {
                let p = format!("/proc/sys/net/{f}/conf/{n2}/forwarding");
                let t = std::fs::read_to_string(&p).with_context(|| format!("reading {p}"))?;
                Ok(t.trim() != "0")
            };
            Ok::<_, anyhow::Error>((read("ipv4")?, read("ipv6")?))
        })
        .map_err(|e| anyhow!("entering namespace {netns}: {e}"))
        .with_context(ctx)??;
        if fwd.0 != fwd.1 {
            bail!(
                "{}: interface {name} forwards {} IPv4 and {} IPv6; the model has one switch per interface",
                ctx(),
                if fwd.0 { "" } else { "no" },
                if fwd.1 { "" } else { "no" }
            );
        }
        interfaces.push(json!({
            "ifindex": l["ifindex"], "name": name, "mtu": l["mtu"],
            "mac": l["address"], "forwarding": fwd.0,
        }));
    }
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let rs = ip_json(netns, &[family, "route", "show", "table", "all"]).with_context(ctx)?;
        for r in rs.as_array().into_iter().flatten() {
            let dst = match r["dst"].as_str().unwrap_or_default() {
                "default" if family == "-4" => "0.0.0.0/0".to_string(),
                "default" => "::/0".to_string(),
                d if d.contains('/') => d.to_string(),
                d if family == "-4" => format!("{d}/32"),
                d => format!("{d}/128"),
            };
            let kind = r["type"].as_str().unwrap_or("unicast");
            let table = match r["table"].as_str() {
                None | Some("main") => Some(254),
                Some("local") => None,
                Some("default") => Some(253),
                Some(t) => Some(t.parse::<u32>().map_err(|_| {
                    anyhow!("{}: route {dst} is in table '{t}', not a number", ctx())
                })?),
            };
            let v6_strict = family == "-6" && (dst.starts_with("fe80:") || dst.starts_with("ff"));
            if table.is_none() || v6_strict || matches!(kind, "multicast" | "broadcast" | "local") {
                notes.push(format!(
                    "route {kind} {dst} ({}) left out: the model has no local table or link-local routes",
                    r["table"].as_str().unwrap_or("main")
                ));
                continue;
            }
            if r.get("nexthops").is_some() {
                bail!("{}: route {dst} has several next hops; ECMP is not modelled", ctx());
            }
            if r.get("prefsrc").is_some() {
                notes.push(format!(
                    "route {dst}: its preferred source is not modelled (BPF_FIB_LOOKUP_SRC)"
                ));
            }
            let mut spec = json!({ "dst": dst, "type": kind, "table": table });
            if kind == "unicast" {
                spec["dev"] = r["dev"].clone();
                if let Some(g) = r.get("gateway") {
                    spec["via"] = g.clone();
                }
            }
            if let Some(m) = r.get("metric") {
                spec["metric"] = m.clone();
            }
            routes.push(spec);
        }
    }
    let names: Vec<Value> = interfaces.iter().map(|i| i["name"].clone()).collect();
    let mut neighbours = Vec::new();
    let ns = ip_json(netns, &["neigh", "show"]).with_context(ctx)?;
    for n in ns.as_array().into_iter().flatten() {
        let valid = n["state"].as_array().is_some_and(|s| {
            s.iter().any(|x| {
                matches!(
                    x.as_str(),
                    Some("PERMANENT" | "REACHABLE" | "STALE" | "DELAY" | "PROBE" | "NOARP")
                )
            })
        });
        if !valid || n.get("lladdr").is_none() || !names.contains(&n["dev"]) {
            continue;
        }
        neighbours.push(json!({ "ip": n["dst"], "mac": n["lladdr"], "dev": n["dev"] }));
    }
    let text = serde_json::to_string(
        &json!({ "interfaces": interfaces, "routes": routes, "neighbours": neighbours }),
    )?;
    let fib = parse(&text).with_context(ctx)?;
    Ok((fib, notes))
}

/// The FIB a command was given: `--fib FILE` or `--fib-from-netns NAME`
/// (notes about what a snapshot left out go to stderr).
pub fn from_args(file: Option<&Path>, netns: Option<&str>) -> Result<Option<std::sync::Arc<Fib>>> {
    match (file, netns) {
        (Some(_), Some(_)) => bail!("--fib and --fib-from-netns cannot be used together"),
        (Some(p), None) => Ok(Some(std::sync::Arc::new(FibSpec::load(p)?.fib))),
        (None, Some(n)) => {
            let (fib, notes) = from_netns(n)?;
            for note in notes {
                eprintln!("xdpqual: note: --fib-from-netns {n}: {note}");
            }
            Ok(Some(std::sync::Arc::new(fib)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    const IF: &str = r#""interfaces": [{"ifindex": 2, "name": "a", "mac": "02:00:00:00:00:02"}]"#;

    #[test]
    fn a_complete_file_parses() {
        let f = parse(&format!(
            r#"{{ {IF}, "routes": [
                {{"dst": "10.0.0.0/8", "via": "192.0.2.1", "dev": "a", "metric": 3}},
                {{"dst": "2001:db8::/32", "dev": "a"}},
                {{"dst": "10.66.0.0/16", "type": "prohibit", "table": 7}}],
              "neighbours": [{{"ip": "192.0.2.1", "mac": "02:00:00:00:00:99", "dev": "a"}}] }}"#
        ))
        .unwrap();
        assert_eq!(f.interfaces[0].mtu, 1500);
        assert!(f.interfaces[0].forwarding);
        assert_eq!(f.routes[0].metric, 3);
        assert_eq!(f.routes[1].metric, 1024, "IPv6 metric 0 is stored as 1024");
        assert_eq!(f.routes[2].table, 7);
        assert_eq!(f.neighbours[0].mac, [2, 0, 0, 0, 0, 0x99]);
    }

    #[test]
    fn bad_entries_are_named() {
        let e = err(&format!(
            r#"{{ {IF}, "routes": [{{"dst": "10.0.0.0/8", "dev": "a"}}, {{"dst": "10.0.0.0/8", "type": "blackhole"}}] }}"#
        ));
        assert!(e.contains("routes[1]") && e.contains("routes[0]"), "{e}");
        let e = err(&format!(r#"{{ {IF}, "routes": [{{"dst": "10.0.0.1/8", "dev": "a"}}] }}"#));
        assert!(e.contains("host bits"), "{e}");
        let e = err(&format!(r#"{{ {IF}, "routes": [{{"dst": "10.0.0.0/8", "dev": "b"}}] }}"#));
        assert!(e.contains("routes[0]") && e.contains("'b'"), "{e}");
        let e = err(r#"{"interfaces": [{"ifindex": 2, "name": "a", "mac": "02:00:00:00:00"}]}"#);
        assert!(e.contains("interfaces[0]") && e.contains("MAC"), "{e}");
        let e = err(r#"{"interfaces": [{"ifindex": 1, "name": "a", "mac": "02:00:00:00:00:01"}]}"#);
        assert!(e.contains("loopback"), "{e}");
        let e = err(&format!(
            r#"{{ {IF}, "neighbours": [{{"ip": "1.2.3.4", "mac": "zz:00:00:00:00:01", "dev": "a"}}] }}"#
        ));
        assert!(e.contains("neighbours[0]"), "{e}");
        let e = err(r#"{"routes": [ {"dst": "1.0.0.0/8"} "#);
        assert!(e.contains("line 1"), "{e}");
        let e = err(r#"{"route": []}"#);
        assert!(e.contains("unknown field"), "{e}");
    }
}
