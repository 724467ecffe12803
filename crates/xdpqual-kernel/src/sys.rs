//! The one typed `bpf(2)` layer: thin, audited wrappers over every `bpf(2)`
//! command xdpqual uses (the host backend's, the live backend's and the
//! guest agent's), plus the other system calls that ask about the kernel
//! itself (`capget`, `uname`, `if_nametoindex`, `sysconf`).
//!
//! `bpf(2)` and `capget(2)` are entered through raw `libc::syscall`: `nix`
//! wraps neither (it has no BPF module and no capability calls). `uname`,
//! `if_nametoindex` and `sysconf` go through `nix`'s safe wrappers.
//!
//! Every attribute struct below mirrors one member of `union bpf_attr` in
//! `include/uapi/linux/bpf.h` field for field; padding the C compiler would
//! insert is spelled out as `_pad` fields so the whole struct is initialised
//! (the kernel refuses non-zero bytes past the last field a command uses,
//! see `CHECK_ATTR` and `bpf_check_uarg_tail_zero` in kernel/bpf/syscall.c).
//! The offsets are checked against the header in the tests at the bottom.
//!
//! Each public function is safe: the buffers the kernel reads or writes are
//! borrowed slices whose lengths are checked against what the kernel will
//! touch before the call.

use std::ffi::CStr;
use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A failed system call's `errno`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's `errno` after a failed call.
    pub(crate) fn last() -> Errno {
        Errno(nix::errno::Errno::last_raw())
    }

    /// The symbolic name (`EINVAL`) for the errors this backend expects.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EINTR => "EINTR",
            libc::E2BIG => "E2BIG",
            libc::EBADF => "EBADF",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::ENODEV => "ENODEV",
            libc::EINVAL => "EINVAL",
            libc::ENOSPC => "ENOSPC",
            libc::ERANGE => "ERANGE",
            libc::ENOSYS => "ENOSYS",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::EMSGSIZE => "EMSGSIZE",
            524 => "ENOTSUPP", // kernel-internal, still leaks out of bpf(2)
            _ => "E?",
        }
    }
}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Errno {
        Errno(e as i32)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), std::io::Error::from_raw_os_error(self.0))
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}, {})", self.0, self.name())
    }
}

// `enum bpf_cmd` (include/uapi/linux/bpf.h).
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
const BPF_MAP_GET_NEXT_ID: libc::c_long = 12;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_BTF_LOAD: libc::c_long = 18;
const BPF_MAP_FREEZE: libc::c_long = 22;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_ENABLE_STATS: libc::c_long = 32;

// `enum bpf_prog_type` and `enum bpf_attach_type` values for XDP.
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;

/// `BPF_OBJ_NAME_LEN`: names are at most 15 bytes plus a NUL.
pub const OBJ_NAME_LEN: usize = 16;

/// Marker for the attribute structs: `#[repr(C)]`, no references, every
/// byte initialised (explicit padding), valid for any bit pattern the kernel
/// writes back.
trait Attr: Sized {}

/// The one place `bpf(2)` is entered.
fn sys_bpf<A: Attr>(cmd: libc::c_long, attr: &mut A) -> Result<libc::c_long, Errno> {
    // SAFETY: `attr` is an exclusive reference to a fully initialised
    // `#[repr(C)]` struct of exactly `size_of::<A>()` bytes, so the kernel's
    // copy_from_user/copy_to_user of up to that many bytes stays inside it.
    // Any user pointers stored *inside* the struct are set by the safe
    // wrappers below from live slices whose lengths they have checked, and
    // those slices outlive this call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A as *mut libc::c_void,
            std::mem::size_of::<A>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn fd_from_ret(r: libc::c_long) -> OwnedFd {
    // SAFETY: BPF_MAP_CREATE and BPF_PROG_LOAD return a freshly installed
    // file descriptor that nothing else in this process owns yet.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

fn ptr<T>(p: *const T) -> u64 {
    p as usize as u64
}

// ---------------------------------------------------------------- maps

/// `union bpf_attr`, BPF_MAP_CREATE member (fields up to `map_extra`).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; OBJ_NAME_LEN],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}
impl Attr for MapCreateAttr {}

/// `union bpf_attr`, BPF_MAP_*_ELEM member.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` or `next_key` (a union in the header).
    value: u64,
    flags: u64,
}
impl Attr for MapElemAttr {}

/// `union bpf_attr`, BPF_MAP_*_BATCH member.
#[repr(C)]
#[derive(Default)]
struct MapBatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}
impl Attr for MapBatchAttr {}

/// `union bpf_attr`, BPF_MAP_FREEZE uses only `map_fd`.
#[repr(C)]
struct MapFdAttr {
    map_fd: u32,
}
impl Attr for MapFdAttr {}

