//! Frames on the wire that the tool did not send ("foreign" frames): the
//! peer's own stack talking to the interface (IPv6 router and neighbour
//! solicitations, MLD reports, ARP, DHCP...), and the interface's own stack
//! talking to the peer. They are seen leaving either end by a packet socket
//! (see [`super::observe`]), named by protocol, and kept out of the verdict
//! comparison.

use std::collections::BTreeMap;

use serde::Serialize;

/// What the tool saw of traffic it did not send.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ForeignSummary {
    /// Frames someone else (the peer's own stack) sent into the interface.
    /// Each one ran the program.
    pub into_iface: u64,
    /// The same frames by protocol.
    pub into_iface_protocols: BTreeMap<String, u64>,
    /// Frames the interface's own stack sent to the peer; they do not pass
    /// the program (XDP runs on receive only), but reach the peer's socket
    /// and would otherwise look like XDP_TX.
    pub from_iface: u64,
    pub from_iface_protocols: BTreeMap<String, u64>,
    /// Where the frames sent into the interface were seen afterwards.
    pub outcomes: BTreeMap<String, u64>,
    /// Of those, how many went where the engine, replaying them, said.
    pub as_engine_predicted: u64,
    /// Program runs that no frame seen entering the interface explains.
    pub unexplained_runs: u64,
    /// Frames seen leaving the peer that the program never ran on.
    pub not_run: u64,
    /// Frames that entered the interface before the program was attached.
    pub before_attach: u64,
    /// Multicast a stack sent and received itself (never on the wire).
    pub looped_back: u64,
}

impl ForeignSummary {
    pub fn record_in(&mut self, frame: &[u8]) {
        self.into_iface += 1;
        *self.into_iface_protocols.entry(protocol(frame)).or_default() += 1;
    }

    pub fn record_out(&mut self, frame: &[u8]) {
        self.from_iface += 1;
        *self.from_iface_protocols.entry(protocol(frame)).or_default() += 1;
    }

    pub fn outcome(&mut self, what: &str, as_predicted: bool) {
        *self.outcomes.entry(what.to_string()).or_default() += 1;
        if as_predicted {
            self.as_engine_predicted += 1;
        }
    }

    /// "3 foreign frames: 2 × ICMPv6 router solicitation, 1 × MLDv2 report"
    /// for each direction that had any.
    pub fn describe(&self, iface: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.into_iface > 0 {
            out.push(format!(
                "{} into {iface} (they ran the program; left out of the verdict comparison)",
                list(self.into_iface, &self.into_iface_protocols)
            ));
        }
        if self.from_iface > 0 {
            out.push(format!(
                "{} from {iface}'s own stack to the peer (they do not run the program; not counted as XDP_TX)",
                list(self.from_iface, &self.from_iface_protocols)
            ));
        }
        out
    }
}

fn list(n: u64, by: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = by.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = v.iter().map(|(p, c)| format!("{c} × {p}")).collect();
    format!("{n} foreign frame{}: {}", if n == 1 { "" } else { "s" }, parts.join(", "))
}

fn icmpv6(t: u8) -> String {
    match t {
        1 => "ICMPv6 destination unreachable".into(),
        2 => "ICMPv6 packet too big".into(),
        3 => "ICMPv6 time exceeded".into(),
        4 => "ICMPv6 parameter problem".into(),
        128 => "ICMPv6 echo request".into(),
        129 => "ICMPv6 echo reply".into(),
        130 => "MLD query".into(),
        131 => "MLDv1 report".into(),
        132 => "MLDv1 done".into(),
        133 => "ICMPv6 router solicitation".into(),
        134 => "ICMPv6 router advertisement".into(),
        135 => "ICMPv6 neighbour solicitation".into(),
        136 => "ICMPv6 neighbour advertisement".into(),
        137 => "ICMPv6 redirect".into(),
        143 => "MLDv2 report".into(),
        t => format!("ICMPv6 type {t}"),
    }
}

fn udp(family: &str, sport: u16, dport: u16) -> String {
    let name = |p: u16| match p {
        53 => Some("DNS"),
        67 | 68 => Some("DHCP"),
        123 => Some("NTP"),
        546 | 547 => Some("DHCPv6"),
        5353 => Some("mDNS"),
        5355 => Some("LLMNR"),
        _ => None,
    };
    match name(dport).or(name(sport)) {
        Some(n) => format!("{family} UDP ({n})"),
        None => format!("{family} UDP port {dport}"),
    }
}

