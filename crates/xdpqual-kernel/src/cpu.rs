//! CPU pinning.
//!
//! A BPF program run by BPF_PROG_TEST_RUN (or by the live backend's
//! injector) runs on the CPU of the calling thread, which picks the slot of
//! every per-CPU map it touches and what `bpf_get_smp_processor_id`
//! returns. The engine plays one fixed CPU, so callers that compare with it
//! pin themselves first.

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::sys::Errno;

/// Pins the calling thread (only it, not the process) to `cpu`.
///
/// Fails with EINVAL when `cpu` is not online or not allowed to this
/// thread (sched_setaffinity(2)), or is beyond what a `cpu_set_t` can name
/// (CPU_SETSIZE, 1024 in glibc and musl); callers that only want the
/// pinning when it is possible ignore the error.
pub fn pin_to_cpu(cpu: usize) -> Result<(), Errno> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    // Pid 0 is the calling thread (sched_setaffinity(2)).
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::sched_getcpu;

    #[test]
    fn pins_to_an_allowed_cpu_and_refuses_one_past_the_set() {
        // CPU 0 may be outside this thread's allowed set (a restricted
        // cgroup), so the thread pins to a CPU it is already allowed, then
        // checks sched_getcpu agrees.
        let me = std::thread::spawn(|| {
            let cpu = sched_getcpu().expect("sched_getcpu");
            pin_to_cpu(cpu).expect("the current CPU is allowed");
            assert_eq!(sched_getcpu().expect("sched_getcpu"), cpu);
        });
        me.join().unwrap();
        assert_eq!(pin_to_cpu(1 << 20), Err(Errno(libc::EINVAL)));
    }
}
