//! Kernel maps made from the loader's [`MapDef`]s.
//!
//! Creation follows what libbpf does for the same definitions, so the
//! verifier sees the same maps it would under libbpf:
//! - global-data maps (`.data`, `.rodata`, `.bss`) get their initial bytes
//!   written to key 0 right after creation;
//! - read-only global data (`.rodata`) is created with `BPF_F_RDONLY_PROG`
//!   and frozen with BPF_MAP_FREEZE before any program is loaded. A frozen
//!   read-only map is what lets the verifier treat its contents as known
//!   constants (`bpf_map_is_rdonly` in kernel/bpf/verifier.c), and it makes
//!   later writes from user space fail with EPERM (`map_get_sys_perms`).

use crate::program::{MapDef, MapOrigin, MapType};
use crate::sys::{self, Errno, MapFd};

/// `BPF_F_RDONLY_PROG`: programs may only read the map.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_ANY` for BPF_MAP_UPDATE_ELEM: create or replace.
pub const BPF_ANY: u64 = 0;

/// Something went wrong creating or using a kernel map.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MapError {
    #[error("kernel refused to create map `{name}` ({map_type}, key {key_size} B, value {value_size} B, {max_entries} entries): {errno}")]
    Create {
        name: String,
        map_type: String,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        errno: Errno,
    },
    #[error("map `{name}`: global data of {got} bytes does not match the value size {value_size}")]
    InitialDataSize { name: String, got: usize, value_size: u32 },
    #[error("map `{name}`: {op} failed: {errno}")]
    Op { name: String, op: &'static str, errno: Errno },
    #[error("map `{name}`: {op} needs a {need}-byte {what}, got {got} bytes")]
    Size { name: String, op: &'static str, what: &'static str, need: usize, got: usize },
    #[error("map `{name}`: a {map_type} needs an inner-map template to be created (the kernel takes it as inner_map_fd, kernel/bpf/map_in_map.c bpf_map_meta_alloc)")]
    NoInnerTemplate { name: String, map_type: String },
    #[error("could not read the possible CPUs from {path}: {reason}")]
    PossibleCpus { path: &'static str, reason: String },
}

/// Everything in a map, as user space sees it through the syscalls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapDump {
    /// One value per key.
    Plain(Vec<(Vec<u8>, Vec<u8>)>),
    /// Per-CPU maps: one value per possible CPU, in CPU order, each cut to
    /// `value_size` (the kernel pads each to a multiple of 8).
    PerCpu(Vec<(Vec<u8>, Vec<Vec<u8>>)>),
    /// RINGBUF and PERF_EVENT_ARRAY have no key/value contents to read
    /// back, and XSKMAP refuses lookups from user space (EOPNOTSUPP,
    /// net/xdp/xskmap.c `xsk_map_lookup_elem_sys_only`).
    NotDumpable(MapType),
}

/// A map in the kernel, closed when dropped.
#[derive(Debug)]
pub struct KernelMap {
    def: MapDef,
    fd: MapFd,
    /// Number of possible CPUs, for per-CPU maps (otherwise 1).
    cpus: usize,
}

/// Makes a kernel object name from ours: the kernel accepts only
/// `[A-Za-z0-9_.]` and at most 15 bytes (`bpf_obj_name_cpy` in
/// kernel/bpf/syscall.c); anything else becomes `_`.
pub fn kernel_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' })
        .take(sys::OBJ_NAME_LEN - 1)
        .collect()
}

/// Counts the CPUs in `/sys/devices/system/cpu/possible` (e.g. `0-3` or
/// `0,2-5`). The kernel sizes per-CPU syscall values by
/// `num_possible_cpus()`, the weight of that mask (`bpf_map_value_size` in
/// kernel/bpf/syscall.c); libbpf's `libbpf_num_possible_cpus` counts the
/// same way.
pub fn parse_cpu_list(text: &str) -> Option<usize> {
    let mut count = 0usize;
    for part in text.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim().parse::<usize>().ok()?, hi.trim().parse::<usize>().ok()?),
            None => {
                let n = part.trim().parse::<usize>().ok()?;
                (n, n)
            }
        };
        if hi < lo {
            return None;
        }
        count += hi - lo + 1;
    }
    Some(count)
}

pub fn possible_cpus() -> Result<usize, MapError> {
    const PATH: &str = "/sys/devices/system/cpu/possible";
    let text = std::fs::read_to_string(PATH)
        .map_err(|e| MapError::PossibleCpus { path: PATH, reason: e.to_string() })?;
    parse_cpu_list(&text).ok_or_else(|| MapError::PossibleCpus {
        path: PATH,
        reason: format!("unexpected contents {:?}", text.trim()),
    })
}

fn round_up8(n: u32) -> usize {
    (n as usize).div_ceil(8) * 8
}

