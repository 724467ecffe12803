//! What a generated packet is, recorded when it is made so that tests can
//! derive expectations without parsing it with the code under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// VLAN tagging of a generated frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vlan {
    None,
    /// One 802.1Q tag (TPID 0x8100).
    Dot1Q {
        vid: u16,
    },
    /// 802.1ad service tag (TPID 0x88a8) around an 802.1Q customer tag.
    QinQ {
        outer_vid: u16,
        inner_vid: u16,
    },
}

/// An IPv4 option set carried by the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Opt {
    /// Router Alert, RFC 2113: 4 bytes.
    RouterAlert,
    /// Record Route with two empty slots (RFC 791), then End of Options: 12 bytes.
    RecordRoute,
}

impl Ipv4Opt {
    pub fn len(self) -> usize {
        self.bytes().len()
    }
    pub fn is_empty(self) -> bool {
        false
    }
    pub(crate) fn bytes(self) -> &'static [u8] {
        match self {
            Ipv4Opt::RouterAlert => &[0x94, 4, 0, 0],
            Ipv4Opt::RecordRoute => &[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        }
    }
}

/// Which IPv4 fragment of a two-fragment datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Offset 0, more-fragments set: holds the transport header.
    First,
    /// Non-zero offset, more-fragments clear.
    Last,
}

/// IPv6 extension headers, written in the order RFC 8200 section 4.1 recommends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ipv6Ext {
    /// Next-header 0, PadN only.
    HopByHop,
    /// Next-header 43, routing type 253 (experimental, RFC 4727), segments
    /// left 0, so every node ignores it (RFC 8200 section 4.4).
    Routing,
    /// Next-header 44, offset 0 and M clear: an atomic fragment (RFC 6946).
    Fragment,
    /// Next-header 60, PadN only.
    DestinationOptions,
}

impl Ipv6Ext {
    pub fn next_header_value(self) -> u8 {
        match self {
            Ipv6Ext::HopByHop => 0,
            Ipv6Ext::Routing => 43,
            Ipv6Ext::Fragment => 44,
            Ipv6Ext::DestinationOptions => 60,
        }
    }
}

/// The network layer of a generated IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    V4 { src: Ipv4Addr, dst: Ipv4Addr, options: Option<Ipv4Opt>, fragment: Option<Fragment> },
    V6 { src: Ipv6Addr, dst: Ipv6Addr, exts: Vec<Ipv6Ext> },
}

impl Net {
    pub fn src(&self) -> IpAddr {
        match self {
            Net::V4 { src, .. } => IpAddr::V4(*src),
            Net::V6 { src, .. } => IpAddr::V6(*src),
        }
    }
    pub fn dst(&self) -> IpAddr {
        match self {
            Net::V4 { dst, .. } => IpAddr::V4(*dst),
            Net::V6 { dst, .. } => IpAddr::V6(*dst),
        }
    }
}

/// The transport layer. ICMP echo requests carry `id`/`seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        src_port: u16,
        dst_port: u16,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMPv4 echo request (IPv4 only).
    Icmpv4 {
        id: u16,
        seq: u16,
    },
    /// ICMPv6 echo request (IPv6 only).
    Icmpv6 {
        id: u16,
        seq: u16,
    },
}

impl L4 {
    pub fn ip_number(self) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Icmpv4 { .. } => 1,
            L4::Icmpv6 { .. } => 58,
        }
    }
    pub fn header_len(self) -> usize {
        match self {
            L4::Tcp { .. } => 20,
            L4::Udp { .. } | L4::Icmpv4 { .. } | L4::Icmpv6 { .. } => 8,
        }
    }
    pub fn dst_port(self) -> Option<u16> {
        match self {
            L4::Tcp { dst_port, .. } | L4::Udp { dst_port, .. } => Some(dst_port),
            _ => None,
        }
    }
}

/// A deliberately wrong length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLength {
    /// The IPv4 total length / IPv6 payload length claims `by` more bytes than the frame has.
    TooLong { by: u16 },
    /// ... or `by` fewer (the frame then carries trailing bytes).
    TooShort { by: u16 },
}

/// A deliberately wrong checksum (flipped so it can never be right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadChecksum {
    /// The IPv4 header checksum (IPv4 only).
    Ipv4Header,
    /// The TCP / UDP / ICMP checksum.
    Transport,
}

/// A generated IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpKind {
    pub vlan: Vlan,
    pub net: Net,
    pub l4: L4,
    /// Transport payload bytes (after the TCP/UDP/ICMP header).
    pub payload_len: usize,
    pub bad_length: Option<BadLength>,
    pub bad_checksum: Option<BadChecksum>,
}

/// What a generated packet is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenKind {
    /// Fewer than 14 bytes: not even an Ethernet header.
    Runt {
        len: usize,
    },
    /// An ARP request for IPv4 over Ethernet (28-byte body).
    Arp {
        vlan: Vlan,
    },
    /// An Ethernet frame with an EtherType nobody here parses (LLDP 0x88cc).
    OtherEthertype {
        vlan: Vlan,
        ethertype: u16,
        payload_len: usize,
    },
    Ip(IpKind),
}

/// Largest standard Ethernet frame without FCS; anything longer is a jumbo.
pub const MAX_STANDARD_FRAME: usize = 1514;

impl GenKind {
    pub fn vlan(&self) -> Vlan {
        match self {
            GenKind::Runt { .. } => Vlan::None,
            GenKind::Arp { vlan } | GenKind::OtherEthertype { vlan, .. } => *vlan,
            GenKind::Ip(ip) => ip.vlan,
        }
    }

    /// Length of the frame this kind describes.
    pub fn frame_len(&self) -> usize {
        let link = 14
            + match self.vlan() {
                Vlan::None => 0,
                Vlan::Dot1Q { .. } => 4,
                Vlan::QinQ { .. } => 8,
            };
        match self {
            GenKind::Runt { len } => *len,
            GenKind::Arp { .. } => link + 28,
            GenKind::OtherEthertype { payload_len, .. } => link + payload_len,
            GenKind::Ip(ip) => link + ip.ip_len(),
        }
    }

    pub fn is_jumbo(&self) -> bool {
        self.frame_len() > MAX_STANDARD_FRAME
    }
}

impl IpKind {
    /// Bytes from the start of the IP header to the end of the frame.
    pub fn ip_len(&self) -> usize {
        let l4_total = self.l4.header_len() + self.payload_len;
        match &self.net {
            Net::V4 { options, fragment, .. } => {
                let hdr = 20 + options.map_or(0, |o| o.len());
                hdr + match fragment {
                    None => l4_total,
                    Some(Fragment::First) => first_fragment_len(l4_total),
                    Some(Fragment::Last) => l4_total - first_fragment_len(l4_total),
                }
            }
            Net::V6 { exts, .. } => 40 + 8 * exts.len() + l4_total,
        }
    }
}

/// Bytes of the transport segment carried by a first fragment: half of it,
/// rounded down to the 8-byte fragment unit, but at least one unit.
pub(crate) fn first_fragment_len(l4_total: usize) -> usize {
    ((l4_total / 2) / 8).max(1) * 8
}
