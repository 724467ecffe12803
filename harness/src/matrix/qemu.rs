//! Booting one guest: QEMU with the kernel and initramfs, the serial
//! console on a pipe, a deadline, and nothing left behind.
//!
//! The child is killed (and reaped) on every path out of [`boot`], and
//! asked by the kernel to die with us (`PR_SET_PDEATHSIG`) if xdpqual itself
//! is killed, so no QEMU outlives a run.

use super::protocol::{HELLO, MAGIC};
use super::spec::Arch;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Guest memory: the cloud kernels and a few-MiB initramfs fit easily.
pub const MEMORY_MB: u32 = 256;
/// Console bytes kept for the report of a failed cell.
pub const TAIL_BYTES: usize = 3000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{binary} is not installed, so {arch} cells cannot run; install it (Debian: `apt-get install {package}`, which ci/setup.sh does) or leave out the {arch} cells with --cells")]
    Missing { binary: String, arch: String, package: String },
    #[error("starting {binary}: {reason}")]
    Spawn { binary: String, reason: String },
}

pub fn binary(arch: Arch) -> (&'static str, &'static str) {
    match arch {
        Arch::X86_64 => ("qemu-system-x86_64", "qemu-system-x86"),
        Arch::Aarch64 => ("qemu-system-aarch64", "qemu-system-arm"),
        Arch::S390x => ("qemu-system-s390x", "qemu-system-misc"),
    }
}

/// The QEMU binary for `arch`, found on PATH.
pub fn find(arch: Arch) -> Result<PathBuf, QemuError> {
    let (bin, package) = binary(arch);
    find_in(bin, std::env::var_os("PATH").unwrap_or_default()).ok_or_else(|| QemuError::Missing {
        binary: bin.into(),
        arch: arch.name().into(),
        package: package.into(),
    })
}

fn find_in(bin: &str, path: std::ffi::OsString) -> Option<PathBuf> {
    std::env::split_paths(&path).map(|d| d.join(bin)).find(|p| p.is_file())
}

/// `/dev/kvm` opens for read and write (it may still not work: see
/// [`VmResult::hello`]).
pub fn kvm_openable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

pub struct VmSpec<'a> {
    pub qemu: &'a Path,
    pub arch: Arch,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub accel: Accel,
    /// Kill the guest if it has not said hello by then (a hung boot).
    pub hello_timeout: Duration,
    /// Kill the guest if it has not exited by then.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct VmResult {
    /// Everything the guest wrote on its console.
    pub console: String,
    /// Time from start to the agent's hello; `None`: it never ran.
    pub hello: Option<Duration>,
    pub wall: Duration,
    /// Killed at a deadline (which one: `hello` tells).
    pub timed_out: bool,
    pub exit: Option<i32>,
}

impl VmResult {
    /// The last bytes of the console with the agent's frames left out.
    pub fn tail(&self) -> String {
        let text: String =
            self.console.lines().filter(|l| !l.contains(MAGIC)).collect::<Vec<_>>().join("\n");
        let start = text.len().saturating_sub(TAIL_BYTES);
        let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text[start..].to_string()
    }
}