/// What BPF_MAP_CREATE needs.
pub struct MapSpec {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// Already sanitised to `[A-Za-z0-9_.]`, at most 15 bytes.
    pub name: String,
    /// Bytes the kernel copies in and out per value through the syscall
    /// interface (differs from `value_size` for per-CPU and fd maps).
    pub syscall_value_size: usize,
    /// ARRAY_OF_MAPS / HASH_OF_MAPS: a map made from the inner-map
    /// template, whose shape the kernel copies (`bpf_map_meta_alloc`).
    pub inner_map_fd: Option<RawFd>,
}

/// A map file descriptor together with the key/value buffer sizes the kernel
/// will read and write for it, so element calls can check slice lengths.
#[derive(Debug)]
pub struct MapFd {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl MapFd {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    pub fn key_size(&self) -> usize {
        self.key_size
    }
    /// Bytes per value through the syscall interface.
    pub fn value_size(&self) -> usize {
        self.value_size
    }
}

pub fn map_create(spec: &MapSpec) -> Result<MapFd, Errno> {
    let mut name = [0u8; OBJ_NAME_LEN];
    let n = spec.name.len().min(OBJ_NAME_LEN - 1);
    name[..n].copy_from_slice(&spec.name.as_bytes()[..n]);
    let mut attr = MapCreateAttr {
        map_type: spec.map_type,
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        map_flags: spec.flags,
        map_name: name,
        inner_map_fd: spec.inner_map_fd.map_or(0, |fd| fd as u32),
        ..Default::default()
    };
    let r = sys_bpf(BPF_MAP_CREATE, &mut attr)?;
    Ok(MapFd {
        fd: fd_from_ret(r),
        key_size: spec.key_size as usize,
        value_size: spec.syscall_value_size,
    })
}

/// Creates a map bound to the device `ifindex` (offloaded,
/// kernel/bpf/offload.c `bpf_map_offload_map_alloc`), for the live
/// backend's `hw` mode. Its elements live on the device, so it is handed
/// back as a plain fd: user space reaches them only through the driver.
pub fn map_create_offloaded(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    ifindex: u32,
) -> Result<OwnedFd, Errno> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: flags,
        map_ifindex: ifindex,
        ..Default::default()
    };
    sys_bpf(BPF_MAP_CREATE, &mut attr).map(fd_from_ret)
}

fn check_len(what: &str, got: usize, need: usize) {
    // A short buffer would let the kernel write past it: that is a bug in
    // our own code, never a property of user input, so it panics.
    assert!(got >= need, "{what} buffer of {got} bytes, the kernel uses {need}");
}

pub fn map_lookup(map: &MapFd, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
    check_len("key", key.len(), map.key_size);
    check_len("value", value.len(), map.value_size);
    let mut attr = MapElemAttr {
        map_fd: map.raw() as u32,
        key: ptr(key.as_ptr()),
        value: ptr(value.as_mut_ptr()),
        ..Default::default()
    };
    sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).map(drop)
}

