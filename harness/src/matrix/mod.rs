//! The kernel × architecture matrix: the same program and packets in real
//! kernels booted under QEMU, each compared with the engine.
//!
//! - [`spec`]: the cells (`vm-images/matrix.toml`);
//! - [`sources`], [`apt`], [`kernel`]: Debian kernels through the
//!   machine's apt, checked and cached; [`build`]: kernels built from
//!   Debian's kernel source with a config fragment, cached;
//! - [`agent`], [`initramfs`], [`protocol`]: the guest's `/init`, its
//!   archive, and the job/report it exchanges with us;
//! - [`qemu`]: one boot with deadlines and cleanup;
//! - [`job`], [`compare`], [`run`]: the engine's reference and the verdicts.

pub mod agent;
pub mod apt;
pub mod build;
pub mod compare;
pub mod initramfs;
pub mod job;
pub mod kernel;
pub mod offload;
/// The job/report wire format (crate `xdpqual-protocol`, shared with the agent).
pub use xdpqual_protocol as protocol;
pub mod qemu;
pub mod run;
pub mod sources;
pub mod spec;

pub use run::{run, CellReport, CellStatus, MatrixReport, Options};

use std::path::PathBuf;

/// Where kernels, apt lists and initramfs images are cached:
/// `$XDPQUAL_CACHE_DIR`, else `$XDG_CACHE_HOME/xdpqual/matrix`, else
/// `~/.cache/xdpqual/matrix`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDPQUAL_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("xdpqual").join("matrix")
}
