//! Map state as the engine keeps it, with the kernel's update semantics.
//!
//! Values live in one flat byte store per map, `stride` bytes per entry, so a
//! value pointer handed to the program is simply `map tag + slot * stride +
//! cpu * per_cpu_size`, checked on every access like any other region.
//! Semantics (flags, errors, when a full map refuses) follow
//! `kernel/bpf/arraymap.c`, `hashtab.c`, `lpm_trie.c` and `devmap.c`.

mod hash;
mod keyhash;
pub mod ledger;
mod lpm;
mod lru;

pub use hash::HashIndex;
pub use lpm::LpmIndex;

use serde::Serialize;
use xdpqual_isa::ByteOrder;
use xdpqual_object::{MapDef, MapType};

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
    /// Refused as the kernel's `map_create` would refuse it (or over the
    /// engine's map memory cap, reported as the kernel's ENOMEM).
    #[error("map '{name}': refused with {errno}: {reason}")]
    Refused { name: String, errno: &'static str, reason: String },
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
    /// Bytes charged against the map memory cap when the map was created.
    fixed_bytes: u64,
    /// Bytes charged per element of a map that grows per element.
    elem_bytes: u64,
    /// The program's byte order: an array index, an LPM key's prefixlen
    /// and a map-in-map or devmap value's u32 are host-order integers in
    /// the kernel (arraymap.c `array_map_lookup_elem` reads `*(u32 *)key`,
    /// `struct bpf_lpm_trie_key_hdr` has a host-order `prefixlen`).
    pub order: ByteOrder,
}

/// All maps of one object, indexed as in `Object::maps`.
#[derive(Debug)]
pub struct MapSet {
    /// The object's maps first (indexed as in `Object::maps`), then the
    /// inner maps made for map-in-map slots ([`MapSet::add_inner`]), in
    /// the order they were made. A map-in-map slot holds the index of its
    /// inner map here; a lookup in the outer map hands the program a map
    /// reference to it (kernel/bpf/arraymap.c `array_of_map_lookup_elem`,
    /// hashtab.c `htab_of_map_lookup_elem` return the inner `struct
    /// bpf_map *`, not a pointer to a value).
    pub maps: Vec<MapState>,
    /// How many of `maps` are the object's own.
    pub objects: usize,
    pub ncpus: usize,
    /// The map memory cap (`EngineConfig::map_memory_cap`).
    pub cap: u64,
    /// Bytes this set holds in the process-wide [`ledger`], given back on
    /// drop.
    reserved: u64,
}

impl Clone for MapSet {
    fn clone(&self) -> MapSet {
        // A copy of maps already admitted (the snapshot `reset_maps`
        // returns to) holds as many bytes again: counted, not refused.
        ledger::reserve_unchecked(self.reserved);
        MapSet {
            maps: self.maps.clone(),
            objects: self.objects,
            ncpus: self.ncpus,
            cap: self.cap,
            reserved: self.reserved,
        }
    }
}