pub fn map_update(map: &MapFd, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
    check_len("key", key.len(), map.key_size);
    check_len("value", value.len(), map.value_size);
    let mut attr = MapElemAttr {
        map_fd: map.raw() as u32,
        key: ptr(key.as_ptr()),
        value: ptr(value.as_ptr()),
        flags,
        ..Default::default()
    };
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

pub fn map_delete(map: &MapFd, key: &[u8]) -> Result<(), Errno> {
    check_len("key", key.len(), map.key_size);
    let mut attr =
        MapElemAttr { map_fd: map.raw() as u32, key: ptr(key.as_ptr()), ..Default::default() };
    sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
}

/// `key = None` asks for the first key. `Ok(false)` means there is no next.
pub fn map_get_next_key(map: &MapFd, key: Option<&[u8]>, next: &mut [u8]) -> Result<bool, Errno> {
    if let Some(k) = key {
        check_len("key", k.len(), map.key_size);
    }
    check_len("next key", next.len(), map.key_size);
    let mut attr = MapElemAttr {
        map_fd: map.raw() as u32,
        key: key.map_or(0, |k| ptr(k.as_ptr())),
        value: ptr(next.as_mut_ptr()),
        ..Default::default()
    };
    match sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
        Ok(_) => Ok(true),
        Err(Errno(libc::ENOENT)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Where a batch lookup stopped.
pub enum BatchEnd {
    /// More entries follow: pass the `out_batch` cursor back in.
    More,
    /// The map has no more entries (the kernel's -ENOENT).
    Done,
}

/// Bytes of a batch cursor (`in_batch`/`out_batch`): a key for the generic
/// walk (kernel/bpf/syscall.c `generic_map_lookup_batch`), a `u32` bucket
/// number for hash maps (kernel/bpf/hashtab.c
/// `__htab_map_lookup_and_delete_batch`).
pub fn batch_cursor_len(map: &MapFd) -> usize {
    map.key_size.max(4)
}

/// BPF_MAP_LOOKUP_BATCH: up to `keys.len() / key_size` entries after the
/// cursor `in_batch` (`None`: from the start) into `keys` and `values`;
/// `out_batch` receives the cursor for the next call. Returns how many
/// entries were filled and whether the map has more. Maps without batch
/// operations (LPM_TRIE, PROG_ARRAY, ...) fail with ENOTSUPP/EINVAL, and a
/// hash bucket larger than the batch with ENOSPC: callers fall back to the
/// key walk.
pub fn map_lookup_batch(
    map: &MapFd,
    in_batch: Option<&[u8]>,
    out_batch: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
) -> Result<(usize, BatchEnd), Errno> {
    let cursor = batch_cursor_len(map);
    if let Some(b) = in_batch {
        check_len("in_batch", b.len(), cursor);
    }
    check_len("out_batch", out_batch.len(), cursor);
    let count = keys.len() / map.key_size.max(1);
    check_len("values", values.len(), count * map.value_size);
    let mut attr = MapBatchAttr {
        in_batch: in_batch.map_or(0, |b| ptr(b.as_ptr())),
        out_batch: ptr(out_batch.as_mut_ptr()),
        keys: ptr(keys.as_mut_ptr()),
        values: ptr(values.as_mut_ptr()),
        count: u32::try_from(count).unwrap_or(u32::MAX),
        map_fd: map.raw() as u32,
        ..Default::default()
    };
    let end = match sys_bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) {
        Ok(_) => BatchEnd::More,
        Err(Errno(libc::ENOENT)) => BatchEnd::Done,
        Err(e) => return Err(e),
    };
    // The kernel writes back how many it filled; never trust it past what
    // was asked for.
    Ok(((attr.count as usize).min(count), end))
}

pub fn map_freeze(map: &MapFd) -> Result<(), Errno> {
    let mut attr = MapFdAttr { map_fd: map.raw() as u32 };
    sys_bpf(BPF_MAP_FREEZE, &mut attr).map(drop)
}

// ------------------------------------------------------------ programs

/// `union bpf_attr`, BPF_PROG_LOAD member, up to `log_true_size` (6.4+;
/// older kernels see a zero tail, which they accept).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
    core_relos: u64,
    core_relo_rec_size: u32,
    /// Output: the log size the verifier wanted, NUL included.
    log_true_size: u32,
}
impl Attr for ProgLoadAttr {}

/// Instructions as this kernel reads `struct bpf_insn` (include/uapi/linux/
/// bpf.h): `code`, then the `dst_reg:4, src_reg:4` bitfields, `off`, `imm`
/// in the machine's byte order. On a big-endian machine (the s390x guest
/// agent) the bitfields fill the byte from its top, so `dst_reg` is the
/// high nibble, and `off`/`imm` are big-endian, as LLVM's `bpfeb` emits
/// them (`isa::Insn::to_be_bytes`).
pub fn encode_native(insns: &[crate::isa::Insn]) -> Vec<u8> {
    crate::isa::encode(insns, crate::isa::ByteOrder::native())
}

/// One slot the kernel wrote (`xlated_prog_insns`), read back as
/// [`encode_native`] wrote it.
pub fn decode_native(b: [u8; 8]) -> crate::isa::Insn {
    crate::isa::Insn::from_bytes(b, crate::isa::ByteOrder::native())
}

/// What BPF_PROG_LOAD needs.
pub struct ProgSpec<'a> {
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub prog_flags: u32,
    /// Instruction bytes in this machine's byte order ([`encode_native`]),
    /// a multiple of 8.
    pub insns: &'a [u8],
    pub license: &'a CStr,
    /// Already sanitised, at most 15 bytes.
    pub name: &'a str,
    pub log_level: u32,
    /// The program's BTF and its records, when loaded BTF-aware.
    pub btf: Option<ProgBtf<'a>>,
    /// Tracing programs: the program they attach to and the BTF id of its
    /// function (`attach_prog_fd`, `attach_btf_id`).
    pub attach: Option<(RawFd, u32)>,
}

/// `prog_btf_fd`, `func_info` and `line_info` of BPF_PROG_LOAD.
pub struct ProgBtf<'a> {
    pub btf_fd: RawFd,
    /// `struct bpf_func_info` records: (insn_off, type_id).
    pub func_info: &'a [(u32, u32)],
    /// `struct bpf_line_info` records.
    pub line_info: &'a [(u32, u32, u32, u32)],
}

/// `struct bpf_func_info` is two u32s and `struct bpf_line_info` four
/// (include/uapi/linux/bpf.h); a tuple of u32s has no layout guarantee, so
/// they are flattened into native u32 words, which is their C layout.
fn u32_records<const N: usize>(recs: impl Iterator<Item = [u32; N]>) -> Vec<u32> {
    recs.flat_map(|r| r.into_iter()).collect()
}

