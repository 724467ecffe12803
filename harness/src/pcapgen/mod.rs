//! Deterministic packet generator.
//!
//! `generate(profile, n, seed)` yields the same frames for the same
//! arguments on every machine and with every dependency version: the
//! randomness comes from our own [`rng`], and etherparse only serialises
//! headers whose layout the RFCs fix. Each [`GenPacket`] also says what it
//! is ([`GenKind`]) so tests can work out expectations independently.
//!
//! Profiles:
//! - `mixed` (default): all protocol classes and the hard cases; see [`mixed`];
//! - `firewall`: TCP/UDP/ICMP over IPv4/IPv6, partly matching a documented
//!   blocklist; see [`firewall`];
//! - `tiny`: 64-byte IPv4 UDP frames, for benchmarks.
//!
//! Packet `i` is stamped [`EPOCH_NS`] + `i` microseconds.

pub mod build;
pub mod firewall;
pub mod kind;
pub mod mixed;
pub mod rng;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

pub use kind::{
    BadChecksum, BadLength, Fragment, GenKind, IpKind, Ipv4Opt, Ipv6Ext, Net, Vlan, L4,
};

use crate::capture::{CaptureError, PcapFileWriter, TsPrecision};
use rng::Rng;

/// Timestamp of the first packet: 2024-01-01T00:00:00Z in nanoseconds.
pub const EPOCH_NS: u64 = 1_704_067_200 * 1_000_000_000;
/// Time between consecutive packets.
pub const SPACING_NS: u64 = 1_000;

/// A generator profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    #[default]
    Mixed,
    Firewall,
    Tiny,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Mixed, Profile::Firewall, Profile::Tiny];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Mixed => "mixed",
            Profile::Firewall => "firewall",
            Profile::Tiny => "tiny",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Profile, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown profile {s:?}; expected one of: mixed, firewall, tiny"))
    }
}

/// One generated packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenPacket {
    pub index: u64,
    pub ts_ns: u64,
    pub bytes: Vec<u8>,
    pub kind: GenKind,
}

/// Iterator over generated packets; see [`generate_packets`].
#[derive(Debug, Clone)]
pub struct Generator {
    profile: Profile,
    rng: Rng,
    next: u64,
    count: u64,
}

impl Iterator for Generator {
    type Item = GenPacket;

    fn next(&mut self) -> Option<GenPacket> {
        if self.next >= self.count {
            return None;
        }
        let index = self.next;
        self.next += 1;
        let kind = match self.profile {
            Profile::Mixed => mixed::next(&mut self.rng),
            Profile::Firewall => firewall::next(&mut self.rng),
            Profile::Tiny => tiny(&mut self.rng),
        };
        let bytes = build::build(&kind, &mut self.rng);
        Some(GenPacket { index, ts_ns: timestamp_ns(index), bytes, kind })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

/// `n` packets of `profile` from `seed`, with what each one is.
pub fn generate_packets(profile: Profile, n: u64, seed: u64) -> Generator {
    Generator { profile, rng: Rng::new(seed), next: 0, count: n }
}

/// `n` frames of `profile` from `seed`.
pub fn generate(profile: Profile, n: u64, seed: u64) -> impl Iterator<Item = Vec<u8>> {
    generate_packets(profile, n, seed).map(|p| p.bytes)
}

/// Timestamp of packet `index`.
pub fn timestamp_ns(index: u64) -> u64 {
    EPOCH_NS + index * SPACING_NS
}

/// Writes `n` packets of `profile` from `seed` to `path` (atomically); this
/// is what `xdpqual gen-pcap` does.
pub fn write_profile_pcap(
    path: impl AsRef<Path>,
    profile: Profile,
    n: u64,
    seed: u64,
    precision: TsPrecision,
) -> Result<u64, CaptureError> {
    let mut w = PcapFileWriter::create(path, precision)?;
    for p in generate_packets(profile, n, seed) {
        w.write(p.ts_ns, &p.bytes)?;
    }
    w.finish()?;
    Ok(n)
}

/// 64-byte frames: 14 Ethernet + 20 IPv4 + 8 UDP + 22 payload, source
/// address and port varying so that RSS spreads them.
fn tiny(rng: &mut Rng) -> GenKind {
    GenKind::Ip(IpKind {
        vlan: Vlan::None,
        net: Net::V4 {
            src: Ipv4Addr::new(10, 0, rng.below(256) as u8, 1 + rng.below(254) as u8),
            dst: Ipv4Addr::new(10, 1, 0, 1),
            options: None,
            fragment: None,
        },
        l4: L4::Udp { src_port: rng.range(1024, 65535) as u16, dst_port: 9 },
        payload_len: 22,
        bad_length: None,
        bad_checksum: None,
    })
}