impl Drop for MapSet {
    fn drop(&mut self) {
        ledger::release(self.reserved);
    }
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// The engine's default map memory cap (`EngineConfig::map_memory_cap`).
pub const DEFAULT_MAP_MEMORY_CAP: u64 = 1 << 30;

/// `KMALLOC_MAX_SIZE` on x86-64: `1 << (MAX_PAGE_ORDER + PAGE_SHIFT)` =
/// 2^(10+12) = 4 MiB (include/linux/slab.h, include/linux/mmzone.h).
pub const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// `PCPU_MIN_UNIT_SIZE` (include/linux/percpu.h): 32 KiB, the bound on a
/// per-CPU value (arraymap.c / hashtab.c alloc checks).
pub const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;
/// `sizeof(struct htab_elem)` on x86-64 (kernel/bpf/hashtab.c): a 16-byte
/// list node, a 24-byte LRU node union, the u32 hash, key aligned to 8.
pub const HTAB_ELEM_SIZE: u64 = 48;
/// `sizeof(struct bucket)` (kernel/bpf/hashtab.c): list head + lock.
const HTAB_BUCKET_SIZE: u64 = 16;
/// `BPF_F_NO_PREALLOC` (include/uapi/linux/bpf.h).
pub const BPF_F_NO_PREALLOC: u32 = 1;
/// `BPF_F_NO_COMMON_LRU` (include/uapi/linux/bpf.h): an LRU map with one
/// LRU list per CPU instead of a common one.
pub const BPF_F_NO_COMMON_LRU: u32 = 2;
/// The CPU updates from user space run on: the diff pins its thread, which
/// fills the kernel's maps and runs BPF_PROG_TEST_RUN, to CPU 0
/// (`xdpqual::diff::pin_to_cpu0`), and the live backend pins likewise. An
/// LRU map's update takes its node on that CPU's lists.
pub const SYSCALL_CPU: usize = 0;
/// `BPF_F_INNER_MAP` (include/uapi/linux/bpf.h): an inner ARRAY template
/// that lets inner arrays differ in max_entries.
pub const BPF_F_INNER_MAP: u32 = 1 << 12;
/// Page size of the machines we model (ringbuf sizes are page multiples).
const PAGE_SIZE: u64 = 4096;

/// What the kernel's `map_create` answers, or the engine's own cap.
fn refuse(def: &MapDef, errno: &'static str, reason: String) -> MapError {
    MapError::Refused { name: def.name.clone(), errno, reason }
}

/// The kernel's `map_alloc_check` / `map_alloc` size rules for the types the
/// engine models (kernel/bpf/arraymap.c `array_map_alloc_check`,
/// `fd_array_map_alloc_check`; hashtab.c `htab_map_alloc_check`,
/// `htab_map_alloc`; lpm_trie.c `trie_alloc`; ringbuf.c `ringbuf_map_alloc`).
/// Runs before anything is allocated.
fn kernel_checks(def: &MapDef) -> Result<(), MapError> {
    let (ks, vs, n) = (def.key_size as u64, def.value_size as u64, def.max_entries as u64);
    let percpu = def.map_type.is_percpu();
    let einval = |r: String| Err(refuse(def, "EINVAL", r));
    let e2big = |r: String| Err(refuse(def, "E2BIG", r));
    match def.map_type {
        MapType::Array | MapType::PercpuArray | MapType::ProgArray => {
            if n == 0 || ks != 4 || vs == 0 {
                return einval(format!(
                    "an array needs max_entries > 0, key_size 4 and value_size > 0 (has {n}, {ks}, {vs})"
                ));
            }
            if def.map_type == MapType::ProgArray && vs != 4 {
                return einval(format!("PROG_ARRAY needs value_size 4, has {vs}"));
            }
            if vs > KMALLOC_MAX_SIZE {
                return e2big(format!(
                    "value_size {vs} is over KMALLOC_MAX_SIZE ({KMALLOC_MAX_SIZE})"
                ));
            }
            if percpu && round8(vs as usize) as u64 > PCPU_MIN_UNIT_SIZE {
                return e2big(format!(
                    "per-CPU value_size {vs} is over PCPU_MIN_UNIT_SIZE ({PCPU_MIN_UNIT_SIZE})"
                ));
            }
        }
        MapType::Hash
        | MapType::PercpuHash
        | MapType::LruHash
        | MapType::LruPercpuHash
        | MapType::DevmapHash => {
            if n == 0 || ks == 0 || vs == 0 {
                return einval(format!(
                    "a hash map needs max_entries, key_size and value_size > 0 (has {n}, {ks}, {vs})"
                ));
            }
            if ks + vs >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE {
                return e2big(format!(
                    "key_size {ks} + value_size {vs} is not below KMALLOC_MAX_SIZE - sizeof(struct htab_elem) ({})",
                    KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE
                ));
            }
            if percpu && round8(vs as usize) as u64 > PCPU_MIN_UNIT_SIZE {
                return e2big(format!(
                    "per-CPU value_size {vs} is over PCPU_MIN_UNIT_SIZE ({PCPU_MIN_UNIT_SIZE})"
                ));
            }
            // htab_map_alloc: max_entries above 2^31 would overflow the
            // power-of-two bucket count; the bucket array's byte size must
            // fit in a u32.
            if n > 1 << 31 || n.next_power_of_two() > u32::MAX as u64 / HTAB_BUCKET_SIZE {
                return e2big(format!(
                    "max_entries {n} needs more than U32_MAX / sizeof(struct bucket) buckets"
                ));
            }
        }
        MapType::LpmTrie => {
            // trie_alloc: LPM_KEY_SIZE_MIN/MAX, LPM_VAL_SIZE_MIN/MAX.
            if n == 0 || !(5..=4 + 256).contains(&ks) || vs == 0 {
                return einval(format!(
                    "LPM_TRIE needs max_entries > 0, key_size 5..260 (a 4-byte prefix length and 1..256 data bytes) and value_size > 0 (has {n}, {ks}, {vs})"
                ));
            }
            // LPM_VAL_SIZE_MAX: KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX -
            // sizeof(struct lpm_trie_node) (40 bytes on x86-64).
            if vs > KMALLOC_MAX_SIZE - 256 - 40 {
                return einval(format!("LPM_TRIE value_size {vs} is over LPM_VAL_SIZE_MAX"));
            }
        }
        MapType::Ringbuf => {
            if ks != 0 || vs != 0 || !n.is_power_of_two() || n % PAGE_SIZE != 0 {
                return einval(format!(
                    "RINGBUF needs key_size 0, value_size 0 and a power-of-2, page-aligned max_entries (has {ks}, {vs}, {n})"
                ));
            }
        }
        MapType::Devmap | MapType::Cpumap | MapType::Xskmap => {
            if n == 0 || ks != 4 || vs == 0 {
                return einval(format!(
                    "{} needs max_entries > 0, key_size 4 and value_size > 0 (has {n}, {ks}, {vs})",
                    def.map_type.name()
                ));
            }
        }
        // fd_array_map_alloc_check / fd_htab_map_alloc_check
        // (kernel/bpf/arraymap.c, hashtab.c): the value user space writes
        // is a 4-byte map fd; then the array or hash rules.
        MapType::ArrayOfMaps | MapType::HashOfMaps => {
            if vs != 4 {
                return einval(format!(
                    "{} needs value_size 4 (an inner map fd), has {vs}",
                    def.map_type.name()
                ));
            }
            let base = MapDef {
                map_type: if def.map_type == MapType::ArrayOfMaps {
                    MapType::Array
                } else {
                    MapType::Hash
                },
                ..def.clone()
            };
            kernel_checks(&base)?;
            // bpf_map_meta_alloc: the template must be a map the kernel
            // could create, and not itself a map-in-map.
            let Some(inner) = &def.inner else {
                return Err(MapError::Invalid {
                    name: def.name.clone(),
                    reason: format!(
                        "{} has no inner-map template (the kernel's map_create needs one as \
                         inner_map_fd, kernel/bpf/map_in_map.c bpf_map_meta_alloc)",
                        def.map_type.name()
                    ),
                });
            };
            if inner.map_type.is_map_in_map() {
                return einval("its inner-map template is itself a map-in-map; the kernel allows one level (bpf_map_meta_alloc)".into());
            }
            if matches!(inner.map_type, MapType::Other(_)) {
                return Err(MapError::Unsupported {
                    name: def.name.clone(),
                    ty: format!("{} as an inner map", inner.map_type.name()),
                });
            }
            kernel_checks(inner).map_err(|e| match e {
                MapError::Refused { errno, reason, .. } => MapError::Refused {
                    name: def.name.clone(),
                    errno,
                    reason: format!("inner-map template: {reason}"),
                },
                e => e,
            })?;
        }
        MapType::PerfEventArray | MapType::Other(_) => {}
    }
    Ok(())
}

impl MapState {
    pub fn new(def: &MapDef, ncpus: usize) -> Result<MapState, MapError> {
        Self::with_cap(def, ncpus, DEFAULT_MAP_MEMORY_CAP)
    }

