//! Loading a program for a device's offload: its maps created bound to the
//! device (`map_ifindex`) and the program bound to it (`prog_ifindex`),
//! which is what `XDP_FLAGS_HW_MODE` requires. The kernel hands
//! device-bound objects to the driver's offload callbacks
//! (kernel/bpf/offload.c `bpf_prog_dev_bound_init`,
//! `bpf_map_offload_map_alloc`) and refuses them for devices whose driver
//! registered no offload device.
//!
//! One code path for both users: the live backend's `hw` mode on a real
//! NIC (`harness/src/backends/live/offload.rs`, which adds its own
//! friendlier checks first) and the QEMU guest agent's netdevsim cell,
//! which wants the kernel's own answer for every map and program, so this
//! module refuses nothing itself.
//!
//! Maps of an offload-neutral type (`PERF_EVENT_ARRAY`,
//! include/linux/bpf.h `bpf_map_offload_neutral`) stay on the host: the
//! kernel lets a bound program use them (kernel/bpf/verifier.c
//! `check_map_prog_compatibility` → `bpf_offload_prog_map_match`).

use std::os::fd::{AsRawFd, OwnedFd};

use crate::isa::{self, opcode as op};
use crate::program::{MapType, Object, Program};
use crate::sys::{self, Errno};

/// A program and its maps bound to the device; freed when dropped.
#[derive(Debug)]
pub struct Bound {
    pub prog: OwnedFd,
    pub maps: Vec<OwnedFd>,
    /// The verifier log of the accepted load (drivers add their own
    /// lines: netdevsim's "Hello from netdevsim!").
    pub log: String,
}

/// What the kernel refused, at which step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// `BPF_MAP_CREATE` with `map_ifindex` refused map `map`.
    Map { map: String, map_type: MapType, errno: Errno },
    /// `BPF_PROG_LOAD` with `prog_ifindex` refused the program; `log` is
    /// the whole verifier log.
    Program { errno: Errno, log: String },
    /// An `lddw` names a map the object does not have.
    BadMapReference { insn: usize, index: i32 },
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::Map { map, map_type, errno } => write!(
                f,
                "creating {map_type:?} map `{map}` bound to the device (BPF_MAP_CREATE with map_ifindex): {errno}"
            ),
            BindError::Program { errno, .. } => write!(
                f,
                "loading the program bound to the device (BPF_PROG_LOAD with prog_ifindex): {errno}"
            ),
            BindError::BadMapReference { insn, index } => {
                write!(f, "instruction {insn} refers to map {index}, which the object does not have")
            }
        }
    }
}

/// Verifier log buffer: offload logs are the core verifier's plus the
/// driver's lines.
const LOG_BYTES: usize = 1 << 20;

/// Creates `obj`'s maps and `prog` bound to `ifindex` (in the caller's
/// network namespace).
pub fn load_bound(obj: &Object, prog: &Program, ifindex: u32) -> Result<Bound, BindError> {
    let mut maps = Vec::new();
    for m in &obj.maps {
        let dev = if m.map_type == MapType::PerfEventArray { 0 } else { ifindex };
        let fd = sys::map_create_offloaded(
            m.map_type.uapi(),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
            dev,
        )
        .map_err(|errno| BindError::Map {
            map: m.name.clone(),
            map_type: m.map_type,
            errno,
        })?;
        maps.push(fd);
    }
    let mut insns = prog.insns.clone();
    let mut i = 0;
    while i < insns.len() {
        if insns[i].is_lddw()
            && (insns[i].src == op::PSEUDO_MAP_FD || insns[i].src == op::PSEUDO_MAP_VALUE)
        {
            let index = insns[i].imm;
            let fd = usize::try_from(index)
                .ok()
                .and_then(|x| maps.get(x))
                .ok_or(BindError::BadMapReference { insn: i, index })?;
            insns[i].imm = fd.as_raw_fd();
            i += 2;
        } else {
            i += 1;
        }
    }
    let mut log = vec![0u8; LOG_BYTES];
    // The section's flags, as for an ordinary load: an `xdp.frags` program
    // asks for BPF_F_XDP_HAS_FRAGS, which offload refuses
    // (kernel/bpf/offload.c bpf_prog_dev_bound_init).
    let flags = if prog.frags { sys::BPF_F_XDP_HAS_FRAGS } else { 0 };
    let r = sys::prog_load_xdp_flags(
        &isa::encode_le(&insns),
        &obj.license,
        &prog.name,
        ifindex,
        flags,
        &mut log,
    );
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let log = String::from_utf8_lossy(&log[..end]).into_owned();
    match r {
        Ok(fd) => Ok(Bound { prog: fd, maps, log }),
        Err(errno) => Err(BindError::Program { errno, log }),
    }
}