/// A refused BPF_PROG_LOAD: the errno and, on 6.4+, the log size the
/// verifier wanted (0 when the kernel does not report it).
#[derive(Debug, Clone, Copy)]
pub struct LoadFailure {
    pub errno: Errno,
    pub log_true_size: u32,
}

/// Loads a program. `log` receives the verifier log (NUL-terminated) when
/// `spec.log_level > 0`; it must be empty when the level is 0.
pub fn prog_load(spec: &ProgSpec<'_>, log: &mut [u8]) -> Result<OwnedFd, LoadFailure> {
    assert_eq!(spec.insns.len() % 8, 0, "instruction bytes must be whole slots");
    let mut name = [0u8; OBJ_NAME_LEN];
    let n = spec.name.len().min(OBJ_NAME_LEN - 1);
    name[..n].copy_from_slice(&spec.name.as_bytes()[..n]);
    let log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
    // Kept alive until the call returns: the kernel reads them through the
    // pointers stored in `attr`.
    let func_info = spec
        .btf
        .as_ref()
        .map_or_else(Vec::new, |b| u32_records(b.func_info.iter().map(|&(o, t)| [o, t])));
    let line_info = spec.btf.as_ref().map_or_else(Vec::new, |b| {
        u32_records(b.line_info.iter().map(|&(o, f, l, c)| [o, f, l, c]))
    });
    let mut attr = ProgLoadAttr {
        prog_type: spec.prog_type,
        insn_cnt: (spec.insns.len() / 8) as u32,
        insns: ptr(spec.insns.as_ptr()),
        license: ptr(spec.license.as_ptr()),
        log_level: if log.is_empty() { 0 } else { spec.log_level },
        log_size: if log.is_empty() { 0 } else { log_size },
        log_buf: if log.is_empty() { 0 } else { ptr(log.as_mut_ptr()) },
        prog_flags: spec.prog_flags,
        prog_name: name,
        expected_attach_type: spec.expected_attach_type,
        ..Default::default()
    };
    if let Some(b) = &spec.btf {
        attr.prog_btf_fd = b.btf_fd as u32;
        attr.func_info_rec_size = 8;
        attr.func_info = ptr(func_info.as_ptr());
        attr.func_info_cnt = b.func_info.len() as u32;
        if !b.line_info.is_empty() {
            attr.line_info_rec_size = 16;
            attr.line_info = ptr(line_info.as_ptr());
            attr.line_info_cnt = b.line_info.len() as u32;
        }
    }
    if let Some((prog_fd, btf_id)) = spec.attach {
        attr.attach_prog_fd = prog_fd as u32;
        attr.attach_btf_id = btf_id;
    }
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(r) => Ok(fd_from_ret(r)),
        Err(errno) => Err(LoadFailure { errno, log_true_size: attr.log_true_size }),
    }
}

/// Loads XDP instructions (`insns`: encoded little-endian, map fds already
/// in place) as `BPF_PROG_TYPE_XDP` with `expected_attach_type = BPF_XDP`,
/// for the live backend. `ifindex` non-zero binds the program to that
/// device for offload (`prog_ifindex`, kernel/bpf/offload.c). `log`, when
/// not empty, receives the verifier log at level 1. The name keeps only
/// `[A-Za-z0-9_]`, at most 15 bytes.
pub fn prog_load_xdp(
    insns: &[u8],
    license: &str,
    name: &str,
    ifindex: u32,
    log: &mut [u8],
) -> Result<OwnedFd, Errno> {
    prog_load_xdp_flags(insns, license, name, ifindex, 0, log)
}

/// `BPF_F_XDP_HAS_FRAGS` (include/uapi/linux/bpf.h): the program handles
/// multi-buffer frames (`xdp.frags` sections).
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// [`prog_load_xdp`] with `prog_flags` (such as [`BPF_F_XDP_HAS_FRAGS`]).
pub fn prog_load_xdp_flags(
    insns: &[u8],
    license: &str,
    name: &str,
    ifindex: u32,
    prog_flags: u32,
    log: &mut [u8],
) -> Result<OwnedFd, Errno> {
    assert_eq!(insns.len() % 8, 0, "instruction bytes must be whole slots");
    let license = std::ffi::CString::new(license).map_err(|_| Errno(libc::EINVAL))?;
    let mut prog_name = [0u8; OBJ_NAME_LEN];
    for (d, s) in prog_name.iter_mut().zip(
        name.bytes().filter(|b| b.is_ascii_alphanumeric() || *b == b'_').take(OBJ_NAME_LEN - 1),
    ) {
        *d = s;
    }
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: (insns.len() / 8) as u32,
        insns: ptr(insns.as_ptr()),
        license: ptr(license.as_ptr()),
        log_level: if log.is_empty() { 0 } else { 1 },
        log_size: if log.is_empty() { 0 } else { u32::try_from(log.len()).unwrap_or(u32::MAX) },
        log_buf: if log.is_empty() { 0 } else { ptr(log.as_mut_ptr()) },
        prog_name,
        prog_ifindex: ifindex,
        prog_flags,
        expected_attach_type: BPF_XDP,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_LOAD, &mut attr).map(fd_from_ret)
}