    /// Builds a map whose up-front memory must fit in `cap` bytes. Every size
    /// is checked (kernel rules, then the cap) before anything is allocated.
    pub fn with_cap(def: &MapDef, ncpus: usize, cap: u64) -> Result<MapState, MapError> {
        kernel_checks(def)?;
        let vs = def.value_size as usize;
        let n = def.max_entries as usize;
        let invalid = |reason: String| MapError::Invalid { name: def.name.clone(), reason };
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
        let no_prealloc = def.flags & BPF_F_NO_PREALLOC != 0;
        // Bytes one element costs: its value storage plus, for keyed maps,
        // the kernel's element header and key (what `htab_map_alloc` sizes).
        let keyed_elem = (stride as u64)
            .saturating_add(round8(def.key_size as usize) as u64)
            .saturating_add(HTAB_ELEM_SIZE);
        // (bytes charged now, bytes charged per element as the map grows)
        let (fixed, per_elem) = match def.map_type {
            MapType::Array
            | MapType::PercpuArray
            | MapType::ProgArray
            | MapType::ArrayOfMaps
            | MapType::Devmap
            | MapType::Cpumap
            | MapType::Xskmap => ((stride as u64 + 1).saturating_mul(n as u64), 0),
            MapType::Hash
            | MapType::PercpuHash
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::HashOfMaps
            | MapType::DevmapHash
                if !no_prealloc =>
            {
                (keyed_elem.saturating_mul(n as u64), 0)
            }
            MapType::Hash
            | MapType::PercpuHash
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::HashOfMaps
            | MapType::DevmapHash
            | MapType::LpmTrie => (0, keyed_elem),
            _ => (0, 0),
        };
        if fixed > cap {
            return Err(refuse(
                def,
                "ENOMEM",
                format!(
                    "{n} entries of {stride} bytes need {fixed} bytes, more than the {} the map memory cap leaves for this map (EngineConfig::map_memory_cap)",
                    crate::budget::show_limit(crate::budget::Resource::AllocBytes, cap)
                ),
            ));
        }
        let index = match def.map_type {
            MapType::Array | MapType::PercpuArray => {
                need_key(4)?;
                Index::Array { present: vec![true; n] }
            }
            // An ARRAY_OF_MAPS slot holds the engine index of its inner map
            // (4 bytes), or nothing.
            MapType::ProgArray
            | MapType::Devmap
            | MapType::Cpumap
            | MapType::Xskmap
            | MapType::ArrayOfMaps => {
                need_key(4)?;
                Index::Array { present: vec![false; n] }
            }
            MapType::Hash
            | MapType::HashOfMaps
            | MapType::PercpuHash
            | MapType::LruHash
            | MapType::LruPercpuHash
            | MapType::DevmapHash => {
                if matches!(def.map_type, MapType::LruHash | MapType::LruPercpuHash) {
                    Index::Hash(HashIndex::new_lru(
                        n,
                        ncpus,
                        def.flags & BPF_F_NO_COMMON_LRU != 0,
                        def.map_type == MapType::LruPercpuHash,
                    ))
                } else {
                    Index::Hash(HashIndex::new(n))
                }
            }
            MapType::LpmTrie => Index::Lpm(LpmIndex::new((def.key_size - 4) as usize)),
            MapType::Ringbuf => Index::Ringbuf { used: 0 },
            MapType::PerfEventArray => Index::PerfEvents,
            MapType::Other(_) => {
                return Err(MapError::Unsupported {
                    name: def.name.clone(),
                    ty: def.map_type.name(),
                })
            }
        };
        // Arrays hold every slot from the start (the kernel's do too);
        // keyed maps grow their value store as slots are taken (`update`).
        let storage = match index {
            Index::Array { .. } => stride * n,
            _ => 0,
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
            fixed_bytes: fixed,
            elem_bytes: per_elem,
            order: ByteOrder::Little,
        })
    }