/// A short name of what `frame` carries: the ICMPv6 or ICMP type, the UDP
/// service by well-known port, else the IP protocol or the ethertype.
pub fn protocol(frame: &[u8]) -> String {
    let be16 = |o: usize| frame.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let Some(mut ethertype) = be16(12) else {
        return format!("runt frame ({} bytes)", frame.len());
    };
    let mut l3 = 14;
    while matches!(ethertype, 0x8100 | 0x88a8) {
        match be16(l3 + 2) {
            Some(t) => ethertype = t,
            None => return "truncated VLAN frame".into(),
        }
        l3 += 4;
    }
    match ethertype {
        0x0806 => match be16(l3 + 6) {
            Some(1) => "ARP request".into(),
            Some(2) => "ARP reply".into(),
            _ => "ARP".into(),
        },
        0x86dd => {
            let Some(mut next) = frame.get(l3 + 6).copied() else {
                return "truncated IPv6".into();
            };
            let mut at = l3 + 40;
            // Hop-by-hop, routing and destination options (MLD reports
            // carry a hop-by-hop router alert).
            while matches!(next, 0 | 43 | 60) {
                let (Some(n), Some(len)) = (frame.get(at).copied(), frame.get(at + 1).copied())
                else {
                    return "truncated IPv6".into();
                };
                next = n;
                at += 8 + 8 * usize::from(len);
            }
            match next {
                58 => match frame.get(at) {
                    Some(&t) => icmpv6(t),
                    None => "truncated ICMPv6".into(),
                },
                17 => match (be16(at), be16(at + 2)) {
                    (Some(s), Some(d)) => udp("IPv6", s, d),
                    _ => "truncated IPv6 UDP".into(),
                },
                6 => "IPv6 TCP".into(),
                p => format!("IPv6 protocol {p}"),
            }
        }
        0x0800 => {
            let ihl = frame.get(l3).map(|b| usize::from(b & 0x0f) * 4).unwrap_or(20);
            let at = l3 + ihl;
            match frame.get(l3 + 9) {
                Some(1) => match frame.get(at) {
                    Some(0) => "ICMP echo reply".into(),
                    Some(3) => "ICMP destination unreachable".into(),
                    Some(8) => "ICMP echo request".into(),
                    Some(t) => format!("ICMP type {t}"),
                    None => "truncated ICMP".into(),
                },
                Some(2) => "IGMP".into(),
                Some(6) => "IPv4 TCP".into(),
                Some(17) => match (be16(at), be16(at + 2)) {
                    (Some(s), Some(d)) => udp("IPv4", s, d),
                    _ => "truncated IPv4 UDP".into(),
                },
                Some(p) => format!("IPv4 protocol {p}"),
                None => "truncated IPv4".into(),
            }
        }
        0x88cc => "LLDP".into(),
        t if t < 0x0600 => "802.3 frame (length field)".into(),
        t => format!("ethertype 0x{t:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv6 header with `next`, then `payload`.
    fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd];
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[next, 255]);
        f.extend_from_slice(&[0u8; 32]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn names_the_kernels_own_ipv6_chatter() {
        // Router solicitation: ICMPv6 type 133 right after the IPv6 header.
        assert_eq!(protocol(&ipv6(58, &[133, 0, 0, 0, 0, 0, 0, 0])), "ICMPv6 router solicitation");
        assert_eq!(protocol(&ipv6(58, &[135, 0, 0, 0])), "ICMPv6 neighbour solicitation");
        // MLDv2 report: behind an 8-byte hop-by-hop header (router alert).
        let mut hbh = vec![58, 0, 5, 2, 0, 0, 1, 0];
        hbh.extend_from_slice(&[143, 0, 0, 0]);
        assert_eq!(protocol(&ipv6(0, &hbh)), "MLDv2 report");
        assert_eq!(protocol(&ipv6(17, &[0x02, 0x22, 0x02, 0x23, 0, 8, 0, 0])), "IPv6 UDP (DHCPv6)");
        assert_eq!(protocol(&ipv6(58, &[])), "truncated ICMPv6");
    }

    #[test]
    fn names_ipv4_arp_and_vlan() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(protocol(&arp), "ARP request");
        let mut icmp = vec![0u8; 12];
        icmp.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0];
        ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0]);
        icmp.extend_from_slice(&ip);
        assert_eq!(protocol(&icmp), "ICMP echo request");
        assert_eq!(protocol(&[0u8; 5]), "runt frame (5 bytes)");
    }

    #[test]
    fn lists_counts_by_protocol_most_first() {
        let mut s = ForeignSummary::default();
        let rs = ipv6(58, &[133, 0, 0, 0]);
        let mut mld = vec![58, 0, 5, 2, 0, 0, 1, 0];
        mld.extend_from_slice(&[143, 0, 0, 0]);
        let mld = ipv6(0, &mld);
        s.record_in(&rs);
        s.record_in(&mld);
        s.record_in(&rs);
        let d = s.describe("veth0");
        assert_eq!(d.len(), 1);
        assert!(
            d[0].starts_with(
                "3 foreign frames: 2 × ICMPv6 router solicitation, 1 × MLDv2 report into veth0"
            ),
            "{d:?}"
        );
        s.record_out(&rs);
        assert!(s.describe("veth0")[1].starts_with("1 foreign frame: 1 × ICMPv6 router"));
    }
}
