//! `hw` mode: creating the maps and the program bound to the device
//! (`map_ifindex`, `prog_ifindex`), which is what offload requires: the
//! kernel hands device-bound objects to the driver's offload callbacks
//! (kernel/bpf/offload.c `bpf_prog_dev_bound_init`, `bpf_map_offload_map_alloc`)
//! and refuses them for devices whose driver registered no offload device.
//! Both calls resolve the ifindex in the caller's network namespace, so
//! they run inside the interface's.

use super::attach::Interface;
use super::sys::{self, Errno};
use crate::program::{MapType, Object, Program};
use xdpqual_kernel::host::offload::BindError;
pub use xdpqual_kernel::host::offload::Bound as Offloaded;

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
    // The kernel layer's code, which the QEMU netdevsim cell runs too.
    sys::in_netns(netns.as_deref(), || {
        xdpqual_kernel::host::offload::load_bound(obj, prog, iface.ifindex).map_err(|e| match e {
            BindError::Map { map, errno, .. } => {
                refused(format!("to create map `{map}` bound to the device"), errno, String::new())
            }
            BindError::Program { errno, log } => refused(
                format!(
                    "to load program `{}` bound to the device (BPF_PROG_LOAD with prog_ifindex {})",
                    prog.name, iface.ifindex
                ),
                errno,
                log,
            ),
            BindError::BadMapReference { insn, index } => Box::new(OffloadError::BadMapReference {
                iface: iface.describe(),
                program: prog.name.clone(),
                insn,
                index,
            }),
        })
    })
    .map_err(|errno| Box::new(OffloadError::Netns { iface: iface.describe(), errno }))?
}
