//! A modelled forwarding table for `bpf_fib_lookup` (helper 69): network
//! interfaces, IPv4 and IPv6 routes and neighbours, and the lookup the
//! kernel does for XDP programs in net/core/filter.c (`bpf_xdp_fib_lookup`,
//! `bpf_ipv4_fib_lookup`, `bpf_ipv6_fib_lookup`, `bpf_fib_set_fwd_params`),
//! with `struct bpf_fib_lookup` laid out as include/uapi/linux/bpf.h has it.
//!
//! What the model is: the state of a network namespace whose interfaces
//! carry no IP addresses (so the local table is empty and no preferred
//! source address can be derived), with one route per prefix and table (no
//! ECMP, no policy rules beyond the kernel's default local/main/default
//! ones, no route MTU, no lightweight tunnels, no VRFs) and permanent
//! neighbours. The harness builds exactly such a namespace from the same
//! file for the host backend, so the kernel answers the same question.
//!
//! The engine fills this from nothing itself (it reads no files); the
//! harness parses and validates the FIB file (`harness/src/fibfile.rs`).

use std::net::IpAddr;

/// `sizeof(struct bpf_fib_lookup)` (include/uapi/linux/bpf.h).
pub const PARAMS_SIZE: usize = 64;

/// `BPF_FIB_LOOKUP_*` flags (include/uapi/linux/bpf.h, 6.18).
pub const LOOKUP_DIRECT: u32 = 1 << 0;
pub const LOOKUP_OUTPUT: u32 = 1 << 1;
pub const LOOKUP_SKIP_NEIGH: u32 = 1 << 2;
pub const LOOKUP_TBID: u32 = 1 << 3;
pub const LOOKUP_SRC: u32 = 1 << 4;
pub const LOOKUP_MARK: u32 = 1 << 5;
/// Every flag `bpf_xdp_fib_lookup` accepts; any other bit is -EINVAL.
pub const LOOKUP_KNOWN: u32 =
    LOOKUP_DIRECT | LOOKUP_OUTPUT | LOOKUP_SKIP_NEIGH | LOOKUP_TBID | LOOKUP_SRC | LOOKUP_MARK;

/// `BPF_FIB_LKUP_RET_*` (include/uapi/linux/bpf.h).
pub const RET_SUCCESS: i64 = 0;
pub const RET_BLACKHOLE: i64 = 1;
pub const RET_UNREACHABLE: i64 = 2;
pub const RET_PROHIBIT: i64 = 3;
pub const RET_NOT_FWDED: i64 = 4;
pub const RET_FWD_DISABLED: i64 = 5;
pub const RET_NO_NEIGH: i64 = 7;
pub const RET_FRAG_NEEDED: i64 = 8;
pub const RET_NO_SRC_ADDR: i64 = 9;

const EINVAL: i64 = 22;
const ENODEV: i64 = 19;
const EAFNOSUPPORT: i64 = 97;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// `RT_TABLE_DEFAULT`, `RT_TABLE_MAIN`, `RT_TABLE_LOCAL`
/// (include/uapi/linux/rtnetlink.h).
pub const TABLE_DEFAULT: u32 = 253;
pub const TABLE_MAIN: u32 = 254;
pub const TABLE_LOCAL: u32 = 255;

/// The loopback device every namespace has: ifindex 1, MTU 65536
/// (drivers/net/loopback.c loopback_setup), an all-zero address.
pub const LOOPBACK_IFINDEX: u32 = 1;
pub const LOOPBACK_MTU: u32 = 65536;

/// `IP6_RT_PRIO_USER` (include/net/ip6_route.h): the metric an IPv6 route
/// gets when none (or 0) is given (net/ipv6/route.c ip6_route_info_create).
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// Byte offsets in `struct bpf_fib_lookup`.
mod off {
    pub(super) const FAMILY: usize = 0;
    pub(super) const TOT_LEN: usize = 6; // union with mtu_result
    pub(super) const IFINDEX: usize = 8;
    pub(super) const RT_METRIC: usize = 12; // union with tos / flowinfo
    pub(super) const SRC: usize = 16;
    pub(super) const DST: usize = 32;
    pub(super) const VLAN_PROTO: usize = 48; // with VLAN_TCI: union with tbid
    pub(super) const VLAN_TCI: usize = 50;
    pub(super) const TBID: usize = 48;
    pub(super) const SMAC: usize = 52;
    pub(super) const DMAC: usize = 58;
}

