//! Receive-side scaling: the Toeplitz hash and an indirection table.
//!
//! Toeplitz hash as specified by Microsoft's "Verifying the RSS Hash
//! Calculation" / "RSS hashing functions" documents: for each input bit set,
//! from the most significant bit of the first byte on, XOR in the 32 key bits
//! starting at that bit position. Input order: source address, destination
//! address, then (if ports are hashed) source port, destination port, all in
//! network byte order.

use std::net::IpAddr;

/// The 40-byte default key used in Microsoft's verification suite (and by
/// many NICs as their default RSS key).
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Indirection table size used by the model.
pub const INDIRECTION_ENTRIES: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RssError {
    #[error("RSS key of {key} bytes is too short for {input} input bytes (needs input + 4)")]
    KeyTooShort { key: usize, input: usize },
    #[error("source and destination addresses are of different families")]
    MixedFamilies,
    #[error("an RSS indirection table needs at least one queue")]
    NoQueues,
}

/// Toeplitz hash of `input` under `key`.
pub fn toeplitz(key: &[u8], input: &[u8]) -> Result<u32, RssError> {
    if key.len() < input.len() + 4 {
        return Err(RssError::KeyTooShort { key: key.len(), input: input.len() });
    }
    let mut hash = 0u32;
    // A 64-bit window: the top 32 bits are the key bits aligned with the current input bit.
    let mut window: u64 =
        u64::from_be_bytes([key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7]]);
    for (next_key_byte, &byte) in (8..).zip(input) {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= (window >> 32) as u32;
            }
            window <<= 1;
        }
        // After 8 shifts, refill the low byte with the next key byte (or zero).
        let kb = key.get(next_key_byte).copied().unwrap_or(0);
        window |= kb as u64;
    }
    Ok(hash)
}

/// The hash input for a flow: addresses, then ports if given.
pub fn flow_input(
    src: IpAddr,
    dst: IpAddr,
    ports: Option<(u16, u16)>,
) -> Result<Vec<u8>, RssError> {
    let mut v = Vec::with_capacity(36);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
        }
        _ => return Err(RssError::MixedFamilies),
    }
    if let Some((sp, dp)) = ports {
        v.extend_from_slice(&sp.to_be_bytes());
        v.extend_from_slice(&dp.to_be_bytes());
    }
    Ok(v)
}

/// Toeplitz hash of a flow under the Microsoft key.
pub fn flow_hash(src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>) -> Result<u32, RssError> {
    toeplitz(&MICROSOFT_KEY, &flow_input(src, dst, ports)?)
}

/// An RSS indirection table: hash low bits -> queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndirectionTable {
    entries: Vec<u16>,
}

impl IndirectionTable {
    /// The usual default fill: entry i -> queue i mod n (ethtool's
    /// `ethtool_rxfh_indir_default`).
    pub fn round_robin(queues: u16) -> Result<Self, RssError> {
        if queues == 0 {
            return Err(RssError::NoQueues);
        }
        Ok(IndirectionTable {
            entries: (0..INDIRECTION_ENTRIES).map(|i| (i % queues as usize) as u16).collect(),
        })
    }

    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    /// Queue for a hash: the table is indexed by the hash's low 7 bits.
    pub fn queue(&self, hash: u32) -> u16 {
        self.entries[hash as usize % self.entries.len()]
    }
}
