//! Key index for hash maps, with LRU eviction for the LRU types.
//!
//! The kernel's preallocated hash table refuses a new key once it holds
//! `max_entries` (-E2BIG, `htab_map_update_elem`). LRU maps instead evict:
//! the kernel's LRU (`kernel/bpf/bpf_lru_list.c`) is approximate, with
//! per-CPU local lists and batch shrinking, so which entry it evicts under
//! pressure can differ from the strict least-recently-used entry modelled
//! here. Results that depend on eviction from a full LRU map are therefore
//! only as exact as that approximation; the diff reports say so.

use std::collections::{BTreeMap, HashMap};

use super::{BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, ENOENT};

#[derive(Debug, Clone)]
pub struct HashIndex {
    slots: HashMap<Box<[u8]>, usize>,
    /// Slots given back by deletes, reused first.
    free: Vec<usize>,
    /// Slots below this have been handed out at least once: slots are
    /// taken lazily, so a huge `max_entries` costs nothing up front.
    next: usize,
    capacity: usize,
    lru: Option<Lru>,
}

#[derive(Debug, Clone, Default)]
struct Lru {
    tick: u64,
    by_tick: BTreeMap<u64, Box<[u8]>>,
    tick_of: HashMap<Box<[u8]>, u64>,
}

impl Lru {
    fn touch(&mut self, key: &[u8]) {
        self.tick += 1;
        if let Some(old) = self.tick_of.insert(key.into(), self.tick) {
            self.by_tick.remove(&old);
        }
        self.by_tick.insert(self.tick, key.into());
    }
    fn forget(&mut self, key: &[u8]) {
        if let Some(t) = self.tick_of.remove(key) {
            self.by_tick.remove(&t);
        }
    }
    fn oldest(&self) -> Option<Box<[u8]>> {
        self.by_tick.values().next().cloned()
    }
}

impl HashIndex {
    pub fn new(capacity: usize, lru: bool) -> HashIndex {
        HashIndex {
            slots: HashMap::new(),
            free: Vec::new(),
            next: 0,
            capacity,
            lru: lru.then(Lru::default),
        }
    }

    pub fn find(&mut self, key: &[u8]) -> Option<usize> {
        let slot = *self.slots.get(key)?;
        if let Some(l) = &mut self.lru {
            l.touch(key);
        }
        Some(slot)
    }

    /// Finds or allocates the slot for `key` under the update `flags`;
    /// `true` when the slot is newly allocated.
    pub fn insert(&mut self, key: &[u8], flags: u64) -> Result<(usize, bool), i64> {
        if let Some(&slot) = self.slots.get(key) {
            if flags == BPF_NOEXIST {
                return Err(-EEXIST);
            }
            if let Some(l) = &mut self.lru {
                l.touch(key);
            }
            return Ok((slot, false));
        }
        if flags == BPF_EXIST {
            return Err(-ENOENT);
        }
        if self.slots.len() >= self.capacity {
            match &self.lru {
                Some(l) => {
                    let victim = l.oldest().ok_or(-E2BIG)?;
                    self.remove(&victim);
                }
                None => return Err(-E2BIG),
            }
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None if self.next < self.capacity => {
                self.next += 1;
                self.next - 1
            }
            None => return Err(-E2BIG),
        };
        self.slots.insert(key.into(), slot);
        if let Some(l) = &mut self.lru {
            l.touch(key);
        }
        Ok((slot, true))
    }

    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.slots.remove(key) {
            Some(slot) => {
                self.free.push(slot);
                if let Some(l) = &mut self.lru {
                    l.forget(key);
                }
                true
            }
            None => false,
        }
    }

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

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.slots.iter().map(|(k, s)| (&k[..], *s))
    }
}
