//! Longest-prefix-match index for `BPF_MAP_TYPE_LPM_TRIE`.
//!
//! Keys are `struct bpf_lpm_trie_key { u32 prefixlen; u8 data[]; }` with the
//! data in network order. Semantics from `kernel/bpf/lpm_trie.c`: an update
//! with a prefix length above the data's bit width is -EINVAL; a new prefix
//! when `max_entries` are stored is -ENOSPC; a lookup matches the stored
//! prefix with the most bits that also covers the key, up to the key's own
//! prefix length.

use std::collections::HashMap;

use super::{BPF_EXIST, BPF_NOEXIST, EEXIST, EINVAL, ENOENT, ENOSPC};

#[derive(Debug, Clone)]
pub struct LpmIndex {
    data_len: usize,
    /// Per prefix length: masked data -> slot.
    by_len: Vec<HashMap<Vec<u8>, usize>>,
    /// The prefix lengths that hold at least one entry, longest first: a
    /// lookup probes only these (a miss on an IPv6 map would otherwise
    /// probe all 129 lengths).
    lengths: Vec<usize>,
    free: Vec<usize>,
    next: usize,
    count: usize,
    /// Byte order of the key's `prefixlen` (a host-order u32).
    pub order: xdpqual_isa::ByteOrder,
}

fn masked(data: &[u8], bits: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    mask_in_place(&mut out, bits);
    out
}

/// Clears every bit of `out` after the first `bits`.
fn mask_in_place(out: &mut [u8], bits: usize) {
    for (i, b) in out.iter_mut().enumerate() {
        let lo = i * 8;
        if lo >= bits {
            *b = 0;
        } else if bits - lo < 8 {
            *b &= 0xffu8 << (8 - (bits - lo));
        }
    }
}

/// The kernel's largest LPM key data (`LPM_DATA_SIZE_MAX`,
/// kernel/bpf/lpm_trie.c); lookups mask keys up to this size on the stack.
const LPM_DATA_SIZE_MAX: usize = 256;

impl LpmIndex {
    pub fn new(data_len: usize) -> LpmIndex {
        LpmIndex {
            data_len,
            by_len: vec![HashMap::new(); data_len * 8 + 1],
            lengths: Vec::new(),
            free: Vec::new(),
            next: 0,
            count: 0,
            order: xdpqual_isa::ByteOrder::Little,
        }
    }

