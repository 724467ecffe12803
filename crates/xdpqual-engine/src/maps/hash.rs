//! Key index for hash maps, with the kernel's LRU for the LRU types.
//!
//! The kernel's preallocated hash table refuses a new key once it holds
//! `max_entries` (-E2BIG, `htab_map_update_elem`). LRU maps instead take a
//! node from the kernel's LRU (kernel/bpf/bpf_lru_list.c), which may evict
//! other elements first. [`super::lru`] models that LRU step by step
//! (active/inactive lists with reference bits, per-CPU local free and
//! pending lists refilled in batches of `target_free`, stealing from other
//! CPUs, and the per-CPU lists of `BPF_F_NO_COMMON_LRU`), so a full map
//! evicts the keys the kernel evicts, on the CPU the operation runs on.
//! How the table drives it follows kernel/bpf/hashtab.c:
//! - `htab_lru_map_update_elem` (LRU_HASH) takes a node *before* it looks
//!   for the key, so any update, even of a key already present or one that
//!   then fails on its flags, can evict; a replaced element's node is
//!   freed and the new one starts referenced;
//! - `__htab_lru_percpu_map_update_elem` (LRU_PERCPU_HASH) takes a node
//!   unless the flags are `BPF_EXIST`, updates an existing element in
//!   place (marking it referenced) and frees the node it took;
//! - lookups from a program mark the element referenced
//!   (`htab_lru_map_lookup_elem`, the inlined `htab_lru_map_gen_lookup`),
//!   lookups from user space do not (`htab_lru_map_lookup_elem_sys`,
//!   `bpf_percpu_hash_copy`): [`HashIndex::find`] vs
//!   [`HashIndex::contains`];
//! - deletes free the node (`htab_lru_map_delete_elem`).

use std::collections::HashMap;

use super::keyhash::KeyHash;
use super::lru::{KernelLru, NodeId};
use super::{BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, ENOENT, ENOMEM};

/// A key's value slot and, in an LRU map, its LRU node.
#[derive(Debug, Clone, Copy)]
struct Elem {
    slot: usize,
    node: NodeId,
}

#[derive(Debug, Clone)]
pub struct HashIndex {
    /// Keyed with this map's own secrets ([`super::keyhash`]): a program
    /// cannot choose keys that collide. Its iteration order depends on
    /// them, so nothing lists elements in that order ([`HashIndex::iter`]).
    slots: HashMap<Box<[u8]>, Elem, KeyHash>,
    /// Slots given back by deletes, reused first.
    free: Vec<usize>,
    /// Slots below this have been handed out at least once: slots are
    /// taken lazily, so a huge `max_entries` costs nothing up front.
    next: usize,
    capacity: usize,
    lru: Option<Lru>,
}

#[derive(Debug, Clone)]
struct Lru {
    model: KernelLru,
    /// LRU_PERCPU_HASH (updates in place) rather than LRU_HASH.
    percpu_values: bool,
}

impl HashIndex {
    /// A plain (HASH, PERCPU_HASH, DEVMAP_HASH, HASH_OF_MAPS) index.
    pub fn new(capacity: usize) -> HashIndex {
        HashIndex {
            slots: HashMap::with_hasher(KeyHash::random()),
            free: Vec::new(),
            next: 0,
            capacity,
            lru: None,
        }
    }

    /// An LRU_HASH (`percpu_values` false) or LRU_PERCPU_HASH index of
    /// `max_entries` on a machine of `ncpus` possible CPUs; `percpu_lists`
    /// for `BPF_F_NO_COMMON_LRU`, which rounds `max_entries` up to a
    /// multiple of `ncpus` ([`HashIndex::capacity`] tells the result).
    pub fn new_lru(
        max_entries: usize,
        ncpus: usize,
        percpu_lists: bool,
        percpu_values: bool,
    ) -> HashIndex {
        let capacity = KernelLru::max_entries(max_entries, ncpus, percpu_lists);
        HashIndex {
            lru: Some(Lru { model: KernelLru::new(capacity, ncpus, percpu_lists), percpu_values }),
            ..HashIndex::new(capacity)
        }
    }

