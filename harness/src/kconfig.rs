//! The running kernel's release and config, which `__kconfig` externs read
//! (see `xdpqual_object::loader::externs`). Read where libbpf reads them
//! (tools/lib/bpf/libbpf.c `bpf_object__read_kconfig_file`):
//! `/boot/config-$(uname -r)` first, then `/proc/config.gz`. The loader gets
//! the text through `LoadOptions::kconfig`, so the engine and the host
//! backend run the same `.kconfig` bytes.

use crate::loader::KernelConfig;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

/// Largest config text read: real ones are 100-300 KiB.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// This machine's kernel release and config, read once per process.
pub fn host_kernel_config() -> KernelConfig {
    static HOST: OnceLock<KernelConfig> = OnceLock::new();
    HOST.get_or_init(read_host).clone()
}

fn read_host() -> KernelConfig {
    let release = xdpqual_kernel::sys::kernel_release().ok();
    let mut tried = Vec::new();
    if let Some(r) = &release {
        let boot = format!("/boot/config-{r}");
        match read_plain(&boot) {
            Ok(text) => return KernelConfig { release, config: Some(text), source: boot },
            Err(e) => tried.push(format!("{boot}: {e}")),
        }
    }
    match read_gzip("/proc/config.gz") {
        Ok(text) => KernelConfig { release, config: Some(text), source: "/proc/config.gz".into() },
        Err(e) => {
            tried.push(format!("/proc/config.gz: {e}"));
            KernelConfig { release, config: None, source: tried.join("; ") }
        }
    }
}

fn read_plain(path: &str) -> Result<Arc<str>, String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(|e| e.to_string())?
        .take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text.into())
}

/// Decompresses with the system's `gzip` (the workspace has no inflate
/// crate, and this runs once per process).
fn read_gzip(path: &str) -> Result<Arc<str>, String> {
    if !std::path::Path::new(path).exists() {
        return Err("does not exist (kernel built without CONFIG_IKCONFIG_PROC)".into());
    }
    let mut child = Command::new("gzip")
        .args(["-dc", path])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    let mut text = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading gzip's output: {e}"))?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("gzip -dc failed ({status})"));
    }
    Ok(text.into())
}
