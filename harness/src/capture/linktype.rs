//! Link-layer types we accept, and how each becomes an Ethernet frame.
//!
//! XDP programs see Ethernet frames, so everything we replay must be one.
//! Ethernet captures are used as-is. Captures whose link layer carries no
//! Ethernet header but does say (or imply) the EtherType get a synthetic
//! 14-byte Ethernet header: destination and source MAC all zeros, then the
//! EtherType. Numbers and header layouts follow the tcpdump.org link-type
//! registry (https://www.tcpdump.org/linktypes.html).

use std::fmt;

/// Length of the synthetic Ethernet header we prepend.
pub const ETH_HLEN: usize = 14;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Smallest value of the Ethernet type/length field that is an EtherType
/// (IEEE 802.3 clause 3.2.6); smaller values are 802.3 lengths.
const ETHERTYPE_MIN: u16 = 0x0600;
/// Largest 802.3 payload length the type/length field can carry.
const ETH_DATA_LEN: u32 = 1500;

/// Which of the three raw-IP numbers a capture used. They mean the same
/// thing to us; we keep the number so it can be reported back exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawIpNumber {
    /// DLT_RAW as written by most old libpcaps.
    Dlt12,
    /// DLT_RAW as written by OpenBSD's libpcap.
    Dlt14,
    /// LINKTYPE_RAW, the portable number.
    Linktype101,
}

/// A link type xdpqual can replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_LINUX_SLL (113): 16-byte "cooked" header, protocol at offset 14.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): 20-byte cooked header, protocol at offset 0.
    LinuxSll2,
    /// Raw IP, version taken from the first nibble (12, 14, 101).
    RawIp(RawIpNumber),
    /// LINKTYPE_IPV4 (228): raw IPv4 only.
    Ipv4,
    /// LINKTYPE_IPV6 (229): raw IPv6 only.
    Ipv6,
    /// LINKTYPE_NULL (0): 4-byte address family in the capturing host's byte order.
    BsdNull,
    /// LINKTYPE_LOOP (108): 4-byte address family in network byte order.
    BsdLoop,
}

/// A link-type number we do not replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedLinkType(pub u32);

impl fmt::Display for UnsupportedLinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_number(self.0))
    }
}

/// "link type N (NAME)" for any link-type number, using pcap-file's table of names.
pub fn describe_number(number: u32) -> String {
    match pcap_file::DataLink::from(number) {
        pcap_file::DataLink::Unknown(_) => format!("link type {number} (unassigned)"),
        known => format!("link type {number} ({known:?})"),
    }
}

impl LinkType {
    /// The link type for a capture's link-type number.
    pub fn from_number(number: u32) -> Result<LinkType, UnsupportedLinkType> {
        Ok(match number {
            0 => LinkType::BsdNull,
            1 => LinkType::Ethernet,
            12 => LinkType::RawIp(RawIpNumber::Dlt12),
            14 => LinkType::RawIp(RawIpNumber::Dlt14),
            101 => LinkType::RawIp(RawIpNumber::Linktype101),
            108 => LinkType::BsdLoop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => return Err(UnsupportedLinkType(other)),
        })
    }