/// `union bpf_attr`, BPF_BTF_LOAD member, up to `btf_log_true_size` (6.4+).
#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
    btf_log_true_size: u32,
}
impl Attr for BtfLoadAttr {}

/// Uploads raw BTF (kernel/bpf/btf.c btf_parse). `log` receives the
/// kernel's reason when it refuses (level 1), and may be empty.
pub fn btf_load(btf: &[u8], log: &mut [u8]) -> Result<OwnedFd, Errno> {
    let mut attr = BtfLoadAttr {
        btf: ptr(btf.as_ptr()),
        btf_size: u32::try_from(btf.len()).map_err(|_| Errno(libc::E2BIG))?,
        ..Default::default()
    };
    if !log.is_empty() {
        attr.btf_log_buf = ptr(log.as_mut_ptr());
        attr.btf_log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.btf_log_level = 1;
    }
    sys_bpf(BPF_BTF_LOAD, &mut attr).map(fd_from_ret)
}

/// `union bpf_attr`, BPF_RAW_TRACEPOINT_OPEN member.
#[repr(C)]
#[derive(Default)]
struct RawTpAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
    cookie: u64,
}
impl Attr for RawTpAttr {}

/// Attaches a loaded fentry/fexit program to the target it was loaded for
/// (a NULL name means "the program's own attach target",
/// kernel/bpf/syscall.c bpf_raw_tp_link_attach → bpf_tracing_prog_attach).
/// The attachment lasts while the returned link fd is open.
pub fn tracing_attach(prog: &OwnedFd) -> Result<OwnedFd, Errno> {
    let mut attr = RawTpAttr { prog_fd: prog.as_raw_fd() as u32, ..Default::default() };
    sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr).map(fd_from_ret)
}

/// Loads a tracing program against the vmlinux function with BTF id
/// `attach_btf_id` (no target program), without a log.
pub fn prog_load_traced_fn(spec: &ProgSpec<'_>, attach_btf_id: u32) -> Result<OwnedFd, Errno> {
    let mut name = [0u8; OBJ_NAME_LEN];
    let n = spec.name.len().min(OBJ_NAME_LEN - 1);
    name[..n].copy_from_slice(&spec.name.as_bytes()[..n]);
    let mut attr = ProgLoadAttr {
        prog_type: spec.prog_type,
        insn_cnt: (spec.insns.len() / 8) as u32,
        insns: ptr(spec.insns.as_ptr()),
        license: ptr(spec.license.as_ptr()),
        prog_name: name,
        expected_attach_type: spec.expected_attach_type,
        attach_btf_id,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_LOAD, &mut attr).map(fd_from_ret)
}

/// `union bpf_attr`, BPF_PROG_TEST_RUN member (`test`).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}
impl Attr for TestRunAttr {}

/// `struct xdp_md` (include/uapi/linux/bpf.h): offsets relative to
/// `data_meta`, and the device/queue the frame claims to arrive on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

pub struct TestRunIn<'a> {
    pub data_in: &'a [u8],
    /// Receives the output frame; `None` asks for none (live mode).
    pub data_out: Option<&'a mut [u8]>,
    pub ctx_in: Option<&'a XdpMd>,
    pub ctx_out: Option<&'a mut XdpMd>,
    pub repeat: u32,
    pub flags: u32,
    pub batch_size: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct TestRunOut {
    pub retval: u32,
    /// The full output size the kernel had, even if it did not fit.
    pub data_size_out: u32,
    pub duration_ns: u32,
}

/// A refused test run, with what the kernel reported anyway (on ENOSPC it
/// still writes `data_size_out`, see net/bpf/test_run.c bpf_test_finish).
#[derive(Debug, Clone, Copy)]
pub struct TestRunFailure {
    pub errno: Errno,
    pub data_size_out: u32,
}

