//! Map state as the engine keeps it, with the kernel's update semantics.
//!
//! Values live in one flat byte store per map, `stride` bytes per entry, so a
//! value pointer handed to the program is simply `map tag + slot * stride +
//! cpu * per_cpu_size`, checked on every access like any other region.
//! Semantics (flags, errors, when a full map refuses) follow
//! `kernel/bpf/arraymap.c`, `hashtab.c`, `lpm_trie.c` and `devmap.c`.

mod hash;
mod lpm;

pub use hash::HashIndex;
pub use lpm::LpmIndex;

use crate::program::{MapDef, MapType};
use serde::Serialize;

pub const BPF_ANY: u64 = 0;
pub const BPF_NOEXIST: u64 = 1;
pub const BPF_EXIST: u64 = 2;
pub const BPF_F_LOCK: u64 = 4;

pub const ENOENT: i64 = 2;
pub const E2BIG: i64 = 7;
pub const ENOMEM: i64 = 12;
pub const EEXIST: i64 = 17;
pub const EINVAL: i64 = 22;
pub const ENOSPC: i64 = 28;

/// Why an object's maps cannot be modelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("map '{name}': the engine does not model {ty}")]
    Unsupported { name: String, ty: String },
    #[error("map '{name}': {reason}")]
    Invalid { name: String, reason: String },
}

/// How entries are found.
#[derive(Debug, Clone)]
pub enum Index {
    /// ARRAY, PERCPU_ARRAY, DEVMAP, CPUMAP, XSKMAP, PROG_ARRAY: slot = key.
    /// `present` tracks which slots hold an entry (arrays: all).
    Array {
        present: Vec<bool>,
    },
    /// HASH, PERCPU_HASH, LRU variants, DEVMAP_HASH.
    Hash(HashIndex),
    Lpm(LpmIndex),
    /// RINGBUF: no entries; `used` bytes since nothing consumes records.
    Ringbuf {
        used: u64,
    },
    /// PERF_EVENT_ARRAY: no value storage.
    PerfEvents,
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub def: MapDef,
    pub index: Index,
    /// Bytes per entry (all CPUs).
    pub stride: usize,
    /// Bytes per CPU inside an entry (value size rounded up to 8 for per-CPU
    /// maps, as the kernel lays them out).
    pub per_cpu: usize,
    pub values: Vec<u8>,
    /// Program stores into these values fault (`.rodata`, DEVMAP/CPUMAP).
    pub read_only: bool,
}

/// All maps of one object, indexed as in `Object::maps`.
#[derive(Debug, Clone)]
pub struct MapSet {
    pub maps: Vec<MapState>,
    pub ncpus: usize,
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

impl MapState {
    pub fn new(def: &MapDef, ncpus: usize) -> Result<MapState, MapError> {
        let vs = def.value_size as usize;
        let n = def.max_entries as usize;
        let invalid = |reason: String| MapError::Invalid { name: def.name.clone(), reason };
        // Keep a hostile object from making us allocate without bound: the
        // kernel itself caps value sizes (KMALLOC_MAX_SIZE) and memory.
        const MAX_BYTES: usize = 1 << 30;
        let (per_cpu, stride) =
            if def.map_type.is_percpu() { (round8(vs), round8(vs) * ncpus) } else { (vs, vs) };
        let need_key = |size: u32| -> Result<(), MapError> {
            if def.key_size != size {
                return Err(invalid(format!(
                    "{} needs key_size {size}, has {}",
                    def.map_type.name(),
                    def.key_size
                )));
            }
            Ok(())
        };
        let index = match def.map_type {
            MapType::Array | MapType::PercpuArray => {
                need_key(4)?;
                Index::Array { present: vec![true; n] }
            }
            MapType::ProgArray | MapType::Devmap | MapType::Cpumap | MapType::Xskmap => {
                need_key(4)?;
                Index::Array { present: vec![false; n] }
            }
            MapType::Hash
            | MapType::PercpuHash
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::DevmapHash => {
                if def.key_size == 0 {
                    return Err(invalid("hash map with key_size 0".into()));
                }
                let lru = matches!(def.map_type, MapType::LruHash | MapType::LruPercpuHash);
                Index::Hash(HashIndex::new(n, lru))
            }
            MapType::LpmTrie => {
                if def.key_size < 5 || def.key_size > 4 + 256 {
                    return Err(invalid(format!(
                        "LPM_TRIE key_size {} must hold a 4-byte prefix length and 1..256 data bytes",
                        def.key_size
                    )));
                }
                Index::Lpm(LpmIndex::new((def.key_size - 4) as usize))
            }
            MapType::Ringbuf => Index::Ringbuf { used: 0 },
            MapType::PerfEventArray => Index::PerfEvents,
            MapType::Other(_) => {
                return Err(MapError::Unsupported {
                    name: def.name.clone(),
                    ty: def.map_type.name(),
                })
            }
        };
        let storage = match index {
            Index::Ringbuf { .. } | Index::PerfEvents => 0,
            _ => stride.checked_mul(n).filter(|b| *b <= MAX_BYTES).ok_or_else(|| {
                invalid(format!(
                    "{n} entries of {stride} bytes exceed the engine's 1 GiB map limit"
                ))
            })?,
        };
        let mut values = vec![0u8; storage];
        if let Some(init) = &def.initial_data {
            let len = init.len().min(values.len());
            values[..len].copy_from_slice(&init[..len]);
        }
        Ok(MapState {
            read_only: def.read_only
                || matches!(def.map_type, MapType::Devmap | MapType::DevmapHash | MapType::Cpumap),
            def: def.clone(),
            index,
            stride,
            per_cpu,
            values,
        })
    }