impl KernelMap {
    /// Creates the map, writes global data and freezes `.rodata`.
    pub fn create(def: &MapDef) -> Result<KernelMap, MapError> {
        let cpus = if def.map_type.is_percpu() { possible_cpus()? } else { 1 };
        let syscall_value_size = if def.map_type.is_percpu() {
            round_up8(def.value_size) * cpus
        } else {
            def.value_size as usize
        };
        let mut flags = def.flags;
        if def.read_only {
            flags |= BPF_F_RDONLY_PROG;
        }
        // A map-in-map is created against a map made from its template,
        // which is closed again once the kernel has copied its shape, as
        // libbpf's bpf_object__create_map does with `map->inner_map`.
        let template = match (&def.inner, def.map_type.is_map_in_map()) {
            (Some(inner), true) => Some(KernelMap::create(inner)?),
            // Without one, inner_map_fd 0 would name whatever fd 0 is.
            (None, true) => {
                return Err(MapError::NoInnerTemplate {
                    name: def.name.clone(),
                    map_type: def.map_type.name(),
                })
            }
            _ => None,
        };
        let spec = sys::MapSpec {
            map_type: def.map_type.uapi(),
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            flags,
            name: kernel_name(&def.name),
            syscall_value_size,
            inner_map_fd: template.as_ref().map(|t| t.fd.raw()),
        };
        let fd = sys::map_create(&spec).map_err(|errno| MapError::Create {
            name: def.name.clone(),
            map_type: def.map_type.name(),
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            errno,
        })?;
        let map = KernelMap { def: def.clone(), fd, cpus };
        if def.origin == MapOrigin::GlobalData {
            if let Some(init) = &def.initial_data {
                if init.len() != def.value_size as usize {
                    return Err(MapError::InitialDataSize {
                        name: def.name.clone(),
                        got: init.len(),
                        value_size: def.value_size,
                    });
                }
                map.update(&0u32.to_ne_bytes(), init)?;
            }
        }
        if def.read_only {
            sys::map_freeze(&map.fd).map_err(|errno| map.op_err("BPF_MAP_FREEZE", errno))?;
        }
        Ok(map)
    }

    pub fn def(&self) -> &MapDef {
        &self.def
    }

    /// The map's fd, for callers that hand it to the kernel themselves
    /// (the live backend's probe puts it into a program's `lddw`).
    pub fn fd(&self) -> &MapFd {
        &self.fd
    }

    /// The kernel-wide map id (as `bpftool map` shows it).
    pub fn id(&self) -> Result<u32, MapError> {
        sys::map_id(&self.fd).map_err(|e| self.op_err("BPF_OBJ_GET_INFO_BY_FD", e))
    }

    /// Number of values a per-CPU lookup returns (1 for other maps).
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    fn op_err(&self, op: &'static str, errno: Errno) -> MapError {
        MapError::Op { name: self.def.name.clone(), op, errno }
    }

    fn check(
        &self,
        op: &'static str,
        what: &'static str,
        need: usize,
        got: usize,
    ) -> Result<(), MapError> {
        if need == got {
            Ok(())
        } else {
            Err(MapError::Size { name: self.def.name.clone(), op, what, need, got })
        }
    }