    /// An empty index like this one (same capacity, same LRU layout).
    pub fn emptied(&self) -> HashIndex {
        match &self.lru {
            None => HashIndex::new(self.capacity),
            Some(l) => HashIndex::new_lru(
                self.capacity,
                l.model.ncpus(),
                l.model.percpu_lists(),
                l.percpu_values,
            ),
        }
    }

    /// The slot of `key`, as a program's lookup finds it: in an LRU map
    /// the element is marked referenced.
    #[inline]
    pub fn find(&mut self, key: &[u8]) -> Option<usize> {
        let e = *self.slots.get(key)?;
        if let Some(l) = &mut self.lru {
            l.model.set_ref(e.node);
        }
        Some(e.slot)
    }

    /// Finds or allocates the slot for `key` under the update `flags`,
    /// the update running on `cpu` (which CPU's LRU lists an LRU map
    /// uses); `true` when the slot is newly allocated.
    pub fn insert(&mut self, key: &[u8], flags: u64, cpu: usize) -> Result<(usize, bool), i64> {
        if self.lru.is_some() {
            return self.insert_lru(key, flags, cpu);
        }
        if let Some(e) = self.slots.get(key) {
            if flags == BPF_NOEXIST {
                return Err(-EEXIST);
            }
            return Ok((e.slot, false));
        }
        if flags == BPF_EXIST {
            return Err(-ENOENT);
        }
        if self.slots.len() >= self.capacity {
            return Err(-E2BIG);
        }
        let slot = self.take_slot().ok_or(-E2BIG)?;
        self.slots.insert(key.into(), Elem { slot, node: 0 });
        Ok((slot, true))
    }

    fn take_slot(&mut self) -> Option<usize> {
        match self.free.pop() {
            Some(s) => Some(s),
            None if self.next < self.capacity => {
                self.next += 1;
                Some(self.next - 1)
            }
            None => None,
        }
    }

    /// Drops the elements the LRU evicted (`htab_lru_map_delete_node`).
    fn drop_evicted(&mut self) {
        let Some(l) = &mut self.lru else { return };
        for k in l.model.take_evicted() {
            if let Some(e) = self.slots.remove(&k) {
                self.free.push(e.slot);
            }
        }
    }

    /// `htab_lru_map_update_elem` / `__htab_lru_percpu_map_update_elem`.
    fn insert_lru(&mut self, key: &[u8], flags: u64, cpu: usize) -> Result<(usize, bool), i64> {
        let l = self.lru.as_mut().expect("an LRU map");
        let percpu_values = l.percpu_values;
        // prealloc_lru_pop comes first (LRU_PERCPU_HASH skips it for
        // BPF_EXIST): it may evict, the updated key included.
        let new = if percpu_values && flags == BPF_EXIST {
            None
        } else {
            let n = l.model.pop_free(cpu, key);
            self.drop_evicted();
            Some(n.ok_or(-ENOMEM)?)
        };
        let old = self.slots.get(key).copied();
        // check_flags, after the pop.
        let refused = match (old, flags) {
            (Some(_), BPF_NOEXIST) => Some(-EEXIST),
            (None, BPF_EXIST) => Some(-ENOENT),
            _ => None,
        };
        let l = self.lru.as_mut().expect("an LRU map");
        if let Some(err) = refused {
            if let Some(n) = new {
                l.model.push_free(n);
            }
            return Err(err);
        }
        match (old, new) {
            (Some(e), _) if percpu_values => {
                // Updated in place; the node taken goes back.
                l.model.set_ref(e.node);
                if let Some(n) = new {
                    l.model.push_free(n);
                }
                Ok((e.slot, false))
            }
            (Some(e), Some(n)) => {
                // The new element replaces the old one (same value slot
                // here: the whole value is written), starts referenced, and
                // the old node is freed.
                l.model.set_ref(n);
                l.model.push_free(e.node);
                self.slots.insert(key.into(), Elem { slot: e.slot, node: n });
                Ok((e.slot, false))
            }
            (None, Some(n)) => {
                // Every element holds a node, so a slot is free.
                let slot = self.take_slot().expect("LRU nodes bound the elements");
                self.slots.insert(key.into(), Elem { slot, node: n });
                Ok((slot, true))
            }
            // Only BPF_EXIST takes no node, and without an element it was
            // refused above.
            (_, None) => Err(-ENOENT),
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.slots.remove(key) {
            Some(e) => {
                self.free.push(e.slot);
                if let Some(l) = &mut self.lru {
                    l.model.push_free(e.node);
                }
                true
            }
            None => false,
        }
    }

    /// Whether `key` has an element, as user space asks (no LRU mark).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.slots.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every key with its slot, in slot order: the order the keys' values
    /// are stored in, which depends only on the operations the map has
    /// seen, never on the table's hash secrets.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], usize)> {
        let mut all: Vec<(&[u8], usize)> =
            self.slots.iter().map(|(k, e)| (&k[..], e.slot)).collect();
        all.sort_unstable_by_key(|&(_, slot)| slot);
        all.into_iter()
    }
}

