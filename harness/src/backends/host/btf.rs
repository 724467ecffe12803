//! An object's BTF in the kernel, shared by the programs of a session.
//!
//! Loading a program with its BTF and `func_info` makes it BTF-aware, as
//! libbpf loads it; fentry/fexit probes on it (the live backend's exact
//! verdicts) need that. It is never a reason to fail a load: when the
//! kernel refuses the BTF, or the program only verifies without it, the
//! program is loaded without, and [`BtfUse::Without`] says why.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::sys;
use crate::program::{BtfBlob, ObjectBtf, ProgramBtf};

/// BTF uploaded with BPF_BTF_LOAD, with the records for each program.
#[derive(Debug)]
pub struct KernelBtf {
    fd: OwnedFd,
    blob: Arc<BtfBlob>,
}

/// Whether a program was loaded with its BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfUse {
    /// Loaded BTF-aware; `func_id` is the BTF id of the program's own
    /// function (its first `func_info` record), what fentry/fexit name as
    /// `attach_btf_id`.
    Loaded { func_id: u32 },
    /// Loaded without BTF, for this reason.
    Without(String),
}

impl BtfUse {
    pub fn func_id(&self) -> Option<u32> {
        match self {
            BtfUse::Loaded { func_id } => Some(*func_id),
            BtfUse::Without(_) => None,
        }
    }
}

impl KernelBtf {
    /// Uploads the object's BTF, or says why it has none the kernel took.
    pub fn load(btf: &ObjectBtf) -> Result<KernelBtf, String> {
        let blob = match btf {
            ObjectBtf::None => return Err("the object was not read from an ELF file, so it has no BTF".into()),
            ObjectBtf::Unusable(why) => return Err(why.clone()),
            ObjectBtf::Present(b) => Arc::clone(b),
        };
        let mut log = vec![0u8; 64 << 10];
        match sys::btf_load(&blob.bytes, &mut log) {
            Ok(fd) => Ok(KernelBtf { fd, blob }),
            Err(errno) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                Err(format!("the kernel refused the object's BTF (BPF_BTF_LOAD: {errno}{})", if last.is_empty() { String::new() } else { format!("; {last}") }))
            }
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The records of program `name`, if the object has func_info for it.
    pub(crate) fn program(&self, name: &str) -> Option<&ProgramBtf> {
        self.blob.programs.get(name).filter(|p| !p.func_info.is_empty())
    }
}
