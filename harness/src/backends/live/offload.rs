//! `hw` mode: creating the maps and the program bound to the device
//! (`map_ifindex`, `prog_ifindex`), which is what offload requires: the
//! kernel hands device-bound objects to the driver's offload callbacks
//! (kernel/bpf/offload.c `bpf_prog_dev_bound_init`, `bpf_map_offload_map_alloc`)
//! and refuses them for devices whose driver registered no offload device.
//! Both calls resolve the ifindex in the caller's network namespace, so
//! they run inside the interface's.

use std::os::fd::{AsRawFd, OwnedFd};

use super::attach::Interface;
use super::sys::{self, Errno};
use crate::isa::{self, opcode as op};
use crate::program::{MapType, Object, Program};

#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    #[error("hw mode on {iface} (driver {driver}, kernel {kernel}): the kernel refused {step}: {errno}. {hint}{log}")]
    Refused {
        iface: String,
        driver: String,
        kernel: String,
        step: String,
        errno: Errno,
        hint: &'static str,
        log: String,
    },
    #[error("hw mode on {iface}: map `{map}` is a {map_type:?} map; offloaded maps can only be ARRAY or HASH (kernel/bpf/offload.c bpf_map_offload_map_alloc)")]
    MapType { iface: String, map: String, map_type: MapType },
    #[error("hw mode on {iface}: program `{program}` instruction {insn} refers to map {index}, which the object does not have")]
    BadMapReference { iface: String, program: String, insn: usize, index: i32 },
    #[error("cannot enter the network namespace of {iface}: {errno}")]
    Netns { iface: String, errno: Errno },
}

/// A program and its maps living on the device; freed when dropped.
#[derive(Debug)]
pub struct Offloaded {
    pub prog: OwnedFd,
    pub maps: Vec<OwnedFd>,
}

fn hint(errno: Errno) -> &'static str {
    match errno.0 {
        libc::EINVAL | libc::EOPNOTSUPP => "The device's driver offers no BPF offload (only drivers that register an offload device, such as nfp and netdevsim, accept device-bound programs and maps).",
        libc::EPERM => "Device-bound objects need CAP_SYS_ADMIN.",
        _ => "",
    }
}

/// Creates `obj`'s maps and `prog` bound to `iface`.
pub fn load(
    obj: &Object,
    prog: &Program,
    iface: &Interface,
    kernel: &str,
) -> Result<Offloaded, Box<OffloadError>> {
    let refused = |step: String, errno: Errno, log: String| {
        Box::new(OffloadError::Refused {
            iface: iface.describe(),
            driver: iface.driver().to_string(),
            kernel: kernel.to_string(),
            step,
            errno,
            hint: hint(errno),
            log: if log.trim().is_empty() {
                String::new()
            } else {
                format!(" Verifier log: {}", log.trim())
            },
        })
    };
    for m in &obj.maps {
        if !matches!(m.map_type, MapType::Array | MapType::Hash) {
            return Err(Box::new(OffloadError::MapType {
                iface: iface.describe(),
                map: m.name.clone(),
                map_type: m.map_type,
            }));
        }
    }
    let netns = iface.endpoint.netns.clone();
    sys::in_netns(netns.as_deref(), || {
        let mut maps = Vec::new();
        for m in &obj.maps {
            let fd = sys::map_create_offloaded(
                m.map_type.uapi(),
                m.key_size,
                m.value_size,
                m.max_entries,
                m.flags,
                iface.ifindex,
            )
            .map_err(|e| {
                refused(format!("to create map `{}` bound to the device", m.name), e, String::new())
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
                let fd =
                    usize::try_from(index).ok().and_then(|x| maps.get(x)).ok_or_else(|| {
                        Box::new(OffloadError::BadMapReference {
                            iface: iface.describe(),
                            program: prog.name.clone(),
                            insn: i,
                            index,
                        })
                    })?;
                insns[i].imm = fd.as_raw_fd();
                i += 2;
            } else {
                i += 1;
            }
        }
        let mut log = vec![0u8; 1 << 20];
        let fd = sys::prog_load_xdp(
            &isa::encode_le(&insns),
            &obj.license,
            &prog.name,
            iface.ifindex,
            &mut log,
        )
        .map_err(|e| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            refused(
                format!(
                    "to load program `{}` bound to the device (BPF_PROG_LOAD with prog_ifindex {})",
                    prog.name, iface.ifindex
                ),
                e,
                String::from_utf8_lossy(&log[..end]).into_owned(),
            )
        })?;
        Ok(Offloaded { prog: fd, maps })
    })
    .map_err(|errno| Box::new(OffloadError::Netns { iface: iface.describe(), errno }))?
}
