//! An object's BTF in the kernel, shared by the programs of a session.
//!
//! Loading a program with its BTF and `func_info` makes it BTF-aware, as
//! libbpf loads it; fentry/fexit probes on it (the live backend's exact
//! verdicts) need that. It is never a reason to fail a load: when the
//! kernel refuses the BTF, or the program only verifies without it, the
//! program is loaded without, and [`BtfUse::Without`] says why.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::program::{BtfBlob, ObjectBtf, ProgramBtf};
use crate::sys;

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
            ObjectBtf::None => {
                return Err("the object was not read from an ELF file, so it has no BTF".into())
            }
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
                Err(format!(
                    "the kernel refused the object's BTF (BPF_BTF_LOAD: {errno}{})",
                    if last.is_empty() { String::new() } else { format!("; {last}") }
                ))
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

/// BTF for a program that came without any (assembled, or built by hand):
/// `int NAME(struct xdp_md *ctx)`, as clang would describe a one-function
/// XDP program, so that it can be loaded BTF-aware and traced. Only for
/// programs without BPF-to-BPF calls: every function needs a `func_info`
/// record, and we know no prototype for the others. `None` otherwise.
///
/// Encoding: Documentation/bpf/btf.rst ("BTF Type and String Encoding");
/// `struct xdp_md` only needs its name: the kernel maps a pointer to it in
/// a tracing program's arguments to `struct xdp_buff` by name
/// (kernel/bpf/btf.c btf_translate_to_vmlinux).
pub fn synthesize(program: &crate::program::Program) -> Option<BtfBlob> {
    use crate::isa::opcode as op;
    let calls_functions = program.insns.iter().any(|i| i.code == op::JMP | op::CALL && i.src == 1);
    if calls_functions || program.functions.len() > 1 {
        return None;
    }
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let name = if ident(&program.name) { program.name.as_str() } else { "xdp_prog" };
    let mut strings = vec![0u8];
    let mut add = |s: &str| {
        let off = strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        off
    };
    let (s_int, s_md, s_ctx, s_name) = (add("int"), add("xdp_md"), add("ctx"), add(name));
    const INT: u32 = 1;
    const PTR: u32 = 2;
    const STRUCT: u32 = 4;
    const FUNC: u32 = 12;
    const FUNC_PROTO: u32 = 13;
    const BTF_INT_SIGNED: u32 = 1;
    const LINKAGE_GLOBAL: u32 = 1;
    let info = |kind: u32, vlen: u32| kind << 24 | vlen;
    let types: Vec<u32> = vec![
        // [1] int: 4 bytes, signed, 32 bits
        s_int,
        info(INT, 0),
        4,
        BTF_INT_SIGNED << 24 | 32,
        // [2] struct xdp_md (24 bytes, members not needed)
        s_md,
        info(STRUCT, 0),
        24,
        // [3] struct xdp_md *
        0,
        info(PTR, 0),
        2,
        // [4] int (struct xdp_md *ctx)
        0,
        info(FUNC_PROTO, 1),
        1,
        s_ctx,
        3,
        // [5] the function
        s_name,
        info(FUNC, LINKAGE_GLOBAL),
        4,
    ];
    let type_len = (types.len() * 4) as u32;
    let mut bytes = Vec::new();
    // The kernel reads BTF in its own byte order (kernel/bpf/btf.c
    // `btf_parse_hdr` compares `hdr->magic` with BTF_MAGIC as is).
    bytes.extend_from_slice(&0xeb9f_u16.to_ne_bytes());
    bytes.extend_from_slice(&[1, 0]); // version, flags
    for w in [24, 0, type_len, type_len, strings.len() as u32] {
        bytes.extend_from_slice(&u32::to_ne_bytes(w));
    }
    for w in types {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    bytes.extend_from_slice(&strings);
    let mut programs = std::collections::BTreeMap::new();
    programs.insert(
        program.name.clone(),
        ProgramBtf { func_info: vec![(0, 5)], line_info: Vec::new() },
    );
    Some(BtfBlob { bytes, programs })
}
