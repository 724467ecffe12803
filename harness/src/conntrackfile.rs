//! The engine's conntrack table setup: the target kernel's `struct nf_conn`
//! layout, read from its BTF, and the connections a `--conntrack FILE`
//! puts in the table before the first packet.
//!
//! The file is JSON:
//!
//! ```json
//! {"connections": [
//!   {"proto": "tcp", "src": "10.0.0.1", "sport": 1234,
//!    "dst": "10.0.0.2", "dport": 80,
//!    "zone": 0, "status": 6, "mark": 7, "timeout_ms": 30000}
//! ]}
//! ```
//!
//! Each connection is given in its original direction; `proto` is `tcp` or
//! `udp` (the only protocols the kfuncs take); addresses are IPv4 or IPv6,
//! both of one family; `zone` (default 0) applies to both directions;
//! `status` (default 0) gets IPS_CONFIRMED added, as every connection in
//! the kernel's table has it; `mark` defaults to 0; `timeout_ms` counts
//! from the first packet that calls a conntrack kfunc.

use crate::engine::conntrack::{Layout, Seed, Setup, Tuple, Zone, IPPROTO_TCP, IPPROTO_UDP};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// The kfuncs that use the table.
pub const CONNTRACK_KFUNCS: &[&str] = &[
    "bpf_xdp_ct_lookup",
    "bpf_xdp_ct_alloc",
    "bpf_ct_insert_entry",
    "bpf_ct_release",
    "bpf_ct_set_timeout",
    "bpf_ct_change_timeout",
    "bpf_ct_set_status",
    "bpf_ct_change_status",
];

/// The default target BTF, as the loader's.
const HOST_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The setup for `obj`: `None` when it calls no conntrack kfunc and no file
/// is given. `btf` is the target kernel's BTF (the host's by default, as
/// the loader's `--btf`).
pub fn setup_for(
    obj: &crate::program::Object,
    btf: Option<&Path>,
    file: Option<&Path>,
) -> Result<Option<Arc<Setup>>> {
    let uses = obj.kfuncs.values().any(|n| CONNTRACK_KFUNCS.contains(&n.as_str()));
    if !uses && file.is_none() {
        return Ok(None);
    }
    let btf = btf.unwrap_or(Path::new(HOST_BTF));
    let layout = layout_from_btf(btf)?;
    let seeds = match file {
        Some(f) => load(f)?,
        None => Vec::new(),
    };
    Ok(Some(Arc::new(Setup { layout, seeds })))
}

/// `struct nf_conn`'s size and the modelled fields' offsets in `btf`.
pub fn layout_from_btf(btf: &Path) -> Result<Layout> {
    let bytes = std::fs::read(btf)
        .with_context(|| format!("reading the target kernel's BTF {}", btf.display()))?;
    let ctx = || {
        format!(
            "{}: the conntrack kfuncs need struct nf_conn from the target kernel's BTF",
            btf.display()
        )
    };
    let (size, members) = crate::loader::btf_types::struct_members(&bytes, "nf_conn")
        .map_err(|e| anyhow!(e))
        .with_context(ctx)?;
    let at = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, o)| *o);
    let need = |name: &str| at(name).ok_or_else(|| anyhow!("struct nf_conn has no member {name}"));
    let (status, timeout) = (need("status").with_context(ctx)?, need("timeout").with_context(ctx)?);
    // tuplehash[2] of struct nf_conntrack_tuple_hash { hnnode; tuple; }.
    let tuples = match at("tuplehash") {
        Some(th) => {
            let (hsize, hm) =
                crate::loader::btf_types::struct_members(&bytes, "nf_conntrack_tuple_hash")
                    .map_err(|e| anyhow!(e))
                    .with_context(ctx)?;
            let (tsize, _) = crate::loader::btf_types::struct_members(&bytes, "nf_conntrack_tuple")
                .map_err(|e| anyhow!(e))
                .with_context(ctx)?;
            let tuple = hm.iter().find(|(n, _)| n == "tuple").map(|(_, o)| *o);
            match tuple {
                Some(t) if tsize == crate::engine::conntrack::TUPLE_SIZE => {
                    Some([th + t, th + hsize + t])
                }
                _ => None,
            }
        }
        None => None,
    };
    let layout = Layout { size, status, timeout, mark: at("mark"), zone: at("zone"), tuples };
    layout.check().map_err(|e| anyhow!(e)).with_context(ctx)?;
    Ok(layout)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    connections: Vec<Conn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Conn {
    proto: String,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    #[serde(default)]
    zone: u16,
    #[serde(default)]
    status: u64,
    #[serde(default)]
    mark: u32,
    timeout_ms: u64,
}