/// The fields of `struct bpf_fib_lookup` that are host-order integers
/// (include/uapi/linux/bpf.h: `tot_len`/`mtu_result`, `ifindex`,
/// `rt_metric`, `tbid`), as (offset, size); every other field is bytes or
/// network order. The model reads and writes them little-endian (the
/// helper reverses them around a big-endian program's lookup). `tos` and
/// `flowinfo` share `rt_metric`'s bytes but are never read by the model;
/// `h_vlan_proto`/`h_vlan_TCI` share `tbid`'s and are only written, with 0.
pub const HOST_ORDER_FIELDS: [(usize, usize); 4] =
    [(off::TOT_LEN, 2), (off::IFINDEX, 4), (off::RT_METRIC, 4), (off::TBID, 4)];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub ifindex: u32,
    pub name: String,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// IPv4 and IPv6 forwarding on this device (`net.ipv4.conf.DEV.forwarding`,
    /// `net.ipv6.conf.DEV.forwarding`).
    pub forwarding: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteType {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteType {
    pub fn name(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Routing table id (254, main, unless given).
    pub table: u32,
    /// The prefix, with its host bits zero.
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub kind: RouteType,
    /// Next hop; `None` for a directly connected route or a reject route.
    pub gateway: Option<IpAddr>,
    /// Output device, for unicast routes.
    pub dev: Option<u32>,
    /// As the kernel stores it (IPv6: 0 is stored as 1024).
    pub metric: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub mac: [u8; 6],
}

/// Interfaces (loopback is implicit), routes and neighbours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fib {
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    pub neighbours: Vec<Neighbour>,
}

/// Whether `addr` lies in `prefix/len` (same family).
pub fn prefix_contains(prefix: IpAddr, len: u8, addr: IpAddr) -> bool {
    match (prefix, addr) {
        (IpAddr::V4(p), IpAddr::V4(a)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
            u32::from(p) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(a)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len.min(128)) };
            u128::from(p) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The device a lookup found, as far as the result needs it.
struct Dev {
    ifindex: u32,
    mtu: u32,
    mac: [u8; 6],
    forwarding: bool,
}

fn rd_u16(p: &[u8; PARAMS_SIZE], at: usize) -> u16 {
    u16::from_le_bytes([p[at], p[at + 1]])
}
fn rd_u32(p: &[u8; PARAMS_SIZE], at: usize) -> u32 {
    u32::from_le_bytes(p[at..at + 4].try_into().expect("4 bytes"))
}
fn wr_u16(p: &mut [u8; PARAMS_SIZE], at: usize, v: u16) {
    p[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn wr_u32(p: &mut [u8; PARAMS_SIZE], at: usize, v: u32) {
    p[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn rd_addr(p: &[u8; PARAMS_SIZE], at: usize, v6: bool) -> IpAddr {
    if v6 {
        let b: [u8; 16] = p[at..at + 16].try_into().expect("16 bytes");
        IpAddr::from(b)
    } else {
        let b: [u8; 4] = p[at..at + 4].try_into().expect("4 bytes");
        IpAddr::from(b)
    }
}
fn wr_addr(p: &mut [u8; PARAMS_SIZE], at: usize, a: IpAddr) {
    match a {
        IpAddr::V4(a) => p[at..at + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => p[at..at + 16].copy_from_slice(&a.octets()),
    }
}

impl Fib {
    fn dev(&self, ifindex: u32) -> Option<Dev> {
        if ifindex == LOOPBACK_IFINDEX {
            // `net.ipv{4,6}.conf.all.forwarding=1` in the namespace the
            // harness builds sets it on loopback as well.
            return Some(Dev { ifindex, mtu: LOOPBACK_MTU, mac: [0; 6], forwarding: true });
        }
        self.interfaces.iter().find(|i| i.ifindex == ifindex).map(|i| Dev {
            ifindex,
            mtu: i.mtu,
            mac: i.mac,
            forwarding: i.forwarding,
        })
    }

    /// The route the kernel would pick in `tables` (tried in order, as the
    /// default fib rules try local, main, default; a table without a match
    /// passes on to the next, fib_rules.c / fib6_rules.c). Within a table,
    /// longest prefix first. A reject route matches whatever the output
    /// device (net/ipv4/fib_trie.c fib_table_lookup returns
    /// `fib_props[type].error` before it looks at next hops); for IPv4 a
    /// unicast route whose device is not the requested output device is
    /// passed over and shorter prefixes are tried (`fib_lookup_good_nhc`
    /// with `flowi4_oif`). IPv6 only ranks next hops by the output device
    /// (net/ipv6/route.c rt6_score_route without RT6_LOOKUP_F_IFACE), which
    /// with one route per prefix never changes the result.
    fn select(&self, tables: &[u32], dst: IpAddr, oif: Option<u32>) -> Option<&Route> {
        for &t in tables {
            let mut candidates: Vec<&Route> = self
                .routes
                .iter()
                .filter(|r| r.table == t && prefix_contains(r.dst, r.prefix_len, dst))
                .collect();
            candidates.sort_by_key(|r| std::cmp::Reverse(r.prefix_len));
            for r in candidates {
                if r.kind != RouteType::Unicast {
                    return Some(r);
                }
                if let Some(o) = oif {
                    if r.dev != Some(o) {
                        continue;
                    }
                }
                return Some(r);
            }
        }
        None
    }

    fn neighbour(&self, ifindex: u32, ip: IpAddr) -> Option<[u8; 6]> {
        self.neighbours.iter().find(|n| n.ifindex == ifindex && n.ip == ip).map(|n| n.mac)
    }

    /// `bpf_fib_lookup(ctx, params, plen, flags)` for XDP: `p` is the
    /// program's `struct bpf_fib_lookup`, updated in place exactly where
    /// the kernel writes it; the return value is the helper's (negative
    /// errno or `BPF_FIB_LKUP_RET_*`).
    pub fn lookup(&self, p: &mut [u8; PARAMS_SIZE], plen: i32, flags: u32) -> i64 {
        // net/core/filter.c bpf_xdp_fib_lookup: size, then flags, then family.
        if plen < PARAMS_SIZE as i32 {
            return -EINVAL;
        }
        if flags & !LOOKUP_KNOWN != 0 {
            return -EINVAL;
        }
        match p[off::FAMILY] {
            AF_INET => self.lookup_family(p, flags, false),
            AF_INET6 => self.lookup_family(p, flags, true),
            _ => -EAFNOSUPPORT,
        }
    }

    /// bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup (net/core/filter.c), with
    /// `check_mtu` true as bpf_xdp_fib_lookup passes it.
    fn lookup_family(&self, p: &mut [u8; PARAMS_SIZE], flags: u32, v6: bool) -> i64 {
        let src = rd_addr(p, off::SRC, v6);
        let dst = rd_addr(p, off::DST, v6);
        // IPv6 only: link-local, multicast and loopback addresses (either
        // end) are never forwarded (`rt6_need_strict`), checked first.
        if v6 {
            let strict = |a: IpAddr| match a {
                IpAddr::V6(a) => {
                    a.is_multicast() || a.is_loopback() || (a.segments()[0] & 0xffc0) == 0xfe80
                }
                IpAddr::V4(_) => false,
            };
            if strict(dst) || strict(src) {
                return RET_NOT_FWDED;
            }
        }
        let ifindex = rd_u32(p, off::IFINDEX);
        let Some(in_dev) = self.dev(ifindex) else { return -ENODEV };
        // `IN_DEV_FORWARD(in_dev)` / `idev->cnf.forwarding` of the device
        // named in params->ifindex.
        if !in_dev.forwarding {
            return RET_FWD_DISABLED;
        }
        let tables: Vec<u32> = if flags & LOOKUP_DIRECT != 0 {
            // No l3mdev (VRF) in the model: the main table, or params->tbid
            // with TBID, which the kernel zeroes afterwards (it shares the
            // bytes with the VLAN output fields). fib_get_table and
            // fib6_get_table take table 0 as main.
            let mut tbid = TABLE_MAIN;
            if flags & LOOKUP_TBID != 0 {
                tbid = rd_u32(p, off::TBID);
                wr_u32(p, off::TBID, 0);
                if tbid == 0 {
                    tbid = TABLE_MAIN;
                }
            }
            vec![tbid]
        } else {
            // The default rules (local, main, default). The model has no
            // rules on marks, so BPF_FIB_LOOKUP_MARK changes nothing.
            vec![TABLE_LOCAL, TABLE_MAIN, TABLE_DEFAULT]
        };
        // BPF_FIB_LOOKUP_OUTPUT makes params->ifindex the output device
        // (`flowi4_oif`), which restricts IPv4 next hops.
        let oif = (!v6 && flags & LOOKUP_OUTPUT != 0).then_some(ifindex);
        let Some(route) = self.select(&tables, dst, oif) else {
            return RET_NOT_FWDED;
        };
        // IPv4 maps fib_table_lookup's errors (-EINVAL, -EHOSTUNREACH,
        // -EACCES, fib_props in net/ipv4/fib_semantics.c) and IPv6 switches
        // on `fib6_type`: the same three codes.
        match route.kind {
            RouteType::Unicast => {}
            RouteType::Blackhole => return RET_BLACKHOLE,
            RouteType::Unreachable => return RET_UNREACHABLE,
            RouteType::Prohibit => return RET_PROHIBIT,
        }
        let Some(out) = route.dev.and_then(|d| self.dev(d)) else {
            // A validated FIB gives every unicast route a device.
            return RET_NOT_FWDED;
        };
        // ip_mtu_from_fib_result / ip6_mtu_from_fib6: the output device's
        // MTU (no route MTU, no PMTU exceptions in the model).
        let mtu = out.mtu.min(0xffff);
        if u32::from(rd_u16(p, off::TOT_LEN)) > mtu {
            wr_u16(p, off::TOT_LEN, mtu as u16); // mtu_result
            return RET_FRAG_NEEDED;
        }
        // IPv6 rewrites the destination to the gateway before it fills the
        // metric and device; IPv4 after. Either way all three are written
        // before the neighbour lookup can fail.
        wr_u32(p, off::RT_METRIC, route.metric);
        wr_u32(p, off::IFINDEX, out.ifindex);
        if let Some(gw) = route.gateway {
            wr_addr(p, off::DST, gw);
        }
        if flags & LOOKUP_SRC != 0 {
            if v6 {
                // No address to choose (ipv6_dev_get_saddr fails) and no
                // route prefsrc: the dst/metric/ifindex writes stay.
                return RET_NO_SRC_ADDR;
            }
            // fib_result_prefsrc: no prefsrc, no address in the namespace.
            wr_addr(p, off::SRC, IpAddr::from([0u8; 4]));
        }
        if flags & LOOKUP_SKIP_NEIGH == 0 {
            let nh = rd_addr(p, off::DST, v6);
            let Some(mac) = self.neighbour(out.ifindex, nh) else {
                return RET_NO_NEIGH;
            };
            p[off::DMAC..off::DMAC + 6].copy_from_slice(&mac);
            p[off::SMAC..off::SMAC + 6].copy_from_slice(&out.mac);
        }
        // bpf_fib_set_fwd_params: no VLAN, and mtu_result (the mtu is
        // always non-zero here).
        wr_u16(p, off::VLAN_TCI, 0);
        wr_u16(p, off::VLAN_PROTO, 0);
        wr_u16(p, off::TOT_LEN, mtu as u16);
        RET_SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MAC2: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const MAC3: [u8; 6] = [2, 0, 0, 0, 0, 3];
    const GWMAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];

    fn fib() -> Fib {
        let v4 = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().unwrap());
        let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
        let route = |dst, len, kind, gateway, dev, metric| Route {
            table: TABLE_MAIN,
            dst,
            prefix_len: len,
            kind,
            gateway,
            dev,
            metric,
        };
        Fib {
            interfaces: vec![
                Interface { ifindex: 2, name: "a".into(), mtu: 1500, mac: MAC2, forwarding: true },
                Interface { ifindex: 3, name: "b".into(), mtu: 9000, mac: MAC3, forwarding: false },
            ],
            routes: vec![
                route(v4("10.0.0.0"), 8, RouteType::Unicast, Some(v4("192.0.2.1")), Some(2), 5),
                route(v4("10.1.0.0"), 16, RouteType::Unicast, None, Some(3), 7),
                route(v4("10.66.0.0"), 16, RouteType::Blackhole, None, None, 0),
                route(v6("2001:db8::"), 32, RouteType::Unicast, None, Some(2), 1024),
            ],
            neighbours: vec![Neighbour { ifindex: 2, ip: v4("192.0.2.1"), mac: GWMAC }],
        }
    }

    fn params4(ifindex: u32, dst: [u8; 4], tot_len: u16) -> [u8; PARAMS_SIZE] {
        let mut p = [0u8; PARAMS_SIZE];
        p[0] = AF_INET;
        wr_u16(&mut p, off::TOT_LEN, tot_len);
        wr_u32(&mut p, off::IFINDEX, ifindex);
        p[off::DST..off::DST + 4].copy_from_slice(&dst);
        p[off::VLAN_PROTO] = 0xaa;
        p
    }

    #[test]
    fn forwards_through_a_gateway_and_fills_every_field() {
        let mut p = params4(2, [10, 9, 8, 7], 100);
        assert_eq!(fib().lookup(&mut p, 64, 0), RET_SUCCESS);
        assert_eq!(rd_u32(&p, off::IFINDEX), 2);
        assert_eq!(rd_u32(&p, off::RT_METRIC), 5);
        assert_eq!(&p[off::DST..off::DST + 4], &[192, 0, 2, 1]);
        assert_eq!(&p[off::DMAC..off::DMAC + 6], &GWMAC);
        assert_eq!(&p[off::SMAC..off::SMAC + 6], &MAC2);
        assert_eq!(rd_u16(&p, off::TOT_LEN), 1500, "mtu_result");
        assert_eq!(rd_u32(&p, off::TBID), 0, "VLAN fields cleared");
    }

    #[test]
    fn each_return_code_writes_what_the_kernel_writes() {
        let f = fib();
        // Longest prefix 10.1/16 on device 3: no neighbour for 10.1.2.3.
        let mut p = params4(2, [10, 1, 2, 3], 100);
        assert_eq!(f.lookup(&mut p, 64, 0), RET_NO_NEIGH);
        assert_eq!(rd_u32(&p, off::IFINDEX), 3);
        assert_eq!(rd_u32(&p, off::RT_METRIC), 7);
        assert_eq!(rd_u16(&p, off::TOT_LEN), 100, "mtu_result not written");
        assert_eq!(p[off::VLAN_PROTO], 0xaa, "VLAN fields not written");
        // SKIP_NEIGH succeeds with no MACs.
        let mut p = params4(2, [10, 1, 2, 3], 100);
        assert_eq!(f.lookup(&mut p, 64, LOOKUP_SKIP_NEIGH), RET_SUCCESS);
        assert_eq!(&p[off::SMAC..], &[0u8; 12]);
        assert_eq!(rd_u16(&p, off::TOT_LEN), 9000);
        // Too big for device 2's 1500: mtu_result only.
        let mut p = params4(2, [10, 9, 8, 7], 1501);
        assert_eq!(f.lookup(&mut p, 64, 0), RET_FRAG_NEEDED);
        assert_eq!(rd_u16(&p, off::TOT_LEN), 1500);
        assert_eq!(rd_u32(&p, off::IFINDEX), 2);
        assert_eq!(rd_u32(&p, off::RT_METRIC), 0);
        let mut p = params4(2, [10, 66, 1, 1], 100);
        assert_eq!(f.lookup(&mut p, 64, 0), RET_BLACKHOLE);
        let mut p = params4(2, [11, 0, 0, 1], 100);
        assert_eq!(f.lookup(&mut p, 64, 0), RET_NOT_FWDED);
        // Ingress device 3 has forwarding off; 9 does not exist.
        let mut p = params4(3, [10, 9, 8, 7], 100);
        assert_eq!(f.lookup(&mut p, 64, 0), RET_FWD_DISABLED);
        let mut p = params4(9, [10, 9, 8, 7], 100);
        assert_eq!(f.lookup(&mut p, 64, 0), -ENODEV);
        // Loopback exists and forwards.
        let mut p = params4(1, [10, 9, 8, 7], 100);
        assert_eq!(f.lookup(&mut p, 64, 0), RET_SUCCESS);
    }

    #[test]
    fn arguments_are_checked_in_the_kernels_order() {
        let f = fib();
        let mut p = params4(2, [10, 9, 8, 7], 100);
        let before = p;
        assert_eq!(f.lookup(&mut p, 63, 0), -EINVAL);
        assert_eq!(f.lookup(&mut p, 64, 1 << 6), -EINVAL);
        p[0] = 7;
        assert_eq!(f.lookup(&mut p, 64, 0), -EAFNOSUPPORT);
        p[0] = AF_INET;
        assert_eq!(p, before, "nothing written on argument errors");
    }

    #[test]
    fn output_lookups_skip_routes_through_other_devices() {
        // Output on device 2: 10.1/16 goes through 3, so 10/8 (via 2) wins.
        let mut p = params4(2, [10, 1, 2, 3], 100);
        assert_eq!(fib().lookup(&mut p, 64, LOOKUP_OUTPUT), RET_SUCCESS);
        assert_eq!(&p[off::DST..off::DST + 4], &[192, 0, 2, 1]);
    }

    #[test]
    fn tbid_selects_a_table_and_is_zeroed() {
        let mut p = params4(2, [10, 9, 8, 7], 100);
        wr_u32(&mut p, off::TBID, 100);
        assert_eq!(fib().lookup(&mut p, 64, LOOKUP_DIRECT | LOOKUP_TBID), RET_NOT_FWDED);
        assert_eq!(rd_u32(&p, off::TBID), 0);
        let mut p = params4(2, [10, 9, 8, 7], 100);
        wr_u32(&mut p, off::TBID, TABLE_MAIN);
        assert_eq!(fib().lookup(&mut p, 64, LOOKUP_DIRECT | LOOKUP_TBID), RET_SUCCESS);
    }

    #[test]
    fn ipv6_strict_addresses_and_source_selection() {
        let f = fib();
        let mut p = [0u8; PARAMS_SIZE];
        p[0] = AF_INET6;
        wr_u32(&mut p, off::IFINDEX, 2);
        let dst: Ipv6Addr = "2001:db8::5".parse().unwrap();
        p[off::DST..off::DST + 16].copy_from_slice(&dst.octets());
        let mut q = p;
        assert_eq!(f.lookup(&mut q, 64, LOOKUP_SKIP_NEIGH | LOOKUP_SRC), RET_NO_SRC_ADDR);
        assert_eq!(rd_u32(&q, off::RT_METRIC), 1024);
        let mut q = p;
        assert_eq!(f.lookup(&mut q, 64, 0), RET_NO_NEIGH);
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut q = p;
        q[off::SRC..off::SRC + 16].copy_from_slice(&ll.octets());
        assert_eq!(f.lookup(&mut q, 64, 0), RET_NOT_FWDED);
    }
}
