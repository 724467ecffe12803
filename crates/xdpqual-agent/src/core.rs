//! CO-RE relocations against the guest kernel's own BTF: the job carries
//! the object, and the agent loads it here with the same loader and
//! options the host used, only with this kernel's `/sys/kernel/btf/vmlinux`
//! as the target. That is what a libbpf-based loader running on this
//! machine would do, so each cell runs the program as resolved for its own
//! kernel, and the host's engine reference runs the instructions reported
//! back.

use sha2::{Digest, Sha256};
use std::path::Path;
use xdpqual_isa as isa;
use xdpqual_object::loader::{self, LoadOptions, ProgType, TargetBtf};
use xdpqual_protocol::{hex, GuestCore, Job};

/// Replaces the instructions of every job program with the object's as
/// relocated against this kernel's BTF; the error is one line for the
/// host's report.
pub(crate) fn relocate(job: &mut Job) -> Result<GuestCore, String> {
    let core = job.core.as_ref().ok_or("the job carries no object")?;
    let opts = LoadOptions {
        prog_type: core.force_xdp.then_some(ProgType::Xdp),
        select: core.select.clone(),
        list_unknown: false,
        target_btf: TargetBtf::Host,
        map_sizes: core.map_sizes.clone(),
        // `__kconfig` externs read this kernel's release; its config text
        // is not in the cell (Debian kernels do not build in
        // /proc/config.gz), so a strong `CONFIG_*` extern fails here with
        // the loader's message naming it, and weak ones read 0.
        kconfig: loader::KernelConfig {
            release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|r| r.trim().to_string()),
            config: None,
            source: "the cell kernel's config, which the guest does not carry".into(),
        },
    };
    let loaded = loader::inspect_object_bytes_with(&core.object, Path::new("job.o"), &opts)
        .map_err(|e| format!("CO-RE against this kernel's BTF: {e}"))?;
    let mut insns = Vec::with_capacity(job.programs.len());
    for p in &mut job.programs {
        let mine = loaded.object.programs.iter().find(|l| l.name == p.name).ok_or_else(|| {
            format!("CO-RE: the guest's load of the object has no program {}", p.name)
        })?;
        let bytes = isa::encode_le(&mine.insns);
        // Relocation rewrites values, never the instruction count.
        if bytes.len() != p.insns.len() {
            return Err(format!(
                "CO-RE: program {} has {} instruction slots in the guest's load, {} in the host's",
                p.name,
                bytes.len() / 8,
                p.insns.len() / 8
            ));
        }
        p.insns = bytes.clone();
        insns.push(bytes);
    }
    let path = TargetBtf::Host.path();
    // The loader has just read and parsed the same file within its bound.
    let btf = xdpqual_object::input::read_limited(path, "BTF file", 256 << 20)
        .map_err(|e| format!("CO-RE: re-reading {}: {e}", path.display()))?;
    Ok(GuestCore {
        btf_path: path.display().to_string(),
        btf_bytes: btf.len() as u64,
        btf_sha256: hex::hex(&Sha256::digest(&btf)),
        relocations: loaded.core_relocations.iter().map(|r| r.to_string()).collect(),
        insns,
    })
}