#[cfg(test)]
mod tests {
    //! Expected contents are worked out by hand from the kernel's
    //! algorithm (bpf_lru_list.c as summarised in `super::lru`); each test
    //! also states what a strict least-recently-used map would have held.
    use super::*;
    use crate::maps::BPF_ANY;
    use std::hash::BuildHasher;

    fn keys(h: &HashIndex) -> Vec<u8> {
        let mut k: Vec<u8> = h.iter().map(|(k, _)| k[0]).collect();
        k.sort();
        k
    }

    fn put(h: &mut HashIndex, key: u8, flags: u64, cpu: usize) -> Result<bool, i64> {
        h.insert(&[key], flags, cpu).map(|(_, fresh)| fresh)
    }

    /// LRU_HASH, 4 entries, 1 CPU: target_free = clamp(4/1/2, 1, 128) = 2.
    /// Inserting a, b, c, d on CPU 0:
    /// - a: the local free list is empty, so a refill moves 2 of the 4
    ///   global free nodes to it; a takes one (pending: a).
    /// - b: takes the other (pending: b a).
    /// - c: refill flushes the pending list oldest first onto the front
    ///   of inactive (inactive: b a), rotation finds no reference bit,
    ///   and the last 2 global free nodes move over; c is pending.
    /// - d: pending: d c. The map is full, the free lists are empty.
    fn full_of_abcd(percpu_values: bool) -> HashIndex {
        let mut h = HashIndex::new_lru(4, 1, false, percpu_values);
        for k in *b"abcd" {
            assert_eq!(put(&mut h, k, BPF_ANY, 0), Ok(true));
        }
        h
    }