    /// Slot for a key, if present.
    pub fn find(&mut self, key: &[u8]) -> Option<usize> {
        match &mut self.index {
            Index::Array { present } => {
                let i = u32::from_le_bytes(key[..4].try_into().ok()?) as usize;
                (i < present.len() && present[i]).then_some(i)
            }
            Index::Hash(h) => h.find(key),
            Index::Lpm(l) => l.longest_match(key),
            Index::Ringbuf { .. } | Index::PerfEvents => None,
        }
    }

    /// Inserts or overwrites `key` with `value` (all CPUs' values for per-CPU
    /// maps when `all_cpus`, else the given CPU's). Returns 0 or -errno.
    pub fn update(&mut self, key: &[u8], value: &[u8], flags: u64, cpu: Option<usize>) -> i64 {
        if flags & !BPF_F_LOCK > BPF_EXIST {
            return -EINVAL;
        }
        let flags = flags & !BPF_F_LOCK;
        let (slot, fresh) = match &mut self.index {
            Index::Array { present } => {
                let i = u32::from_le_bytes(key[..4].try_into().expect("key size checked")) as usize;
                if i >= present.len() {
                    return -E2BIG;
                }
                // array_map_update_elem: elements always exist.
                if flags == BPF_NOEXIST && present[i] {
                    return -EEXIST;
                }
                let fresh = !present[i];
                present[i] = true;
                (i, fresh && !matches!(self.def.map_type, MapType::Array | MapType::PercpuArray))
            }
            Index::Hash(h) => match h.insert(key, flags) {
                Ok(slot) => slot,
                Err(e) => return e,
            },
            Index::Lpm(l) => match l.insert(key, flags, self.def.max_entries as usize) {
                Ok(slot) => slot,
                Err(e) => return e,
            },
            Index::Ringbuf { .. } | Index::PerfEvents => return -EINVAL,
        };
        if fresh {
            // A new element starts zeroed on every CPU but the writer's
            // (hashtab.c pcpu_init_value); a reused slot must not leak the
            // deleted element's bytes.
            let base = slot * self.stride;
            self.values[base..base + self.stride].iter_mut().for_each(|b| *b = 0);
        }
        self.write_value(slot, value, cpu);
        0
    }

    fn write_value(&mut self, slot: usize, value: &[u8], cpu: Option<usize>) {
        let vs = self.def.value_size as usize;
        let base = slot * self.stride;
        match cpu {
            Some(c) if self.def.map_type.is_percpu() => {
                let at = base + c * self.per_cpu;
                self.values[at..at + vs].copy_from_slice(&value[..vs]);
            }
            _ if self.def.map_type.is_percpu() => {
                // From user space: one value per CPU, each rounded to 8.
                for c in 0..self.stride / self.per_cpu.max(1) {
                    let src = c * self.per_cpu;
                    let at = base + c * self.per_cpu;
                    if src + vs <= value.len() {
                        self.values[at..at + vs].copy_from_slice(&value[src..src + vs]);
                    } else {
                        self.values[at..at + vs].copy_from_slice(&value[..vs]);
                    }
                }
            }
            _ => self.values[base..base + vs].copy_from_slice(&value[..vs]),
        }
    }

    pub fn delete(&mut self, key: &[u8]) -> i64 {
        match &mut self.index {
            // array_map_delete_elem returns -EINVAL; PROG_ARRAY/DEVMAP clear.
            Index::Array { present } => {
                if matches!(self.def.map_type, MapType::Array | MapType::PercpuArray) {
                    return -EINVAL;
                }
                let i = u32::from_le_bytes(key[..4].try_into().expect("key size checked")) as usize;
                if i >= present.len() {
                    return -EINVAL;
                }
                present[i] = false;
                0
            }
            Index::Hash(h) => {
                if h.remove(key) {
                    0
                } else {
                    -ENOENT
                }
            }
            Index::Lpm(l) => {
                if l.remove(key) {
                    0
                } else {
                    -ENOENT
                }
            }
            Index::Ringbuf { .. } | Index::PerfEvents => -EINVAL,
        }
    }