    /// The link-type number as written in the capture.
    pub fn number(self) -> u32 {
        match self {
            LinkType::BsdNull => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp(RawIpNumber::Dlt12) => 12,
            LinkType::RawIp(RawIpNumber::Dlt14) => 14,
            LinkType::RawIp(RawIpNumber::Linktype101) => 101,
            LinkType::BsdLoop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// Whether frames of this type are replayed unchanged.
    pub fn is_ethernet(self) -> bool {
        self == LinkType::Ethernet
    }

    /// Length of the link header this type carries in front of the payload
    /// (0 for raw IP), which the synthetic Ethernet header replaces.
    pub fn header_len(self) -> usize {
        match self {
            LinkType::Ethernet => ETH_HLEN,
            LinkType::LinuxSll => 16,
            LinkType::LinuxSll2 => 20,
            LinkType::RawIp(_) | LinkType::Ipv4 | LinkType::Ipv6 => 0,
            LinkType::BsdNull | LinkType::BsdLoop => 4,
        }
    }

    /// How the EtherType of the synthetic header is chosen (for the warning).
    pub fn ethertype_source(self) -> &'static str {
        match self {
            LinkType::Ethernet => "the frame itself",
            LinkType::LinuxSll | LinkType::LinuxSll2 => "the cooked header's protocol field",
            LinkType::RawIp(_) => "the IP version nibble",
            LinkType::Ipv4 => "the link type (always IPv4)",
            LinkType::Ipv6 => "the link type (always IPv6)",
            LinkType::BsdNull | LinkType::BsdLoop => "the address-family field",
        }
    }

    /// Turns one captured packet into an Ethernet frame.
    ///
    /// `orig_len` is the packet's length on the wire; the returned length is
    /// adjusted by the header size difference so that "captured < original"
    /// still means exactly "truncated".
    pub fn to_ethernet(self, data: &[u8], orig_len: u32) -> Result<(Vec<u8>, u32), String> {
        if self == LinkType::Ethernet {
            return Ok((data.to_vec(), orig_len));
        }
        let hlen = self.header_len();
        if data.len() < hlen.max(1) {
            return Err(format!(
                "only {} bytes captured, shorter than the {}-byte link header plus one payload byte",
                data.len(),
                hlen
            ));
        }
        let payload = &data[hlen..];
        let payload_orig_len = orig_len.saturating_sub(hlen as u32);
        let ethertype = match self {
            LinkType::Ethernet => unreachable!("handled above"),
            LinkType::LinuxSll => {
                cooked_ethertype(u16::from_be_bytes([data[14], data[15]]), payload_orig_len)?
            }
            LinkType::LinuxSll2 => {
                cooked_ethertype(u16::from_be_bytes([data[0], data[1]]), payload_orig_len)?
            }
            LinkType::RawIp(_) => ip_version_ethertype(payload)?,
            LinkType::Ipv4 => ETHERTYPE_IPV4,
            LinkType::Ipv6 => ETHERTYPE_IPV6,
            LinkType::BsdNull => {
                let af = [data[0], data[1], data[2], data[3]];
                // Host byte order of the capturing machine, which we do not
                // know: the values are all < 256, so at most one order matches.
                af_ethertype(u32::from_le_bytes(af))
                    .or_else(|| af_ethertype(u32::from_be_bytes(af)))
                    .ok_or_else(|| format!("address family {af:02x?} is neither IPv4 nor IPv6"))?
            }
            LinkType::BsdLoop => {
                af_ethertype(u32::from_be_bytes([data[0], data[1], data[2], data[3]])).ok_or_else(
                    || format!("address family {:02x?} is neither IPv4 nor IPv6", &data[..4]),
                )?
            }
        };
        let mut frame = Vec::with_capacity(ETH_HLEN + payload.len());
        frame.extend_from_slice(&[0u8; 12]);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(payload);
        Ok((frame, payload_orig_len.saturating_add(ETH_HLEN as u32)))
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_number(self.number()))
    }
}

/// The type/length field for a Linux cooked header's protocol value.
///
/// Values >= 0x0600 are EtherTypes. Below that Linux uses its own
/// ETH_P_* numbers (include/uapi/linux/if_ether.h): ETH_P_802_3 (1) marks
/// Novell "raw 802.3" and ETH_P_802_2 (4) marks 802.2 LLC frames; on an
/// Ethernet wire both were carried with an 802.3 length field, so we write
/// the payload length there. Anything else (CAN, netlink, ...) never was an
/// Ethernet payload.
fn cooked_ethertype(protocol: u16, payload_orig_len: u32) -> Result<u16, String> {
    const ETH_P_802_3: u16 = 0x0001;
    const ETH_P_802_2: u16 = 0x0004;
    match protocol {
        p if p >= ETHERTYPE_MIN => Ok(p),
        ETH_P_802_3 | ETH_P_802_2 if payload_orig_len <= ETH_DATA_LEN => {
            Ok(payload_orig_len as u16)
        }
        ETH_P_802_3 | ETH_P_802_2 => Err(format!(
            "802.3 payload of {payload_orig_len} bytes does not fit an 802.3 length field"
        )),
        p => Err(format!(
            "cooked-header protocol 0x{p:04x} is a Linux-internal protocol, not an Ethernet payload"
        )),
    }
}

fn ip_version_ethertype(payload: &[u8]) -> Result<u16, String> {
    match payload[0] >> 4 {
        4 => Ok(ETHERTYPE_IPV4),
        6 => Ok(ETHERTYPE_IPV6),
        v => Err(format!("raw-IP packet starts with IP version {v}, not 4 or 6")),
    }
}