pub fn command(spec: &VmSpec) -> Command {
    let mut cmd = Command::new(spec.qemu);
    let console = match spec.arch {
        Arch::X86_64 => "ttyS0",
        Arch::Aarch64 => "ttyAMA0",
        // The SCLP line-mode console, which QEMU's s390-ccw-virtio machine
        // puts `-serial` on (built into Debian's s390x kernel, no module).
        Arch::S390x => "ttysclp0",
    };
    match spec.arch {
        Arch::X86_64 => cmd.args(["-M", "pc"]),
        // pauth-impdef: QEMU's cheap pointer-authentication hash; the
        // architected one dominates TCG time on arm64 kernels.
        Arch::Aarch64 => cmd.args(["-M", "virt", "-cpu", "max,pauth-impdef=on"]),
        // The channel-I/O virtio machine; the guest needs no device but
        // its console, so none is added.
        Arch::S390x => cmd.args(["-M", "s390-ccw-virtio"]),
    };
    match (spec.accel, spec.arch) {
        (Accel::Kvm, _) => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        (Accel::Tcg, Arch::X86_64) => cmd.args(["-accel", "tcg", "-cpu", "max"]),
        (Accel::Tcg, Arch::Aarch64) => cmd.args(["-accel", "tcg"]),
        // Without the vector facility: s390x's csum_partial (arch/s390/lib/
        // csum-partial.c, 6.12) sums with VCKSM when the CPU has it and with
        // CKSM otherwise. Both are architected as the same 32-bit
        // end-around-carry sum, but QEMU 7.2's TCG vector path returns other
        // sums (measured with a probe of bpf_csum_diff: 0x88000000 for the
        // bytes 40 11 00 00, whose sum is 0x40110000), which the CKSM path
        // gets right. So the kernel takes the CKSM path, and bpf_csum_diff
        // returns what the s390x hardware returns either way.
        (Accel::Tcg, Arch::S390x) => cmd.args(["-accel", "tcg", "-cpu", "max,vx=off"]),
    };
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
    ])
    .args(["-m", &MEMORY_MB.to_string(), "-smp", "1"])
    .arg("-kernel")
    .arg(spec.kernel)
    .arg("-initrd")
    .arg(spec.initrd)
    // loglevel=1: only emergencies (a panic) share the console with the
    // agent's frames; panic=-1 reboots at once, which -no-reboot turns
    // into QEMU exiting.
    .args(["-append", &format!("console={console} panic=-1 quiet loglevel=1 rdinit=/init")])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl(PR_SET_PDEATHSIG), which is async-signal-safe and touches
    // no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            Ok(())
        });
    }
    cmd
}

/// Kills and reaps the child when dropped.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn boot(spec: &VmSpec) -> Result<VmResult, QemuError> {
    let start = Instant::now();
    let child = command(spec).spawn().map_err(|e| QemuError::Spawn {
        binary: spec.qemu.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut child = Reaper(child);
    let console = Arc::new(Mutex::new(Vec::<u8>::new()));
    let hello_at = Arc::new(Mutex::new(None::<Duration>));
    let mut stdout = child.0.stdout.take().expect("piped");
    let reader = {
        let console = Arc::clone(&console);
        let hello_at = Arc::clone(&hello_at);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut c = console.lock().expect("console lock");
                c.extend_from_slice(&buf[..n]);
                let mut h = hello_at.lock().expect("hello lock");
                if h.is_none() {
                    let tail = &c[c.len().saturating_sub(n + HELLO.len())..];
                    if tail.windows(HELLO.len()).any(|w| w == HELLO.as_bytes()) {
                        *h = Some(start.elapsed());
                    }
                }
            }
        })
    };
    let mut stderr = child.0.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let mut timed_out = false;
    let exit = loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            break status.code();
        }
        let now = start.elapsed();
        let said_hello = hello_at.lock().expect("hello lock").is_some();
        if now > spec.timeout || (!said_hello && now > spec.hello_timeout) {
            timed_out = true;
            let _ = child.0.kill();
            break child.0.wait().ok().and_then(|s| s.code());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child);
    let _ = reader.join();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    let mut console = String::from_utf8_lossy(&console.lock().expect("console lock")).into_owned();
    if !qemu_stderr.is_empty() {
        console.push_str("\n[qemu stderr] ");
        console.push_str(&String::from_utf8_lossy(&qemu_stderr));
    }
    let hello = *hello_at.lock().expect("hello lock");
    Ok(VmResult { console, hello, wall: start.elapsed(), timed_out, exit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_qemu_says_which_package() {
        assert!(find_in("qemu-system-x86_64", "/nonexistent".into()).is_none());
        let e = QemuError::Missing {
            binary: "qemu-system-aarch64".into(),
            arch: "aarch64".into(),
            package: binary(Arch::Aarch64).1.into(),
        };
        let s = e.to_string();
        assert!(s.contains("apt-get install qemu-system-arm") && s.contains("--cells"), "{s}");
    }

    #[test]
    fn command_line_has_console_and_no_reboot() {
        let spec = VmSpec {
            qemu: Path::new("/q"),
            arch: Arch::Aarch64,
            kernel: Path::new("/k"),
            initrd: Path::new("/i"),
            accel: Accel::Tcg,
            hello_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        let args: Vec<String> =
            command(&spec).get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let joined = args.join(" ");
        assert!(
            joined.contains("-M virt")
                && joined.contains("console=ttyAMA0")
                && joined.contains("-no-reboot"),
            "{joined}"
        );
    }
}