    #[test]
    fn a_refill_evicts_a_batch_of_target_free() {
        // e: refill flushes c then d (inactive: d c b a), rotation moves
        // nothing, the global free list is empty, so the shrink evicts
        // target_free = 2 unreferenced nodes from the tail: a and b.
        // Strict LRU would have evicted a alone: b c d e.
        let mut h = full_of_abcd(false);
        assert_eq!(put(&mut h, b'e', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"cde");
        // f takes the second node of that batch: nothing more goes.
        assert_eq!(put(&mut h, b'f', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"cdef");
    }

    #[test]
    fn referenced_elements_survive_regardless_of_recency() {
        // Lookups of b then a set both reference bits. e: refill flushes
        // (inactive: d c b a); the inactive rotation walks from the tail,
        // moving a and b (referenced) to active; the shrink then evicts
        // the 2 unreferenced tail nodes c and d.
        // Strict LRU (recency c, d, b, a) would have evicted c alone.
        let mut h = full_of_abcd(false);
        assert!(h.find(b"b").is_some());
        assert!(h.find(b"a").is_some());
        assert_eq!(put(&mut h, b'e', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"abe");
    }

    #[test]
    fn lookups_from_user_space_set_no_reference_bit() {
        // `contains` is the syscall lookup: as if nothing was looked up,
        // e evicts a and b as in a_refill_evicts_a_batch_of_target_free.
        let mut h = full_of_abcd(false);
        assert!(h.contains(b"a") && h.contains(b"b"));
        assert_eq!(put(&mut h, b'e', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"cde");
    }

    #[test]
    fn updating_a_present_key_of_a_full_map_evicts() {
        // htab_lru_map_update_elem pops a node before it looks for the
        // key: the refill evicts a and b, so a is no longer there and is
        // inserted anew. Strict LRU updates a in place and evicts nothing.
        let mut h = full_of_abcd(false);
        assert_eq!(put(&mut h, b'a', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"acd");
    }

    #[test]
    fn a_refused_update_still_evicts() {
        // BPF_NOEXIST on c, present: the pop evicts a and b first, then
        // check_flags refuses with -EEXIST and the node goes back to the
        // local free list. Strict LRU: -EEXIST, a b c d untouched.
        let mut h = full_of_abcd(false);
        assert_eq!(put(&mut h, b'c', BPF_NOEXIST, 0), Err(-EEXIST));
        assert_eq!(keys(&h), b"cd");
        // The two free local nodes take e and f without evicting.
        assert_eq!(put(&mut h, b'e', BPF_ANY, 0), Ok(true));
        assert_eq!(put(&mut h, b'f', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"cdef");
    }

    #[test]
    fn a_replaced_element_starts_referenced() {
        // 4 entries, 1 CPU, target_free 2.
        // - a, b: one refill (global free 4 -> 2), pending: b a, local 0.
        // - update a: the pop refills: flush a, b (inactive: b a), take the
        //   last 2 global nodes; a' takes one (pending: a', local 1); the
        //   old a leaves inactive for the global free list (global 1) and
        //   a' is marked referenced.
        // - c takes the local node (pending: c a', local 0).
        // - d: refill flushes a' (referenced: to active) then c (inactive:
        //   c b); no rotation moves anything; 1 global node moves over and
        //   the shrink evicts 1 more: b, the inactive tail. d pending.
        // - e takes the second local node (pending: e d).
        // - f: refill flushes d, e (inactive: e d c, active: a'); inactive
        //   is not below active, the inactive rotation finds no reference
        //   bit; the shrink evicts the 2 tail nodes c and d.
        // Left: a' e f. Strict LRU (e evicts b, then f evicts a, the least
        // recently written) would hold c d e f.
        let mut h = HashIndex::new_lru(4, 1, false, false);
        for k in *b"ab" {
            assert_eq!(put(&mut h, k, BPF_ANY, 0), Ok(true));
        }
        assert_eq!(put(&mut h, b'a', BPF_ANY, 0), Ok(false));
        for k in *b"cd" {
            assert_eq!(put(&mut h, k, BPF_ANY, 0), Ok(true));
        }
        assert_eq!(keys(&h), b"acd");
        for k in *b"ef" {
            assert_eq!(put(&mut h, k, BPF_ANY, 0), Ok(true));
        }
        assert_eq!(keys(&h), b"aef");
    }

    #[test]
    fn percpu_values_update_in_place_without_a_node_under_bpf_exist() {
        // LRU_PERCPU_HASH: BPF_EXIST takes no node, so nothing is evicted;
        // a is updated in place and marked referenced. e: the rotation
        // moves a to active, the shrink evicts b and c.
        // Strict LRU (recency b, c, d, a) would have evicted b alone.
        let mut h = full_of_abcd(true);
        assert_eq!(put(&mut h, b'a', BPF_EXIST, 0), Ok(false));
        assert_eq!(keys(&h), b"abcd");
        assert_eq!(put(&mut h, b'e', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"ade");
        // With BPF_ANY a node is taken first: on a full map that evicts.
        let mut h = full_of_abcd(true);
        assert_eq!(put(&mut h, b'a', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"acd");
    }

    #[test]
    fn no_common_lru_gives_each_cpu_its_share() {
        // BPF_F_NO_COMMON_LRU, 3 entries, 2 CPUs: max_entries rounds up to
        // 4, 2 nodes per CPU. a b on CPU 0 fill CPU 0's list (inactive:
        // b a). c on CPU 0: its free list is empty, so the shrink (up to
        // PERCPU_FREE_TARGET = 4) evicts a and b, though CPU 1's nodes are
        // free. Strict LRU with room for 3 would hold a b c.
        let mut h = HashIndex::new_lru(3, 2, true, false);
        assert_eq!(h.capacity(), 4);
        for k in *b"abc" {
            assert_eq!(put(&mut h, k, BPF_ANY, 0), Ok(true));
        }
        assert_eq!(keys(&h), b"c");
        for k in *b"de" {
            assert_eq!(put(&mut h, k, BPF_ANY, 1), Ok(true));
        }
        assert_eq!(keys(&h), b"cde");
        // Deleting d gives its node back to CPU 1, not to CPU 0: f on CPU
        // 0 (free list now holds 1 node: the other evicted one) fits, g on
        // CPU 0 then shrinks CPU 0's list (inactive: f c): c and f go.
        assert!(h.remove(b"d"));
        assert_eq!(put(&mut h, b'f', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"cef");
        assert_eq!(put(&mut h, b'g', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"eg");
    }

    #[test]
    fn a_cpu_steals_when_the_lists_are_empty() {
        // Common LRU, 2 entries, 3 CPUs: target_free = clamp(2/3/2, 1, 128)
        // = 1. a on CPU 0 (refill: 1 node; pending0: a), b on CPU 1
        // (refill: the last node; pending1: b). Every node is pending.
        // A lookup marks a referenced.
        // c on CPU 2: its refill flushes nothing (pending2 is empty), the
        // LRU list is empty and so is its free list, so the shrink frees
        // nothing and CPU 2 steals, round robin from next_steal = 2: CPU 2
        // has nothing; CPU 0 has no free node and no unreferenced pending
        // one, so the forced pass takes its oldest pending node: a is
        // evicted although referenced. Strict LRU would evict b.
        let mut h = HashIndex::new_lru(2, 3, false, false);
        assert_eq!(put(&mut h, b'a', BPF_ANY, 0), Ok(true));
        assert_eq!(put(&mut h, b'b', BPF_ANY, 1), Ok(true));
        assert!(h.find(b"a").is_some());
        assert_eq!(put(&mut h, b'c', BPF_ANY, 2), Ok(true));
        assert_eq!(keys(&h), b"bc");
        // Stealing went on to CPU 1 for next time (next_steal = 1). d on
        // CPU 2: the refill flushes c (inactive: c) and evicts it.
        assert_eq!(put(&mut h, b'd', BPF_ANY, 2), Ok(true));
        assert_eq!(keys(&h), b"bd");
        // Deleting b (pending on CPU 1) puts its node on CPU 1's local
        // free list. e on CPU 2: the refill flushes d and evicts it. f on
        // CPU 0: its pending list is empty (a was stolen), the LRU list
        // and the global free list too, so CPU 0 steals, from its own
        // next_steal = 0 (nothing), then CPU 1: the free node. e stays.
        assert!(h.remove(b"b"));
        assert_eq!(put(&mut h, b'e', BPF_ANY, 2), Ok(true));
        assert_eq!(keys(&h), b"e");
        assert_eq!(put(&mut h, b'f', BPF_ANY, 0), Ok(true));
        assert_eq!(keys(&h), b"ef");
    }

    /// The most keys that share one bucket of a table of `buckets`
    /// (a power of two) under `hash`: where std's `HashMap` (hashbrown)
    /// starts a key's probe (`hash & (buckets - 1)`).
    fn max_bucket_load(keys: &[Vec<u8>], hash: impl Fn(&[u8]) -> u64, buckets: u64) -> usize {
        let mut load = std::collections::HashMap::<u64, usize>::new();
        for k in keys {
            *load.entry(hash(k) & (buckets - 1)).or_default() += 1;
        }
        load.into_values().max().unwrap_or(0)
    }

    /// Keys a hostile program would choose: each set collides completely
    /// under a simple unkeyed hash. A lookup's cost is the probe run from
    /// its key's bucket (keys compared: those in the run whose 7-bit tag
    /// matches), so the bound is on the keys sharing a bucket. 4096 keys in
    /// the 8192 buckets std's table uses for them: with a hash the program
    /// cannot predict, the chance that 17 share any bucket is at most
    /// 8192 * C(4096, 17) / 8192^17 < 2e-13, and every one is found.
    #[test]
    fn keys_chosen_to_collide_under_a_simple_hash_spread_out() {
        const N: usize = 4096;
        const BUCKETS: u64 = 8192;
        const BOUND: usize = 16;
        // IPv6 addresses with a zero interface id, differing in the /64
        // prefix: the high word is zero, so the same folded multiply
        // without secrets (both zero) hashes every one of them to 0.
        let v6: Vec<Vec<u8>> = (0..N as u64)
            .map(|i| {
                let mut k = (0x2001_0db8_0000_0000 | i << 8).to_be_bytes().to_vec();
                k.extend_from_slice(&[0; 8]);
                k
            })
            .collect();
        // IPv4 addresses 8192 apart: the same bucket under the key taken
        // as an integer modulo the table size (an identity hash).
        let v4: Vec<Vec<u8>> =
            (0..N as u32).map(|i| (i * BUCKETS as u32).to_le_bytes().to_vec()).collect();
        let unkeyed = KeyHash::with_seeds([0, 0]);
        assert_eq!(max_bucket_load(&v6, |k| unkeyed.hash_one(k), BUCKETS), N);
        let identity = |k: &[u8]| u32::from_le_bytes(k.try_into().expect("4")) as u64;
        assert_eq!(max_bucket_load(&v4, identity, BUCKETS), N);

        for keys in [&v6, &v4] {
            let mut h = HashIndex::new(N);
            for k in keys {
                assert!(matches!(h.insert(k, BPF_ANY, 0), Ok((_, true))));
            }
            let secret = h.slots.hasher().clone();
            let load = max_bucket_load(keys, |k| secret.hash_one(k), BUCKETS);
            assert!(load <= BOUND, "{load} keys share a bucket");
            // No two keys share a whole 64-bit hash either.
            let mut all: Vec<u64> = keys.iter().map(|k| secret.hash_one(k)).collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), N);
            for (i, k) in keys.iter().enumerate() {
                assert!(h.find(k).is_some(), "key {i}");
            }
        }
    }

    #[test]
    fn elements_are_listed_in_slot_order() {
        // Slots are handed out in insertion order, and a delete's slot is
        // reused first: the listing follows the slots, whatever the hash.
        let mut h = HashIndex::new(8);
        for k in *b"dcba" {
            assert_eq!(put(&mut h, k, BPF_ANY, 0), Ok(true));
        }
        assert!(h.remove(b"c"));
        assert_eq!(put(&mut h, b'e', BPF_ANY, 0), Ok(true));
        let listed: Vec<(u8, usize)> = h.iter().map(|(k, s)| (k[0], s)).collect();
        assert_eq!(listed, [(b'd', 0), (b'e', 1), (b'b', 2), (b'a', 3)]);
    }
}