    /// Every entry, sorted by key, with the value bytes of each CPU.
    pub fn entries(&self) -> Vec<MapEntry> {
        let vs = self.def.value_size as usize;
        let value_of = |slot: usize| -> Vec<Vec<u8>> {
            let base = slot * self.stride;
            if self.def.map_type.is_percpu() {
                (0..self.stride / self.per_cpu.max(1))
                    .map(|c| self.values[base + c * self.per_cpu..][..vs].to_vec())
                    .collect()
            } else {
                vec![self.values[base..base + vs].to_vec()]
            }
        };
        let mut out: Vec<MapEntry> = match &self.index {
            Index::Array { present } => present
                .iter()
                .enumerate()
                .filter(|(_, p)| **p)
                .map(|(i, _)| MapEntry {
                    key: (i as u32).to_le_bytes().to_vec(),
                    values: value_of(i),
                })
                .collect(),
            Index::Hash(h) => h
                .iter()
                .map(|(k, slot)| MapEntry { key: k.to_vec(), values: value_of(slot) })
                .collect(),
            Index::Lpm(l) => {
                l.iter().map(|(k, slot)| MapEntry { key: k, values: value_of(slot) }).collect()
            }
            Index::Ringbuf { .. } | Index::PerfEvents => Vec::new(),
        };
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// One entry for dumps and diffs. `values` has one element per CPU for
/// per-CPU maps, else exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapEntry {
    #[serde(with = "crate::util::hex_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "crate::util::hex_vec")]
    pub values: Vec<Vec<u8>>,
}

impl MapSet {
    pub fn new(defs: &[MapDef], ncpus: usize) -> Result<MapSet, MapError> {
        Ok(MapSet {
            maps: defs.iter().map(|d| MapState::new(d, ncpus)).collect::<Result<_, _>>()?,
            ncpus,
        })
    }

    pub fn by_name(&mut self, name: &str) -> Option<&mut MapState> {
        self.maps.iter_mut().find(|m| m.def.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::MapOrigin;

    pub(crate) fn def(t: MapType, k: u32, v: u32, n: u32) -> MapDef {
        MapDef {
            name: "m".into(),
            map_type: t,
            key_size: k,
            value_size: v,
            max_entries: n,
            flags: 0,
            origin: MapOrigin::BtfMaps,
            initial_data: None,
            read_only: false,
        }
    }

    #[test]
    fn array_semantics() {
        let mut m = MapState::new(&def(MapType::Array, 4, 8, 2), 1).unwrap();
        assert_eq!(m.find(&1u32.to_le_bytes()), Some(1));
        assert_eq!(m.find(&2u32.to_le_bytes()), None);
        assert_eq!(m.update(&2u32.to_le_bytes(), &[0; 8], BPF_ANY, None), -E2BIG);
        assert_eq!(m.update(&0u32.to_le_bytes(), &[1; 8], BPF_NOEXIST, None), -EEXIST);
        assert_eq!(m.update(&0u32.to_le_bytes(), &[1; 8], 8, None), -EINVAL);
        assert_eq!(m.update(&0u32.to_le_bytes(), &[1; 8], BPF_EXIST, None), 0);
        assert_eq!(m.delete(&0u32.to_le_bytes()), -EINVAL);
        assert_eq!(m.entries()[0].values[0], vec![1; 8]);
    }

    #[test]
    fn hash_full_is_e2big() {
        let mut m = MapState::new(&def(MapType::Hash, 2, 4, 2), 1).unwrap();
        assert_eq!(m.update(b"aa", &[1; 4], BPF_ANY, None), 0);
        assert_eq!(m.update(b"bb", &[2; 4], BPF_NOEXIST, None), 0);
        assert_eq!(m.update(b"cc", &[3; 4], BPF_ANY, None), -E2BIG);
        assert_eq!(m.update(b"aa", &[4; 4], BPF_NOEXIST, None), -EEXIST);
        assert_eq!(m.update(b"cc", &[4; 4], BPF_EXIST, None), -ENOENT);
        assert_eq!(m.update(b"aa", &[5; 4], BPF_EXIST, None), 0);
        assert_eq!(m.delete(b"bb"), 0);
        assert_eq!(m.delete(b"bb"), -ENOENT);
        assert_eq!(m.update(b"cc", &[3; 4], BPF_ANY, None), 0);
        let e = m.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].key, b"aa");
        assert_eq!(e[0].values[0], vec![5; 4]);
    }

    #[test]
    fn lru_evicts_least_recent() {
        let mut m = MapState::new(&def(MapType::LruHash, 1, 1, 2), 1).unwrap();
        assert_eq!(m.update(b"a", &[1], BPF_ANY, None), 0);
        assert_eq!(m.update(b"b", &[2], BPF_ANY, None), 0);
        assert!(m.find(b"a").is_some()); // touch a
        assert_eq!(m.update(b"c", &[3], BPF_ANY, None), 0);
        assert!(m.find(b"b").is_none(), "b was least recently used");
        assert!(m.find(b"a").is_some());
    }

    #[test]
    fn percpu_layout() {
        let mut m = MapState::new(&def(MapType::PercpuArray, 4, 4, 1), 2).unwrap();
        assert_eq!(m.per_cpu, 8);
        assert_eq!(m.stride, 16);
        assert_eq!(m.update(&0u32.to_le_bytes(), &[7; 4], BPF_ANY, Some(1)), 0);
        assert_eq!(m.entries()[0].values, vec![vec![0; 4], vec![7; 4]]);
    }
}