pub fn prog_test_run(prog: &OwnedFd, io: TestRunIn<'_>) -> Result<TestRunOut, TestRunFailure> {
    let data_size_in = u32::try_from(io.data_in.len()).expect("packet under 4 GiB");
    // A non-null data_out with data_size_out == 0 means "copy everything"
    // to the kernel (bpf_test_finish keeps that old behaviour), which could
    // overrun the buffer: an empty output buffer is passed as NULL instead.
    let (data_out, data_size_out) = match io.data_out {
        Some(buf) if !buf.is_empty() => {
            (ptr(buf.as_mut_ptr()), u32::try_from(buf.len()).unwrap_or(u32::MAX))
        }
        _ => (0, 0),
    };
    let ctx_size = std::mem::size_of::<XdpMd>() as u32;
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in,
        data_size_out,
        data_in: ptr(io.data_in.as_ptr()),
        data_out,
        repeat: io.repeat,
        ctx_size_in: if io.ctx_in.is_some() { ctx_size } else { 0 },
        ctx_in: io.ctx_in.map_or(0, |c| ptr(c as *const XdpMd)),
        ctx_size_out: if io.ctx_out.is_some() { ctx_size } else { 0 },
        ctx_out: io.ctx_out.map_or(0, |c| ptr(c as *mut XdpMd)),
        flags: io.flags,
        batch_size: io.batch_size,
        ..Default::default()
    };
    match sys_bpf(BPF_PROG_TEST_RUN, &mut attr) {
        Ok(_) => Ok(TestRunOut {
            retval: attr.retval,
            data_size_out: attr.data_size_out,
            duration_ns: attr.duration,
        }),
        Err(errno) => Err(TestRunFailure { errno, data_size_out: attr.data_size_out }),
    }
}

// ------------------------------------------------------ ids and info

/// `union bpf_attr`, BPF_*_GET_NEXT_ID member.
#[repr(C)]
#[derive(Default)]
struct NextIdAttr {
    start_id: u32,
    next_id: u32,
    open_flags: u32,
}
impl Attr for NextIdAttr {}

fn next_id(cmd: libc::c_long, start: u32) -> Result<Option<u32>, Errno> {
    let mut attr = NextIdAttr { start_id: start, ..Default::default() };
    match sys_bpf(cmd, &mut attr) {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(Errno(libc::ENOENT)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The id of the first program loaded in the kernel with an id above
/// `start`. Needs CAP_SYS_ADMIN (kernel/bpf/syscall.c bpf_obj_get_next_id).
pub fn prog_get_next_id(start: u32) -> Result<Option<u32>, Errno> {
    next_id(BPF_PROG_GET_NEXT_ID, start)
}

/// As [`prog_get_next_id`], for maps.
pub fn map_get_next_id(start: u32) -> Result<Option<u32>, Errno> {
    next_id(BPF_MAP_GET_NEXT_ID, start)
}

/// A new fd for the program with kernel id `id` (it keeps the program
/// alive while held). BPF_PROG_GET_FD_BY_ID reads the same member as the
/// id walks: `prog_id` shares its slot with `start_id` in the header's
/// union. Needs CAP_SYS_ADMIN (kernel/bpf/syscall.c bpf_prog_get_fd_by_id).
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = NextIdAttr { start_id: id, ..Default::default() };
    sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(fd_from_ret)
}

/// `union bpf_attr`, BPF_ENABLE_STATS member (`enable_stats`).
#[repr(C)]
#[derive(Default)]
struct EnableStatsAttr {
    /// `enum bpf_stats_type`: 0 is BPF_STATS_RUN_TIME.
    stats_type: u32,
}
impl Attr for EnableStatsAttr {}

/// Turns on the kernel's per-program run counters (`run_cnt`,
/// `run_time_ns`) for as long as the returned fd is open
/// (BPF_ENABLE_STATS with BPF_STATS_RUN_TIME, kernel/bpf/syscall.c
/// bpf_enable_runtime_stats).
pub fn enable_run_stats() -> Result<OwnedFd, Errno> {
    let mut attr = EnableStatsAttr::default();
    sys_bpf(BPF_ENABLE_STATS, &mut attr).map(fd_from_ret)
}

/// `union bpf_attr`, BPF_OBJ_GET_INFO_BY_FD member (`info`).
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}
impl Attr for InfoAttr {}

/// `struct bpf_prog_info` (include/uapi/linux/bpf.h), 232 bytes as of 6.x.
/// Passed with every count and pointer zero, so the kernel only fills in
/// scalars and writes through no pointer.
#[repr(C)]
#[derive(Default)]
struct BpfProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; OBJ_NAME_LEN],
    ifindex: u32,
    gpl_compatible: u32,
    netns_dev: u64,
    netns_ino: u64,
    nr_jited_ksyms: u32,
    nr_jited_func_lens: u32,
    jited_ksyms: u64,
    jited_func_lens: u64,
    btf_id: u32,
    func_info_rec_size: u32,
    func_info: u64,
    nr_func_info: u32,
    nr_line_info: u32,
    line_info: u64,
    jited_line_info: u64,
    nr_jited_line_info: u32,
    line_info_rec_size: u32,
    jited_line_info_rec_size: u32,
    nr_prog_tags: u32,
    prog_tags: u64,
    run_time_ns: u64,
    run_cnt: u64,
    recursion_misses: u64,
    verified_insns: u32,
    attach_btf_obj_id: u32,
    attach_btf_id: u32,
    _pad: u32,
}