/// Reads a `--conntrack` file.
pub fn load(path: &Path) -> Result<Vec<Seed>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the conntrack file {}", path.display()))?;
    parse(&text).with_context(|| format!("conntrack file {}", path.display()))
}

/// Parses a `--conntrack` file's text.
pub fn parse(text: &str) -> Result<Vec<Seed>> {
    let f: File = serde_json::from_str(text).map_err(|e| {
        anyhow!(
            "{e} (expected {{\"connections\": [{{\"proto\": \"tcp\", \"src\": ..., \"sport\": ..., \
             \"dst\": ..., \"dport\": ..., \"timeout_ms\": ...}}]}})"
        )
    })?;
    if f.connections.len() > crate::engine::conntrack::MAX_ENTRIES {
        bail!(
            "{} connections exceed the engine's table of {}",
            f.connections.len(),
            crate::engine::conntrack::MAX_ENTRIES
        );
    }
    let mut out: Vec<Seed> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, c) in f.connections.iter().enumerate() {
        let n = i + 1;
        let proto = match c.proto.as_str() {
            "tcp" => IPPROTO_TCP,
            "udp" => IPPROTO_UDP,
            p => bail!("connection {n}: proto {p:?} is neither \"tcp\" nor \"udp\""),
        };
        let (l3num, src, dst) = match (c.src, c.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
                a[..4].copy_from_slice(&s.octets());
                b[..4].copy_from_slice(&d.octets());
                (2, a, b)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => (10, s.octets(), d.octets()),
            _ => bail!("connection {n}: src and dst are of different address families"),
        };
        if c.status >> crate::engine::conntrack::IPS_MAX_BIT != 0 {
            bail!("connection {n}: status {:#x} has bits above the kernel's", c.status);
        }
        let tuple = Tuple {
            l3num,
            proto,
            src,
            dst,
            sport: c.sport.to_be_bytes(),
            dport: c.dport.to_be_bytes(),
        };
        // A connection is known by the tuple of either direction.
        if seen.contains(&(c.zone, tuple)) || seen.contains(&(c.zone, tuple.reversed())) {
            bail!("connection {n}: the same connection is given twice");
        }
        seen.insert((c.zone, tuple));
        out.push(Seed {
            tuple,
            zone: Zone { id: c.zone, dir: crate::engine::conntrack::ZONE_DIR_BOTH },
            status: c.status,
            mark: c.mark,
            timeout_ms: c.timeout_ms,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_connections_and_bad_ones_are_refused() {
        let s = parse(
            r#"{"connections": [{"proto": "udp", "src": "10.0.0.1", "sport": 53,
               "dst": "10.0.0.2", "dport": 5353, "mark": 9, "timeout_ms": 1000}]}"#,
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].tuple.proto, 17);
        assert_eq!(&s[0].tuple.src[..4], &[10, 0, 0, 1]);
        assert_eq!(s[0].tuple.sport, [0, 53]);
        assert_eq!(s[0].tuple.dport, [0x14, 0xe9]);
        assert_eq!(s[0].mark, 9);
        let e = parse(
            r#"{"connections": [{"proto": "icmp", "src": "10.0.0.1", "sport": 1,
               "dst": "10.0.0.2", "dport": 2, "timeout_ms": 1}]}"#,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("neither"), "{e:#}");
        let e = parse(
            r#"{"connections": [{"proto": "tcp", "src": "10.0.0.1", "sport": 1,
               "dst": "::1", "dport": 2, "timeout_ms": 1}]}"#,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("families"), "{e:#}");
        assert!(parse(r#"{"connections": [{"proto": "tcp"}]}"#).is_err());
    }

    #[test]
    fn the_host_layout_is_read_from_its_btf() {
        let p = Path::new(HOST_BTF);
        if !p.exists() {
            crate::util::skip(format_args!("{HOST_BTF} is absent"));
            return;
        }
        let bytes = std::fs::read(p).unwrap();
        if crate::loader::btf_types::struct_members(&bytes, "nf_conn").is_err() {
            crate::util::skip("the host kernel's BTF has no struct nf_conn (no nf_conntrack)");
            return;
        }
        let l = layout_from_btf(p).unwrap();
        // The layout's fields cross-checked member by member with
        // member_offset (layout_from_btf reads whole structs).
        let off = |s: &str, m: &str| crate::loader::btf_types::member_offset(&bytes, s, m).unwrap();
        assert_eq!(l.status, off("nf_conn", "status"));
        assert_eq!(l.timeout, off("nf_conn", "timeout"));
        let [t0, t1] = l.tuples.unwrap();
        assert_eq!(t0, off("nf_conn", "tuplehash") + off("nf_conntrack_tuple_hash", "tuple"));
        assert!(t1 > t0);
        assert!(l.size >= l.status + 8);
        println!("nf_conn layout: {l:?}");
    }
}
