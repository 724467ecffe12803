//! `/init` of an xdpqual QEMU guest.
//!
//! It runs exactly what the host backend runs on the host: the host
//! backend is the `xdpqual-kernel` crate's `host` module, which the harness
//! uses too, the program it loads is `xdpqual-object`'s, and the job and
//! report are `xdpqual-protocol`'s. An ordinary crate: nothing is included
//! by path and nothing is copied.
//!
//! Sequence: say hello on the console (the host's proof of boot), mount
//! proc and sysfs (the maps code reads `/sys/devices/system/cpu/possible`),
//! read the job from the initramfs, resolve CO-RE relocations against
//! this kernel's BTF when the job carries an object, create maps, load, test-run every
//! packet, dump the maps, write the report as checksummed frames, wait for
//! the UART to drain and power off. A panic here kills init, the kernel
//! panics, and with `panic=-1` and QEMU's `-no-reboot` the VM exits; the
//! host then reports the console tail.

mod core;
mod offload;
mod run;

use xdpqual_protocol as protocol;

use std::io::Write;

fn main() {
    say(&format!("{} {}\n", protocol::HELLO, env!("CARGO_PKG_VERSION")));
    let pid1 = std::process::id() == 1;
    if pid1 {
        mount("proc", "/proc", "proc");
        mount("sysfs", "/sys", "sysfs");
        unlimit_memlock();
    }
    let report = run::run_job(protocol::JOB_PATH);
    let payload = serde_json::to_vec(&report).expect("a report always serialises");
    let frames = protocol::encode_frames(&payload);
    let mut out = std::io::stdout().lock();
    for f in frames {
        // A failed console write leaves nothing to report to; the host
        // sees missing frames and fails the cell.
        let _ = out.write_all(f.as_bytes());
    }
    let _ = out.write_all(format!("{}\n", protocol::END).as_bytes());
    let _ = out.flush();
    drop(out);
    if pid1 {
        power_off();
    }
}

fn say(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

fn mount(source: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    let flags = nix::mount::MsFlags::empty();
    if let Err(e) = nix::mount::mount(Some(source), target, Some(fstype), flags, None::<&str>) {
        say(&format!("xdpqual-agent: mounting {fstype} on {target} failed: {e}\n"));
    }
}

/// Kernels before 5.11 charge BPF maps and programs to RLIMIT_MEMLOCK
/// (memcg accounting replaced it in 5.11, kernel/bpf/syscall.c); init's
/// default of 8 MiB or less refuses even small maps with EPERM. libbpf
/// lifts the limit the same way (`bump_rlimit_memlock`).
fn unlimit_memlock() {
    use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
    if let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        say(&format!("xdpqual-agent: raising RLIMIT_MEMLOCK failed: {e}\n"));
    }
}

/// Waits for the console to transmit everything, then powers off.
fn power_off() -> ! {
    // Errors are ignored: there is nobody left to tell, and the fallback
    // below ends QEMU either way.
    let _ = nix::sys::termios::tcdrain(std::io::stdout());
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // reboot(2) returned: we are not allowed to power off. Exiting init
    // panics the kernel, which with panic=-1 and -no-reboot also ends QEMU.
    std::process::exit(1)
}