/// The scalars of `struct bpf_prog_info` the backend reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    /// Bytes of the kernel's rewritten program (0 without CAP_BPF).
    pub xlated_prog_len: u32,
    /// Bytes of native code (0 when not JIT-compiled or without CAP_BPF).
    pub jited_prog_len: u32,
    /// Instructions the verifier processed (5.16+; 0 before).
    pub verified_insns: u32,
}

pub fn prog_info(prog: &OwnedFd) -> Result<ProgInfo, Errno> {
    let mut info = BpfProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of::<BpfProgInfo>() as u32,
        info: ptr(&mut info as *mut BpfProgInfo),
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(ProgInfo {
        id: info.id,
        xlated_prog_len: info.xlated_prog_len,
        jited_prog_len: info.jited_prog_len,
        verified_insns: info.verified_insns,
    })
}

/// What the live backend reads about a loaded program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgStats {
    pub id: u32,
    pub name: String,
    /// Counts only while [`enable_run_stats`]'s fd is held by someone.
    pub run_cnt: u64,
}

/// A program's kernel id, name and run counter, for the live backend's
/// observation.
pub fn prog_stats(prog: RawFd) -> Result<ProgStats, Errno> {
    let mut info = BpfProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: prog as u32,
        info_len: std::mem::size_of::<BpfProgInfo>() as u32,
        info: ptr(&mut info as *mut BpfProgInfo),
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    let end = info.name.iter().position(|&b| b == 0).unwrap_or(info.name.len());
    Ok(ProgStats {
        id: info.id,
        name: String::from_utf8_lossy(&info.name[..end]).into_owned(),
        run_cnt: info.run_cnt,
    })
}

/// The program as the verifier rewrote it (`xlated_prog_insns`), as raw
/// 8-byte instructions. Two calls: the first learns the length, the second
/// hands the kernel a buffer of exactly that size to copy into
/// (kernel/bpf/syscall.c bpf_prog_get_info_by_fd copies
/// `min(xlated_prog_len, ulen)` bytes). With `kernel.kptr_restrict` the
/// kernel may blank map addresses in lddw; opcodes and registers stay.
pub fn prog_xlated(prog: &OwnedFd) -> Result<Vec<[u8; 8]>, Errno> {
    let len = prog_info(prog)?.xlated_prog_len;
    let mut buf = vec![[0u8; 8]; len as usize / 8];
    let mut info = BpfProgInfo {
        xlated_prog_len: (buf.len() * 8) as u32,
        xlated_prog_insns: buf.as_mut_ptr() as u64,
        ..BpfProgInfo::default()
    };
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of::<BpfProgInfo>() as u32,
        info: ptr(&mut info as *mut BpfProgInfo),
    };
    // SAFETY (of the kernel's write): `xlated_prog_insns` points at `buf`,
    // which is `xlated_prog_len` bytes long and outlives the call; every
    // other pointer in `info` is zero, so the kernel writes nowhere else.
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    buf.truncate(info.xlated_prog_len.min(len) as usize / 8);
    Ok(buf)
}

