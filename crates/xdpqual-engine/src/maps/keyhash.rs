//! The hash of a hash map's keys: a keyed folded multiply for keys of up
//! to 16 bytes, SipHash for longer ones.
//!
//! Why this hash. A program under test chooses the keys it inserts, and it
//! may be hostile (a pull request's): a hash it can predict lets it make
//! every key land in one probe sequence, so each lookup compares against
//! every element and a run blows its time budget (the run's budgets count
//! instructions and helper work, not probe steps). So the hash must be
//! keyed with a secret the program cannot learn. The kernel does the same:
//! `htab_map_hash` (kernel/bpf/hashtab.c) is jhash seeded with
//! `htab->hashrnd`, a `get_random_u32()` per map.
//!
//! The construction is foldhash's "folded multiply" with secret inputs
//! (<https://github.com/orlp/foldhash>, README, "HashDoS resistance"): the
//! key's bytes are XORed into two 64-bit words, each also XORed with a
//! secret, and the 128-bit product of the two is folded to 64 bits (low
//! half XOR high half). Since both factors are hidden by a secret, no set
//! of keys collides for every seed (a zero factor, the construction's
//! known weakness, needs the key to equal a secret), and each map draws
//! its own secrets, so no access pattern carries from one map to another.
//! foldhash is explicit that this is "minimal" resistance, against blind
//! attackers: one that observes hash values (timing, iteration order) can
//! recover the secrets. A program here is blind: its clock is the
//! engine's modelled time, not the host's (`Exec::now_ns`), and no map
//! operation a program can call reveals the index's order ([`super::hash`]
//! lists elements by slot or by key, never in table order).
//!
//! One multiply per key is the cost of foldhash for integers, against
//! SipHash-1-3's dozens of rounds (std's default, used before). Keys of up
//! to 16 bytes are what XDP programs look up per packet (an IPv4 address,
//! a port, a 5-tuple of IPv4 without padding is 13, an IPv6 address is
//! 16); longer keys keep std's SipHash-1-3 with its per-process random key,
//! which is designed against exactly this attack and whose cost matters
//! less there.
//!
//! A map's keys all have its key size, so the size picks one branch of
//! [`KeyHasher::write`] for every key of a map (a predicted branch), and
//! the length prefix `[u8]`'s `Hash` writes first is folded in without a
//! multiply.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The secrets of one map's index ([`std::hash::BuildHasher`] for its
/// table). Cloned with the map, so a copy of a map hashes as it does.
/// Its `Debug` shows no secret (a map's `Debug` may reach a log).
#[derive(Clone)]
pub(super) struct KeyHash {
    seeds: [u64; 2],
    /// For keys longer than 16 bytes.
    long: RandomState,
}

impl KeyHash {
    /// Fresh secrets: std's `RandomState` draws its SipHash keys from the
    /// operating system once per thread and steps them per instance, so
    /// hashing a per-call counter with a new instance gives values no
    /// program input can predict, without a dependency on a random crate.
    pub(super) fn random() -> KeyHash {
        static DRAWN: AtomicU64 = AtomicU64::new(0);
        let draw = || {
            let n = DRAWN.fetch_add(1, Ordering::Relaxed);
            RandomState::new().hash_one(n)
        };
        KeyHash { seeds: [draw(), draw()], long: RandomState::new() }
    }

    /// Fixed secrets, for tests that need to know the hash.
    #[cfg(test)]
    pub(super) fn with_seeds(seeds: [u64; 2]) -> KeyHash {
        KeyHash { seeds, long: RandomState::new() }
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash { .. }")
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    #[inline(always)]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { acc: self.seeds[0], seed: self.seeds[1], long: self.long.clone() }
    }
}

/// One key's hash in progress.
pub(super) struct KeyHasher {
    acc: u64,
    seed: u64,
    /// The builder's SipHash keys (two words), for long keys.
    long: RandomState,
}

/// The 128-bit product of `a` and `b`, folded to 64 bits.
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}

impl Hasher for KeyHasher {
    /// The key's bytes as two words, `lo` and `hi`, that together hold
    /// every byte (overlapping when the key is shorter than 16 bytes, so
    /// one load each), then one folded multiply of both with the secrets.
    #[inline(always)]
    fn write(&mut self, b: &[u8]) {
        let n = b.len();
        let (lo, hi) = match n {
            8..=16 => (u64_at(b, 0), u64_at(b, n - 8)),
            4..=7 => (u32_at(b, 0), u32_at(b, n - 4)),
            0..=3 => (b.iter().fold(0u64, |w, &x| w << 8 | x as u64), 0),
            _ => (self.long.hash_one(b), 0),
        };
        self.acc = folded_multiply(lo ^ self.acc, hi ^ self.seed);
    }

    /// `[u8]`'s `Hash` writes the length first: mixed into the secret
    /// the key then meets (the same for every key of a map).
    #[inline(always)]
    fn write_usize(&mut self, n: usize) {
        self.acc = self.acc.rotate_right(n as u32) ^ n as u64;
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        self.acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(k: &KeyHash, key: &[u8]) -> u64 {
        k.hash_one(key)
    }

    #[test]
    fn every_byte_of_every_size_counts() {
        // Changing any one byte of a key of any size changes its hash
        // (for these fixed secrets; a folded multiply of distinct inputs
        // coincides with probability about 2^-64).
        let k = KeyHash::with_seeds([0x9e37_79b9_7f4a_7c15, 0xbf58_476d_1ce4_e5b9]);
        for n in 1..=40 {
            let key: Vec<u8> = (0..n as u8).collect();
            let h = hash(&k, &key);
            for i in 0..n {
                let mut other = key.clone();
                other[i] ^= 0x80;
                assert_ne!(hash(&k, &other), h, "size {n}, byte {i}");
            }
        }
    }

    #[test]
    fn secrets_differ_per_map_and_a_copy_hashes_alike() {
        let (a, b) = (KeyHash::random(), KeyHash::random());
        assert_ne!(a.seeds, b.seeds);
        let key = [10, 0, 0, 1];
        assert_eq!(hash(&a, &key), hash(&a.clone(), &key));
        // Different secrets give different hashes (else they were not
        // secrets at all): the chance of a coincidence is about 2^-64.
        assert_ne!(hash(&a, &key), hash(&b, &key));
        assert_eq!(format!("{a:?}"), "KeyHash { .. }");
    }
}