    /// Writes one value. For per-CPU maps `value` holds every CPU's value,
    /// each padded to a multiple of 8 bytes (the syscall layout). For
    /// PROG_ARRAY the value is a program fd (`i32` in native order).
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), MapError> {
        self.check("update", "key", self.fd.key_size(), key.len())?;
        self.check("update", "value", self.fd.value_size(), value.len())?;
        sys::map_update(&self.fd, key, value, BPF_ANY)
            .map_err(|e| self.op_err("BPF_MAP_UPDATE_ELEM", e))
    }

    /// Puts map `inner` in slot `key` of this map-in-map (the kernel takes
    /// the fd and holds its own reference to the map).
    pub fn set_inner(&self, key: &[u8], inner: &KernelMap) -> Result<(), MapError> {
        self.update(key, &inner.fd.raw().to_ne_bytes())
    }

    /// Reads one value in the syscall layout; `Ok(None)` if absent.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.check("lookup", "key", self.fd.key_size(), key.len())?;
        let mut value = vec![0u8; self.fd.value_size()];
        match sys::map_lookup(&self.fd, key, &mut value) {
            Ok(()) => Ok(Some(value)),
            Err(Errno(libc::ENOENT)) => Ok(None),
            Err(e) => Err(self.op_err("BPF_MAP_LOOKUP_ELEM", e)),
        }
    }

    /// Deletes one entry; `Ok(false)` if it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        self.check("delete", "key", self.fd.key_size(), key.len())?;
        match sys::map_delete(&self.fd, key) {
            Ok(()) => Ok(true),
            Err(Errno(libc::ENOENT)) => Ok(false),
            Err(e) => Err(self.op_err("BPF_MAP_DELETE_ELEM", e)),
        }
    }

    /// The key after `key` (`None`: the first key); `Ok(None)` at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check("get_next_key", "key", self.fd.key_size(), k.len())?;
        }
        let mut next = vec![0u8; self.fd.key_size()];
        match sys::map_get_next_key(&self.fd, key, &mut next) {
            Ok(true) => Ok(Some(next)),
            Ok(false) => Ok(None),
            Err(e) => Err(self.op_err("BPF_MAP_GET_NEXT_KEY", e)),
        }
    }

    /// Puts a program in a PROG_ARRAY slot (the kernel takes the fd and
    /// holds its own reference to the program).
    pub fn set_prog(&self, slot: u32, prog: std::os::fd::BorrowedFd<'_>) -> Result<(), MapError> {
        use std::os::fd::AsRawFd;
        let fd: i32 = prog.as_raw_fd();
        self.update(&slot.to_ne_bytes(), &fd.to_ne_bytes())
    }

    /// Every entry, less the slots of zeros an ARRAY or PERCPU_ARRAY holds
    /// implicitly ([`MapType::has_implicit_zero_slots`]: every index exists
    /// and starts zeroed, so a missing slot reads as zeros). Entries come in
    /// batches (BPF_MAP_LOOKUP_BATCH) where the map type has them, so a
    /// 33.5-million-entry array dumps in a few hundred syscalls, not 67
    /// million; otherwise keys are walked with BPF_MAP_GET_NEXT_KEY, and an
    /// entry that vanishes between the walk and the lookup (an empty
    /// PROG_ARRAY or DEVMAP slot reads as ENOENT) is left out.
    pub fn dump(&self) -> Result<MapDump, MapError> {
        if matches!(self.def.map_type, MapType::Ringbuf | MapType::PerfEventArray | MapType::Xskmap)
        {
            return Ok(MapDump::NotDumpable(self.def.map_type));
        }
        let skip_zero = self.def.map_type.has_implicit_zero_slots();
        let mut raw: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let keep = |value: &[u8]| !(skip_zero && value.iter().all(|b| *b == 0));
        if !self.dump_batched(&mut raw, &keep)? {
            raw.clear();
            let mut key: Option<Vec<u8>> = None;
            while let Some(next) = self.next_key(key.as_deref())? {
                if let Some(value) = self.lookup(&next)? {
                    if keep(&value) {
                        raw.push((next.clone(), value));
                    }
                }
                key = Some(next);
            }
        }
        Ok(if self.def.map_type.is_percpu() {
            let stride = round_up8(self.def.value_size);
            let vs = self.def.value_size as usize;
            MapDump::PerCpu(
                raw.into_iter()
                    .map(|(k, v)| (k, v.chunks(stride).map(|c| c[..vs].to_vec()).collect()))
                    .collect(),
            )
        } else {
            MapDump::Plain(raw)
        })
    }

    /// The batched walk of [`dump`](Self::dump). `Ok(false)`: this map (or
    /// kernel) has no batch lookup, or a hash bucket outgrew the batch
    /// (ENOSPC); the caller walks the keys instead.
    fn dump_batched(
        &self,
        out: &mut Vec<(Vec<u8>, Vec<u8>)>,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<bool, MapError> {
        // PROG_ARRAY, DEVMAP, map-in-map and LPM_TRIE have no batch
        // lookup; asking costs a syscall and says nothing new.
        if !matches!(
            self.def.map_type,
            MapType::Array
                | MapType::PercpuArray
                | MapType::Hash
                | MapType::PercpuHash
                | MapType::LruHash
                | MapType::LruPercpuHash
        ) {
            return Ok(false);
        }
        const BATCH: usize = 1 << 16;
        let (ks, vs) = (self.fd.key_size(), self.fd.value_size());
        let n = BATCH.min(self.def.max_entries.max(1) as usize);
        let mut keys = vec![0u8; n * ks];
        let mut values = vec![0u8; n * vs];
        let cursor_len = sys::batch_cursor_len(&self.fd);
        let (mut cursor, mut next) = (vec![0u8; cursor_len], vec![0u8; cursor_len]);
        let mut first = true;
        loop {
            let at = (!first).then_some(cursor.as_slice());
            let (filled, end) =
                match sys::map_lookup_batch(&self.fd, at, &mut next, &mut keys, &mut values) {
                    Ok(r) => r,
                    // ENOTSUPP (524, the kernel's internal "no such op")
                    // or EINVAL from kernels before 5.6, on the first call;
                    // ENOSPC for a hash bucket larger than the batch, on
                    // any call.
                    Err(Errno(libc::EINVAL | 524)) if first => return Ok(false),
                    Err(Errno(libc::ENOSPC)) => return Ok(false),
                    Err(e) => return Err(self.op_err("BPF_MAP_LOOKUP_BATCH", e)),
                };
            for i in 0..filled {
                let value = &values[i * vs..(i + 1) * vs];
                if keep(value) {
                    out.push((keys[i * ks..(i + 1) * ks].to_vec(), value.to_vec()));
                }
            }
            if matches!(end, sys::BatchEnd::Done) || filled == 0 {
                return Ok(true);
            }
            std::mem::swap(&mut cursor, &mut next);
            first = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_and_truncated() {
        assert_eq!(kernel_name(".rodata"), ".rodata");
        assert_eq!(kernel_name("my-map/x"), "my_map_x");
        assert_eq!(kernel_name("a_very_long_map_name_here"), "a_very_long_map");
        assert_eq!(kernel_name("a_very_long_map_name_here").len(), 15);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0\n"), Some(1));
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0,2-5"), Some(5));
        assert_eq!(parse_cpu_list("0-"), None);
        assert_eq!(parse_cpu_list(""), None);
    }
}