/// `struct bpf_map_info`'s leading scalars: only the id is needed, and the
/// kernel copies `min(info_len, sizeof)` bytes, so a prefix is enough.
#[repr(C)]
#[derive(Default)]
struct BpfMapInfoPrefix {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// The kernel-wide id of a map.
pub fn map_id(map: &MapFd) -> Result<u32, Errno> {
    let mut info = BpfMapInfoPrefix::default();
    let mut attr = InfoAttr {
        bpf_fd: map.raw() as u32,
        info_len: std::mem::size_of::<BpfMapInfoPrefix>() as u32,
        info: ptr(&mut info as *mut BpfMapInfoPrefix),
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info.id)
}

// ------------------------------------------------------ other syscalls

/// Effective capability bits of this thread (`capget(2)`, version 3 which
/// carries 64 bits in two 32-bit words). Raw, because `nix` has no
/// capability calls; the one call answers directly, where `CapEff` in
/// `/proc/self/status` would depend on procfs being mounted and on parsing
/// its text.
pub fn effective_caps() -> Result<u64, Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: version 3 makes the kernel write exactly two `Data` records
    // (include/uapi/linux/capability.h _LINUX_CAPABILITY_U32S_3 = 2) into
    // `data`, and read/write the header, both live locals of that layout.
    let r =
        unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

/// The running kernel's release string (`uname -r`).
pub fn kernel_release() -> Result<String, Errno> {
    let uts = nix::sys::utsname::uname()?;
    Ok(uts.release().to_string_lossy().into_owned())
}

/// `if_nametoindex(3)`; `None` when no such interface exists.
pub fn if_nametoindex(name: &CStr) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// The page size, which bounds test-run frames (net/bpf/test_run.c).
pub fn page_size() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(r)) if r > 0 => r as usize,
        _ => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_go_to_the_kernel_in_its_own_byte_order() {
        // `r1 = *(u16 *)(r2 - 2)` (LDX|MEM|H, dst 1, src 2, off -2), worked
        // out from struct bpf_insn's layout: on a little-endian machine the
        // first bitfield (dst_reg) is the low nibble and integers start
        // with their low byte; on a big-endian one, the reverse.
        let ldx = crate::isa::Insn::new(0x69, 1, 2, -2, 0);
        let native = encode_native(&[ldx]);
        if cfg!(target_endian = "little") {
            assert_eq!(native, [0x69, 0x21, 0xfe, 0xff, 0, 0, 0, 0]);
        } else {
            assert_eq!(native, [0x69, 0x12, 0xff, 0xfe, 0, 0, 0, 0]);
        }
        assert_eq!(decode_native(native.try_into().unwrap()), ldx);
    }

    use std::mem::{offset_of, size_of};

    // Offsets from include/uapi/linux/bpf.h as compiled on x86_64/arm64
    // (printed with offsetof() against the installed 6.1 UAPI header; the
    // 6.4+ `log_true_size` follows `core_relo_rec_size`).
    #[test]
    fn attr_layouts_match_uapi() {
        assert_eq!(offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(offset_of!(MapCreateAttr, map_ifindex), 44);
        assert_eq!(offset_of!(ProgLoadAttr, prog_ifindex), 64);
        assert_eq!(size_of::<EnableStatsAttr>(), 4);
        assert_eq!(offset_of!(MapCreateAttr, btf_fd), 48);
        assert_eq!(offset_of!(MapCreateAttr, map_extra), 64);
        assert_eq!(size_of::<MapCreateAttr>(), 72);

        assert_eq!(offset_of!(MapElemAttr, key), 8);
        assert_eq!(offset_of!(MapElemAttr, value), 16);
        assert_eq!(offset_of!(MapElemAttr, flags), 24);

        assert_eq!(offset_of!(ProgLoadAttr, insns), 8);
        assert_eq!(offset_of!(ProgLoadAttr, license), 16);
        assert_eq!(offset_of!(ProgLoadAttr, log_level), 24);
        assert_eq!(offset_of!(ProgLoadAttr, log_buf), 32);
        assert_eq!(offset_of!(ProgLoadAttr, prog_flags), 44);
        assert_eq!(offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(offset_of!(ProgLoadAttr, prog_btf_fd), 72);
        assert_eq!(offset_of!(ProgLoadAttr, fd_array), 120);
        assert_eq!(offset_of!(ProgLoadAttr, core_relos), 128);
        assert_eq!(offset_of!(ProgLoadAttr, core_relo_rec_size), 136);
        assert_eq!(offset_of!(ProgLoadAttr, log_true_size), 140);

        assert_eq!(offset_of!(TestRunAttr, data_in), 16);
        assert_eq!(offset_of!(TestRunAttr, data_out), 24);
        assert_eq!(offset_of!(TestRunAttr, repeat), 32);
        assert_eq!(offset_of!(TestRunAttr, duration), 36);
        assert_eq!(offset_of!(TestRunAttr, ctx_in), 48);
        assert_eq!(offset_of!(TestRunAttr, ctx_out), 56);
        assert_eq!(offset_of!(TestRunAttr, flags), 64);
        assert_eq!(offset_of!(TestRunAttr, batch_size), 72);
        assert_eq!(size_of::<XdpMd>(), 24);

        assert_eq!(offset_of!(ProgLoadAttr, func_info_rec_size), 76);
        assert_eq!(offset_of!(ProgLoadAttr, func_info), 80);
        assert_eq!(offset_of!(ProgLoadAttr, line_info), 96);
        assert_eq!(offset_of!(ProgLoadAttr, attach_btf_id), 108);
        assert_eq!(offset_of!(ProgLoadAttr, attach_prog_fd), 112);
        assert_eq!(size_of::<BtfLoadAttr>(), 32);
        assert_eq!(offset_of!(RawTpAttr, cookie), 16);

        assert_eq!(offset_of!(NextIdAttr, next_id), 4);
        assert_eq!(offset_of!(InfoAttr, info), 8);

        assert_eq!(offset_of!(BpfProgInfo, jited_prog_len), 16);
        assert_eq!(offset_of!(BpfProgInfo, xlated_prog_len), 20);
        assert_eq!(offset_of!(BpfProgInfo, name), 64);
        assert_eq!(offset_of!(BpfProgInfo, run_cnt), 200);
        assert_eq!(offset_of!(BpfProgInfo, verified_insns), 216);
        assert_eq!(offset_of!(BpfProgInfo, attach_btf_id), 224);
        assert_eq!(size_of::<BpfProgInfo>(), 232);
    }
}