    /// Bytes this map holds against the engine's map memory cap.
    pub fn mem_bytes(&self) -> u64 {
        let grown = match &self.index {
            Index::Hash(h) => h.len() as u64,
            Index::Lpm(l) => l.len() as u64,
            _ => 0,
        };
        self.fixed_bytes.saturating_add(grown.saturating_mul(self.elem_bytes))
    }

    /// Bytes one more element would add (0 for preallocated maps).
    pub fn growth_bytes(&self) -> u64 {
        self.elem_bytes
    }

    /// Sets the byte order host-order integers in keys and values have.
    pub fn set_byte_order(&mut self, order: ByteOrder) {
        self.order = order;
        if let Index::Lpm(l) = &mut self.index {
            l.order = order;
        }
    }

    /// An array-like map's index from the first four bytes of `key`.
    fn key_index(order: ByteOrder, key: &[u8]) -> Option<usize> {
        Some(order.u32_from(key.get(..4)?.try_into().ok()?) as usize)
    }

    /// Whether `key` has an element (no LRU touch).
    pub fn contains(&self, key: &[u8]) -> bool {
        match &self.index {
            Index::Hash(h) => h.contains(key),
            Index::Lpm(l) => l.contains(key),
            Index::Array { present } => {
                Self::key_index(self.order, key).is_some_and(|i| i < present.len())
            }
            _ => false,
        }
    }