/// AF_INET is 2 everywhere; AF_INET6 differs by OS: 10 (Linux), 24
/// (NetBSD, OpenBSD, BSD/OS), 28 (FreeBSD, DragonFly), 30 (Darwin); see the
/// LINKTYPE_NULL entry of the tcpdump.org link-type registry.
fn af_ethertype(af: u32) -> Option<u16> {
    match af {
        2 => Some(ETHERTYPE_IPV4),
        10 | 24 | 28 | 30 => Some(ETHERTYPE_IPV6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: [u8; 2], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&ethertype);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn numbers_round_trip() {
        for n in [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
            assert_eq!(LinkType::from_number(n).unwrap().number(), n);
        }
        assert_eq!(LinkType::from_number(105), Err(UnsupportedLinkType(105)));
        assert_eq!(UnsupportedLinkType(105).to_string(), "link type 105 (IEEE802_11)");
        assert_eq!(UnsupportedLinkType(60000).to_string(), "link type 60000 (unassigned)");
    }

    #[test]
    fn sll_uses_protocol_field() {
        // packet type 0 (to us), ARPHRD_ETHER 1, addr len 6, addr, 2 pad, protocol 0x0800.
        let mut sll = vec![0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&[0x45, 0xaa, 0xbb]);
        let (frame, len) = LinkType::LinuxSll.to_ethernet(&sll, 100).unwrap();
        assert_eq!(frame, eth([0x08, 0x00], &[0x45, 0xaa, 0xbb]));
        assert_eq!(len, 100 - 16 + 14);
    }

    #[test]
    fn sll2_uses_protocol_field() {
        // protocol 0x86dd, reserved, ifindex 2, ARPHRD 1, pkttype 4, addr len 6, addr(8).
        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 9, 9, 9, 9, 9, 9, 0, 0];
        sll2.extend_from_slice(&[0x60, 0x01]);
        let (frame, len) = LinkType::LinuxSll2.to_ethernet(&sll2, 22).unwrap();
        assert_eq!(frame, eth([0x86, 0xdd], &[0x60, 0x01]));
        assert_eq!(len, 16);
    }

    #[test]
    fn sll_llc_gets_length_field_and_can_is_refused() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x00, 0x04, 0x42, 0x42, 0x03]);
        let (frame, _) = LinkType::LinuxSll.to_ethernet(&sll, 19).unwrap();
        assert_eq!(frame, eth([0x00, 0x03], &[0x42, 0x42, 0x03]));
        let mut can = vec![0u8; 14];
        can.extend_from_slice(&[0x00, 0x0c, 1, 2]);
        let err = LinkType::LinuxSll.to_ethernet(&can, 18).unwrap_err();
        assert!(err.contains("0x000c"), "{err}");
    }

    #[test]
    fn raw_ip_uses_version_nibble() {
        let raw = LinkType::RawIp(RawIpNumber::Linktype101);
        assert_eq!(raw.to_ethernet(&[0x45, 0], 2).unwrap(), (eth([0x08, 0x00], &[0x45, 0]), 16));
        assert_eq!(raw.to_ethernet(&[0x60, 0], 2).unwrap(), (eth([0x86, 0xdd], &[0x60, 0]), 16));
        assert!(raw.to_ethernet(&[0x50], 1).unwrap_err().contains("version 5"));
        assert!(raw.to_ethernet(&[], 0).is_err());
        // LINKTYPE_IPV4 trusts the link type, not the nibble.
        assert_eq!(LinkType::Ipv4.to_ethernet(&[0x00], 1).unwrap().0, eth([0x08, 0x00], &[0x00]));
    }

    #[test]
    fn null_accepts_either_byte_order_and_loop_is_big_endian() {
        let le = [2, 0, 0, 0, 0x45];
        let be = [0, 0, 0, 30, 0x60];
        assert_eq!(LinkType::BsdNull.to_ethernet(&le, 5).unwrap().0, eth([0x08, 0x00], &[0x45]));
        assert_eq!(LinkType::BsdNull.to_ethernet(&be, 5).unwrap().0, eth([0x86, 0xdd], &[0x60]));
        assert_eq!(LinkType::BsdLoop.to_ethernet(&be, 5).unwrap().0, eth([0x86, 0xdd], &[0x60]));
        assert!(LinkType::BsdLoop.to_ethernet(&le, 5).is_err());
        assert!(LinkType::BsdNull.to_ethernet(&[7, 0, 0, 0, 1], 5).is_err());
    }
}