    fn split<'k>(&self, key: &'k [u8]) -> (usize, &'k [u8]) {
        let plen =
            self.order.u32_from(key[..4].try_into().expect("lpm key has prefixlen")) as usize;
        (plen, &key[4..4 + self.data_len])
    }

    pub fn longest_match(&self, key: &[u8]) -> Option<usize> {
        let (plen, data) = self.split(key);
        let max = plen.min(self.data_len * 8);
        let mut stack = [0u8; LPM_DATA_SIZE_MAX];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if data.len() <= LPM_DATA_SIZE_MAX {
            &mut stack[..data.len()]
        } else {
            heap.resize(data.len(), 0);
            &mut heap
        };
        self.lengths.iter().filter(|&&len| len <= max).find_map(|&len| {
            buf.copy_from_slice(data);
            mask_in_place(buf, len);
            self.by_len[len].get(&*buf).copied()
        })
    }

    pub fn insert(
        &mut self,
        key: &[u8],
        flags: u64,
        max_entries: usize,
    ) -> Result<(usize, bool), i64> {
        let (plen, data) = self.split(key);
        if plen > self.data_len * 8 {
            return Err(-EINVAL);
        }
        let k = masked(data, plen);
        if let Some(&slot) = self.by_len[plen].get(&k) {
            if flags == BPF_NOEXIST {
                return Err(-EEXIST);
            }
            return Ok((slot, false));
        }
        if flags == BPF_EXIST {
            return Err(-ENOENT);
        }
        if self.count >= max_entries {
            return Err(-ENOSPC);
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        if self.by_len[plen].is_empty() {
            let at = self.lengths.partition_point(|&l| l > plen);
            self.lengths.insert(at, plen);
        }
        self.by_len[plen].insert(k, slot);
        self.count += 1;
        Ok((slot, true))
    }

    pub fn remove(&mut self, key: &[u8]) -> bool {
        let (plen, data) = self.split(key);
        if plen > self.data_len * 8 {
            return false;
        }
        match self.by_len[plen].remove(&masked(data, plen)) {
            Some(slot) => {
                self.free.push(slot);
                self.count -= 1;
                if self.by_len[plen].is_empty() {
                    self.lengths.retain(|&l| l != plen);
                }
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether exactly this prefix (not a covering one) is stored.
    pub fn contains(&self, key: &[u8]) -> bool {
        let (plen, data) = self.split(key);
        plen <= self.data_len * 8 && self.by_len[plen].contains_key(&masked(data, plen))
    }

    /// Entries as full keys (prefixlen + masked data).
    pub fn iter(&self) -> impl Iterator<Item = (Vec<u8>, usize)> + '_ {
        let order = self.order;
        self.by_len.iter().enumerate().flat_map(move |(len, m)| {
            m.iter().map(move |(d, slot)| {
                let mut k = order.u32_bytes(len as u32).to_vec();
                k.extend_from_slice(d);
                (k, *slot)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(plen: u32, d: [u8; 4]) -> Vec<u8> {
        let mut k = plen.to_le_bytes().to_vec();
        k.extend_from_slice(&d);
        k
    }

    #[test]
    fn longest_prefix_wins() {
        let mut l = LpmIndex::new(4);
        let a = l.insert(&key(8, [10, 0, 0, 0]), 0, 10).unwrap().0;
        let b = l.insert(&key(24, [10, 1, 2, 0]), 0, 10).unwrap().0;
        assert_eq!(l.longest_match(&key(32, [10, 1, 2, 3])), Some(b));
        assert_eq!(l.longest_match(&key(32, [10, 1, 3, 3])), Some(a));
        assert_eq!(l.longest_match(&key(32, [11, 1, 2, 3])), None);
        // A lookup key's own prefix length caps the match.
        assert_eq!(l.longest_match(&key(16, [10, 1, 2, 3])), Some(a));
        assert_eq!(l.insert(&key(33, [0; 4]), 0, 10), Err(-EINVAL));
        assert_eq!(l.insert(&key(7, [0; 4]), 0, 2), Err(-ENOSPC));
    }

    /// Removing the last entry of a prefix length stops lookups probing it;
    /// a later insert of that length is found again.
    #[test]
    fn emptied_lengths_are_forgotten_and_refilled() {
        let mut l = LpmIndex::new(4);
        let a = l.insert(&key(8, [10, 0, 0, 0]), 0, 10).unwrap().0;
        let b = l.insert(&key(24, [10, 1, 2, 0]), 0, 10).unwrap().0;
        assert_eq!(l.lengths, vec![24, 8]);
        assert!(l.remove(&key(24, [10, 1, 2, 0])));
        assert_eq!(l.lengths, vec![8]);
        assert_eq!(l.longest_match(&key(32, [10, 1, 2, 3])), Some(a));
        let c = l.insert(&key(24, [10, 1, 2, 0]), 0, 10).unwrap().0;
        assert_eq!(c, b, "the freed slot is reused");
        assert_eq!(l.longest_match(&key(32, [10, 1, 2, 3])), Some(c));
        assert_eq!(l.insert(&key(0, [0; 4]), 0, 10).map(|r| r.1), Ok(true));
        assert_eq!(l.lengths, vec![24, 8, 0]);
        assert!(
            l.longest_match(&key(32, [11, 1, 2, 3])).is_some(),
            "the /0 entry covers every key"
        );
    }
}
