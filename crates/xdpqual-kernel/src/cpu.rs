//! CPU pinning.
//!
//! A BPF program run by BPF_PROG_TEST_RUN (or by the live backend's
//! injector) runs on the CPU of the calling thread, which picks the slot of
//! every per-CPU map it touches and what `bpf_get_smp_processor_id`
//! returns. The engine plays one fixed CPU, so callers that compare with it
//! pin themselves first.

use crate::sys::Errno;

/// Pins the calling thread (only it, not the process) to `cpu`.
///
/// Fails with EINVAL when `cpu` is not online or not allowed to this
/// thread (sched_setaffinity(2)); callers that only want the pinning when
/// it is possible ignore the error.
pub fn pin_to_cpu(cpu: usize) -> Result<(), Errno> {
    // `CPU_SET` indexes a fixed-size bit array: a CPU beyond it cannot be
    // named in a cpu_set_t (CPU_SETSIZE, 1024 in glibc and musl).
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is plain data, so all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below the set's bit count (checked above), so
    // CPU_SET sets a bit inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t and its exact size is passed;
    // sched_setaffinity(0, ...) affects only the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_to_an_allowed_cpu_and_refuses_one_past_the_set() {
        // CPU 0 may be outside this thread's allowed set (a restricted
        // cgroup), so the thread pins to a CPU it is already allowed, then
        // checks sched_getcpu agrees.
        let me = std::thread::spawn(|| {
            // SAFETY: sched_getcpu takes no arguments.
            let cpu = unsafe { libc::sched_getcpu() };
            assert!(cpu >= 0, "sched_getcpu failed");
            pin_to_cpu(cpu as usize).expect("the current CPU is allowed");
            // SAFETY: as above.
            assert_eq!(unsafe { libc::sched_getcpu() }, cpu);
        });
        me.join().unwrap();
        assert_eq!(pin_to_cpu(1 << 20), Err(Errno(libc::EINVAL)));
    }
}
