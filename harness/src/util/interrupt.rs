//! SIGINT/SIGTERM as a request to stop, for commands that can stop between
//! packets and report what they have (`diff`): the first signal sets a flag
//! the packet loop reads; the command then prints its partial results,
//! marked as partial, and exits 130. A second signal ends the process as
//! usual (the handler is installed with SA_RESETHAND), so a stuck run can
//! still be stopped.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM for the rest of the process.
pub fn install() {
    REQUESTED.store(false, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is plain data; all-zero is SIG_DFL, empty mask.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        // SA_RESTART: a syscall under way (a BPF_PROG_TEST_RUN, a read) is
        // restarted rather than failing with EINTR, so the packet being run
        // when the signal came still gets its real result.
        act.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        // SAFETY: `act` is a live, initialised sigaction; the handler only
        // stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

/// Whether SIGINT or SIGTERM arrived since [`install`] (always false when
/// it was never installed).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