    /// Slot for a key, if present.
    #[inline]
    pub fn find(&mut self, key: &[u8]) -> Option<usize> {
        let order = self.order;
        match &mut self.index {
            Index::Array { present } => {
                let i = Self::key_index(order, key)?;
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
        match self.update_slot(key, value, flags, cpu) {
            Ok(_) => 0,
            Err(e) => e,
        }
    }

    /// [`MapState::update`], telling which slot it wrote and whether the
    /// element is new: `Ok((slot, inserted))` or `Err(-errno)`.
    pub fn update_slot(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: Option<usize>,
    ) -> Result<(usize, bool), i64> {
        if flags & !BPF_F_LOCK > BPF_EXIST {
            return Err(-EINVAL);
        }
        // htab_lru_map_update_elem / __htab_lru_percpu_map_update_elem
        // refuse any flag above BPF_EXIST, BPF_F_LOCK included.
        if flags > BPF_EXIST
            && matches!(self.def.map_type, MapType::LruHash | MapType::LruPercpuHash)
        {
            return Err(-EINVAL);
        }
        let flags = flags & !BPF_F_LOCK;
        let order = self.order;
        let (slot, fresh) = match &mut self.index {
            Index::Array { present } => {
                let i = Self::key_index(order, key).expect("key size checked");
                if i >= present.len() {
                    return Err(-E2BIG);
                }
                // array_map_update_elem: elements always exist.
                if flags == BPF_NOEXIST && present[i] {
                    return Err(-EEXIST);
                }
                let fresh = !present[i];
                present[i] = true;
                (i, fresh && !matches!(self.def.map_type, MapType::Array | MapType::PercpuArray))
            }
            // A program's update runs on its CPU; one from user space on
            // the loading thread's.
            Index::Hash(h) => h.insert(key, flags, cpu.unwrap_or(SYSCALL_CPU))?,
            Index::Lpm(l) => l.insert(key, flags, self.def.max_entries as usize)?,
            Index::Ringbuf { .. } | Index::PerfEvents => return Err(-EINVAL),
        };
        let need = (slot + 1) * self.stride;
        if self.values.len() < need {
            // Keyed maps grow their value store as slots are taken; the
            // cap was checked before the element was admitted.
            // (`resize` grows the allocation geometrically.)
            self.values.resize(need, 0);
        }
        if fresh {
            // A new element starts zeroed on every CPU but the writer's
            // (hashtab.c pcpu_init_value); a reused slot must not leak the
            // deleted element's bytes.
            let base = slot * self.stride;
            self.values[base..base + self.stride].iter_mut().for_each(|b| *b = 0);
        }
        self.write_value(slot, value, cpu);
        Ok((slot, fresh))
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
        let order = self.order;
        match &mut self.index {
            // array_map_delete_elem returns -EINVAL; PROG_ARRAY/DEVMAP clear.
            Index::Array { present } => {
                if matches!(self.def.map_type, MapType::Array | MapType::PercpuArray) {
                    return -EINVAL;
                }
                let i = Self::key_index(order, key).expect("key size checked");
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

    /// Rebuilds an LRU map as if its current entries had been written into
    /// an empty map from user space in key order: the order in which the
    /// host backend fills the kernel's copy (`sparse_entries` is sorted),
    /// so both LRUs start in the same state and later evictions agree.
    /// Other maps are left as they are.
    pub fn relist_lru_in_key_order(&mut self) {
        if !matches!(self.def.map_type, MapType::LruHash | MapType::LruPercpuHash) {
            return;
        }
        let Index::Hash(h) = &self.index else { return };
        if h.is_empty() {
            return;
        }
        let entries = self.entries();
        self.index = Index::Hash(h.emptied());
        self.values.clear();
        for e in entries {
            // One value per CPU, each in its rounded slot, as user space
            // passes a per-CPU value.
            let mut v = Vec::with_capacity(self.stride);
            for c in &e.values {
                let at = v.len();
                v.extend_from_slice(c);
                v.resize(at + self.per_cpu, 0);
            }
            let rc = self.update(&e.key, &v, BPF_ANY, None);
            debug_assert_eq!(rc, 0, "an empty map takes back what it held");
        }
    }

    /// Every entry, sorted by key, with the value bytes of each CPU.
    pub fn entries(&self) -> Vec<MapEntry> {
        self.entries_where(false)
    }

    /// The entries less the slots of zeros that an ARRAY or PERCPU_ARRAY
    /// holds implicitly ([`MapType::has_implicit_zero_slots`]), sorted by
    /// key: the form the comparisons and the copies into a kernel use, so
    /// a huge array costs what its written slots cost. Other map types
    /// list every entry, a value of zeros included.
    pub fn sparse_entries(&self) -> Vec<MapEntry> {
        self.entries_where(self.def.map_type.has_implicit_zero_slots())
    }

    fn entries_where(&self, skip_zero_slots: bool) -> Vec<MapEntry> {
        let vs = self.def.value_size as usize;
        // The slot's value bytes on every CPU (one CPU for other maps).
        let zero = |slot: usize| {
            let base = slot * self.stride;
            let cpus =
                if self.def.map_type.is_percpu() { self.stride / self.per_cpu.max(1) } else { 1 };
            (0..cpus).all(|c| self.values[base + c * self.per_cpu..][..vs].iter().all(|b| *b == 0))
        };
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
                .filter(|(i, p)| **p && !(skip_zero_slots && zero(*i)))
                .map(|(i, _)| MapEntry {
                    key: self.order.u32_bytes(i as u32).to_vec(),
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

/// The writes that turn a map holding `before` into one holding `after`
/// (both [`MapState::sparse_entries`] of one map, so sorted by key): every
/// entry of `after` that is new or changed, and for a map with implicit
/// zero slots a slot of zeros for each key `before` listed and `after` does
/// not. How the map files reach a kernel: the kernel's copy starts where
/// `before` did, and a 33.5-million-entry array costs its written slots.
pub fn entry_writes(map_type: MapType, before: &[MapEntry], after: &[MapEntry]) -> Vec<MapEntry> {
    let mut out = Vec::new();
    let (mut b, mut a) = (before.iter().peekable(), after.iter().peekable());
    loop {
        let zeroed = |e: &MapEntry| MapEntry {
            key: e.key.clone(),
            values: e.values.iter().map(|v| vec![0; v.len()]).collect(),
        };
        match (b.peek(), a.peek()) {
            (Some(x), Some(y)) if x.key == y.key => {
                if x.values != y.values {
                    out.push((*y).clone());
                }
                b.next();
                a.next();
            }
            (Some(x), Some(y)) if x.key < y.key => {
                if map_type.has_implicit_zero_slots() {
                    out.push(zeroed(x));
                }
                b.next();
            }
            (Some(x), None) => {
                if map_type.has_implicit_zero_slots() {
                    out.push(zeroed(x));
                }
                b.next();
            }
            (_, Some(y)) => {
                out.push((*y).clone());
                a.next();
            }
            (None, None) => return out,
        }
    }
}

/// One entry for dumps and diffs. `values` has one element per CPU for
/// per-CPU maps, else exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapEntry {
    #[serde(with = "xdpqual_object::hex::hex_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "xdpqual_object::hex::hex_vec")]
    pub values: Vec<Vec<u8>>,
}

impl MapSet {
    pub fn new(defs: &[MapDef], ncpus: usize) -> Result<MapSet, MapError> {
        Self::with_cap(defs, ncpus, DEFAULT_MAP_MEMORY_CAP)
    }

    /// All maps of an object, together within `cap` bytes: each map is
    /// checked against what is left before it is allocated.
    pub fn with_cap(defs: &[MapDef], ncpus: usize, cap: u64) -> Result<MapSet, MapError> {
        Self::with_cap_order(defs, ncpus, cap, ByteOrder::Little)
    }

    /// [`MapSet::with_cap`] for a program of the given byte order.
    pub fn with_cap_order(
        defs: &[MapDef],
        ncpus: usize,
        cap: u64,
        order: ByteOrder,
    ) -> Result<MapSet, MapError> {
        let mut maps = Vec::with_capacity(defs.len());
        let mut used = 0u64;
        for d in defs {
            // The process-wide ledger first, so a map the process cannot
            // hold is refused before it is allocated.
            let left = cap.min(ledger::cap().saturating_sub(ledger::in_use())).saturating_sub(used);
            let m = MapState::with_cap(d, ncpus, left).map_err(|e| match e {
                MapError::Refused { name, errno, reason } if left < cap.saturating_sub(used) => {
                    MapError::Refused {
                        name,
                        errno,
                        reason: format!(
                            "{reason}; the process's maps already hold {} of its {} cap (XDPQUAL_MAP_MEMORY)",
                            ledger::in_use(),
                            ledger::cap()
                        ),
                    }
                }
                e => e,
            })?;
            used += m.mem_bytes();
            let mut m = m;
            m.set_byte_order(order);
            maps.push(m);
        }
        if let Err(in_use) = ledger::reserve(used) {
            // Another engine took the room between the check and here.
            return Err(MapError::Refused {
                name: defs.first().map(|d| d.name.clone()).unwrap_or_default(),
                errno: "ENOMEM",
                reason: format!(
                    "the object's maps need {used} bytes and the process's maps already hold {in_use} of its {} cap (XDPQUAL_MAP_MEMORY)",
                    ledger::cap()
                ),
            });
        }
        let mut set = MapSet { maps, objects: defs.len(), ncpus, cap, reserved: used };
        // Slots the object initialises statically, as libbpf's
        // `init_map_in_map_slots` does once every map exists.
        for (outer, d) in defs.iter().enumerate() {
            if !d.map_type.is_map_in_map() {
                continue;
            }
            for (slot, target) in &d.init_slots {
                let inner = defs.iter().position(|t| &t.name == target).ok_or_else(|| {
                    MapError::Invalid {
                        name: d.name.clone(),
                        reason: format!(
                            "slot {slot} names '{target}', which is not a map of the object"
                        ),
                    }
                })?;
                set.set_inner(outer, &order.u32_bytes(*slot), inner).map_err(|reason| {
                    MapError::Invalid {
                        name: d.name.clone(),
                        reason: format!("slot {slot}: {reason}"),
                    }
                })?;
            }
        }
        Ok(set)
    }

    /// Makes a fresh inner map from the template of map-in-map `outer`,
    /// named `name`, and returns its index. Like any map it is charged
    /// against the memory cap and the process-wide ledger.
    pub fn add_inner(&mut self, outer: usize, name: &str) -> Result<usize, MapError> {
        let o = &self.maps[outer].def;
        let Some(template) = o.inner.as_deref().filter(|_| o.map_type.is_map_in_map()) else {
            return Err(MapError::Invalid {
                name: o.name.clone(),
                reason: format!(
                    "{} is not a map-in-map with an inner-map template",
                    o.map_type.name()
                ),
            });
        };
        let def = MapDef { name: name.to_string(), ..template.clone() };
        let left = self
            .cap
            .min(ledger::cap().saturating_sub(ledger::in_use()))
            .saturating_sub(self.mem_used());
        let mut m = MapState::with_cap(&def, self.ncpus, left)?;
        m.set_byte_order(self.order());
        let bytes = m.mem_bytes();
        if ledger::reserve(bytes).is_err() {
            return Err(MapError::Refused {
                name: def.name,
                errno: "ENOMEM",
                reason: format!(
                    "the process's maps already hold {} of its {} cap (XDPQUAL_MAP_MEMORY)",
                    ledger::in_use(),
                    ledger::cap()
                ),
            });
        }
        self.reserved += bytes;
        self.maps.push(m);
        Ok(self.maps.len() - 1)
    }

    /// Puts map `inner` into map-in-map `outer` under `key`, with the
    /// kernel's checks (kernel/bpf/map_in_map.c `bpf_map_fd_get_ptr`,
    /// `bpf_map_meta_equal`; arraymap.c `array_map_meta_equal`): the inner
    /// map must match the template's type, key and value sizes and flags,
    /// and for an ARRAY its max_entries too unless the template has
    /// BPF_F_INNER_MAP; maps that are themselves map-in-map are refused
    /// (EINVAL).
    pub fn set_inner(&mut self, outer: usize, key: &[u8], inner: usize) -> Result<(), String> {
        let o = &self.maps[outer].def;
        let t = o
            .inner
            .as_deref()
            .ok_or_else(|| format!("map '{}' has no inner-map template", o.name))?;
        let i = &self.maps.get(inner).ok_or_else(|| format!("no map #{inner}"))?.def;
        let differs = |what: &str, a: u64, b: u64| -> Result<(), String> {
            if a == b {
                Ok(())
            } else {
                Err(format!(
                    "map '{}' does not match the inner-map template of '{}': {what} {b}, template {a} (the kernel refuses it with EINVAL)",
                    i.name, o.name
                ))
            }
        };
        if i.map_type.is_map_in_map() {
            return Err(format!("map '{}' is itself a map-in-map (EINVAL)", i.name));
        }
        if t.map_type != i.map_type {
            return Err(format!(
                "map '{}' does not match the inner-map template of '{}': type {}, template {} (the kernel refuses it with EINVAL)",
                i.name,
                o.name,
                i.map_type.name(),
                t.map_type.name()
            ));
        }
        differs("key_size", t.key_size as u64, i.key_size as u64)?;
        differs("value_size", t.value_size as u64, i.value_size as u64)?;
        differs("map_flags", t.flags as u64, i.flags as u64)?;
        if t.map_type == MapType::Array && t.flags & BPF_F_INNER_MAP == 0 {
            differs("max_entries", t.max_entries as u64, i.max_entries as u64)?;
        }
        if key.len() != o.key_size as usize {
            return Err(format!(
                "key has {} bytes, map '{}' has key_size {}",
                key.len(),
                o.name,
                o.key_size
            ));
        }
        let value = self.order().u32_bytes(inner as u32);
        let rc = self.maps[outer].update(key, &value, BPF_ANY, None);
        if rc != 0 {
            return Err(format!("update refused with errno {}", -rc));
        }
        Ok(())
    }

    /// The inner map a map-in-map slot holds (for dumps).
    pub fn inner_of(&self, outer: usize, value: &[u8]) -> Option<usize> {
        self.maps.get(outer).filter(|m| m.def.map_type.is_map_in_map())?;
        let v: [u8; 4] = value.get(..4)?.try_into().ok()?;
        Some(self.order().u32_from(v) as usize).filter(|i| *i < self.maps.len())
    }

    /// The byte order of the program these maps belong to (the order every
    /// map of the set was given).
    pub fn order(&self) -> ByteOrder {
        self.maps.first().map_or(ByteOrder::Little, |m| m.order)
    }

    /// Reserves one more element of map `m` in the process-wide ledger and
    /// under this set's cap; `false` when either is full.
    pub fn reserve_growth(&mut self, bytes: u64) -> bool {
        if self.mem_used().saturating_add(bytes) > self.cap || ledger::reserve(bytes).is_err() {
            return false;
        }
        self.reserved += bytes;
        true
    }

    /// Bytes all maps hold against the cap.
    pub fn mem_used(&self) -> u64 {
        self.maps.iter().map(|m| m.mem_bytes()).fold(0, u64::saturating_add)
    }

    pub fn by_name(&mut self, name: &str) -> Option<&mut MapState> {
        self.maps.iter_mut().find(|m| m.def.name == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use xdpqual_object::MapOrigin;

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
            inner: None,
            init_slots: Vec::new(),
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
    fn an_lru_map_filled_out_of_order_is_relisted_in_key_order() {
        // 4 entries, 1 CPU (target_free 2). Written d c b a, the inactive
        // list ends with d at its tail, so e would evict d and c (see
        // hash.rs `a_refill_evicts_a_batch_of_target_free`, in that order).
        // Relisted in key order, as the host fills the kernel's copy, the
        // oldest are a and b: e evicts those.
        let mut m = MapState::new(&def(MapType::LruHash, 1, 1, 4), 1).unwrap();
        for k in *b"dcba" {
            assert_eq!(m.update(&[k], &[k], BPF_ANY, None), 0);
        }
        let mut unsorted = m.clone();
        m.relist_lru_in_key_order();
        assert_eq!(m.entries().len(), 4);
        for (map, left) in [(&mut m, b"cde"), (&mut unsorted, b"abe")] {
            assert_eq!(map.update(b"e", b"e", BPF_ANY, None), 0);
            let keys: Vec<u8> = map.entries().iter().map(|e| e.key[0]).collect();
            assert_eq!(keys, left);
            // Values came along.
            assert!(map.entries().iter().all(|e| e.values[0] == e.key));
        }
    }

    #[test]
    fn lru_evicts_least_recent() {
        // Here the kernel's LRU agrees with a strict one: with 2 entries on
        // 1 CPU, target_free is 1; a is flushed to inactive when b is
        // taken, referenced by the lookup, and moved to active by the
        // rotation when c needs a node, so the shrink evicts b.
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

    fn outer(t: MapType, name: &str, inner: MapDef) -> MapDef {
        MapDef { name: name.into(), inner: Some(Box::new(inner)), ..def(t, 4, 4, 2) }
    }

    fn named(mut d: MapDef, name: &str) -> MapDef {
        d.name = name.into();
        d
    }

    #[test]
    fn map_in_map_needs_a_template_and_4_byte_values() {
        // kernel/bpf/arraymap.c fd_array_map_alloc_check: value_size 4.
        let bad = MapDef {
            value_size: 8,
            ..outer(MapType::ArrayOfMaps, "o", def(MapType::Array, 4, 8, 1))
        };
        assert!(matches!(MapState::new(&bad, 1), Err(MapError::Refused { errno: "EINVAL", .. })));
        let none =
            MapDef { inner: None, ..outer(MapType::HashOfMaps, "o", def(MapType::Array, 4, 8, 1)) };
        let e = MapState::new(&none, 1).unwrap_err().to_string();
        assert!(e.contains("no inner-map template"), "{e}");
        // One level only (map_in_map.c bpf_map_meta_alloc).
        let nested = outer(
            MapType::ArrayOfMaps,
            "o",
            outer(MapType::ArrayOfMaps, "i", def(MapType::Array, 4, 8, 1)),
        );
        assert!(matches!(
            MapState::new(&nested, 1),
            Err(MapError::Refused { errno: "EINVAL", .. })
        ));
    }

    #[test]
    fn inner_maps_must_match_the_template() {
        let shape = def(MapType::Array, 4, 8, 4);
        let defs = vec![
            named(shape.clone(), "a"),
            named(def(MapType::Array, 4, 4, 4), "narrow"),
            named(def(MapType::Array, 4, 8, 5), "longer"),
            outer(MapType::ArrayOfMaps, "o", shape.clone()),
        ];
        let mut set = MapSet::new(&defs, 1).unwrap();
        let k0 = 0u32.to_le_bytes();
        assert_eq!(set.set_inner(3, &k0, 0), Ok(()));
        assert_eq!(set.inner_of(3, &set.maps[3].entries()[0].values[0]), Some(0));
        let e = set.set_inner(3, &k0, 1).unwrap_err();
        assert!(e.contains("value_size 4, template 8"), "{e}");
        // arraymap.c array_map_meta_equal: an ARRAY's max_entries must
        // match too, unless the template has BPF_F_INNER_MAP.
        assert!(set.set_inner(3, &k0, 2).unwrap_err().contains("max_entries"));
        assert!(set.set_inner(3, &k0, 3).unwrap_err().contains("itself a map-in-map"));
        // Out of range is the array's E2BIG.
        assert!(set.set_inner(3, &2u32.to_le_bytes(), 0).unwrap_err().contains("errno 7"));

        let flexible = MapDef { flags: BPF_F_INNER_MAP, ..shape.clone() };
        let defs = vec![
            named(MapDef { max_entries: 9, ..flexible.clone() }, "long"),
            outer(MapType::HashOfMaps, "h", flexible),
        ];
        let mut set = MapSet::new(&defs, 1).unwrap();
        assert_eq!(set.set_inner(1, &5u32.to_le_bytes(), 0), Ok(()));
    }

    #[test]
    fn fresh_inner_maps_and_static_slots() {
        let shape = def(MapType::Hash, 2, 4, 8);
        let mut o = outer(MapType::ArrayOfMaps, "o", shape.clone());
        o.init_slots = vec![(1, "a".into())];
        let defs = vec![named(shape, "a"), o];
        let mut set = MapSet::new(&defs, 1).unwrap();
        // Slot 1 was filled when the set was made (libbpf's
        // init_map_in_map_slots); slot 0 is empty.
        let e = set.maps[1].entries();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].key, 1u32.to_le_bytes());
        assert_eq!(set.inner_of(1, &e[0].values[0]), Some(0));
        let before = set.mem_used();
        let i = set.add_inner(1, "o[0]").unwrap();
        assert_eq!(i, 2);
        assert_eq!(set.maps[i].def.map_type, MapType::Hash);
        assert_eq!(set.maps[i].def.name, "o[0]");
        assert_eq!(set.objects, 2);
        assert_eq!(set.set_inner(1, &0u32.to_le_bytes(), i), Ok(()));
        assert_eq!(set.maps[i].update(b"ab", &[1; 4], BPF_ANY, None), 0);
        assert!(set.mem_used() > before, "the inner map's element is charged");
        // Only map-in-map maps have a template to make maps from.
        assert!(set.add_inner(0, "x").is_err());
        // A slot naming no map of the object is refused.
        let mut bad = outer(MapType::ArrayOfMaps, "o", def(MapType::Hash, 2, 4, 8));
        bad.init_slots = vec![(0, "ghost".into())];
        assert!(MapSet::new(&[bad], 1).unwrap_err().to_string().contains("ghost"));
    }

    #[test]
    fn sparse_entries_leave_out_implicit_zero_slots() {
        let k = |i: u32| i.to_le_bytes().to_vec();
        // A 1,000,000-slot array with two slots written, one back to zeros:
        // only slot 7 is listed.
        let mut a = MapState::new(&def(MapType::Array, 4, 4, 1_000_000), 1).unwrap();
        assert_eq!(a.update(&k(7), &[1, 0, 0, 0], BPF_ANY, None), 0);
        assert_eq!(a.update(&k(9), &[2; 4], BPF_ANY, None), 0);
        assert_eq!(a.update(&k(9), &[0; 4], BPF_ANY, None), 0);
        let e = a.sparse_entries();
        assert_eq!(e, vec![MapEntry { key: k(7), values: vec![vec![1, 0, 0, 0]] }]);
        assert_eq!(a.entries().len(), 1_000_000);
        // Per-CPU: a slot written on CPU 1 only is listed, with CPU 0's zeros.
        let mut p = MapState::new(&def(MapType::PercpuArray, 4, 4, 3), 2).unwrap();
        assert_eq!(p.update(&k(2), &[5; 4], BPF_ANY, Some(1)), 0);
        assert_eq!(
            p.sparse_entries(),
            vec![MapEntry { key: k(2), values: vec![vec![0; 4], vec![5; 4]] }]
        );
        // A hash element of zeros is an element: it stays.
        let mut h = MapState::new(&def(MapType::Hash, 4, 4, 4), 1).unwrap();
        assert_eq!(h.update(&k(1), &[0; 4], BPF_ANY, None), 0);
        assert_eq!(h.sparse_entries().len(), 1);
    }

    #[test]
    fn entry_writes_turn_before_into_after() {
        let e = |key: u8, v: u8| MapEntry { key: vec![key, 0, 0, 0], values: vec![vec![v; 2]] };
        let before = vec![e(1, 1), e(2, 2), e(4, 4)];
        let after = vec![e(1, 1), e(3, 3), e(4, 5)];
        // Array: 1 unchanged (no write), 2 gone (back to zeros), 3 new, 4
        // changed; in key order.
        assert_eq!(entry_writes(MapType::Array, &before, &after), vec![e(2, 0), e(3, 3), e(4, 5)]);
        // Hash: an element missing from `after` is not a write of zeros.
        assert_eq!(entry_writes(MapType::Hash, &before, &after), vec![e(3, 3), e(4, 5)]);
        assert_eq!(entry_writes(MapType::Array, &before, &before), vec![]);
        assert_eq!(entry_writes(MapType::Array, &[], &after), after);
        assert_eq!(entry_writes(MapType::Array, &before, &[]), vec![e(1, 0), e(2, 0), e(4, 0)]);
    }
}
