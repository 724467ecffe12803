//! SIGINT and SIGTERM as a request to stop, for the runs that must finish
//! something first: `live` detaches its program from the interface before
//! the process exits, `diff` stops between packets and reports what it has,
//! marked as partial. The one handler only sets a flag the run polls.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// What a second SIGINT or SIGTERM does while the guard is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondSignal {
    /// Also only sets the flag: the run must reach its clean-up (a program
    /// left attached to an interface would outlive the process).
    Deferred,
    /// Ends the process as usual (`SA_RESETHAND`), so a stuck run can still
    /// be stopped. Interrupted system calls restart (`SA_RESTART`), so the
    /// packet under way when the first signal came still gets its result.
    EndsProcess,
}

/// Whether SIGINT or SIGTERM arrived since the last [`InterruptGuard`] was
/// installed (false when none was).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// While alive, SIGINT and SIGTERM set a flag instead of killing the
/// process (see [`SecondSignal`] for a second one); the previous handlers
/// come back on drop.
pub struct InterruptGuard {
    old: [(libc::c_int, libc::sigaction); 2],
}

impl InterruptGuard {
    pub fn install(second: SecondSignal) -> InterruptGuard {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let mut old = [(libc::SIGINT, zeroed_sigaction()), (libc::SIGTERM, zeroed_sigaction())];
        for (sig, prev) in old.iter_mut() {
            let mut act = zeroed_sigaction();
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            if second == SecondSignal::EndsProcess {
                act.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
            }
            // SAFETY: `act` and `prev` are live sigaction structs; the
            // handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(*sig, &act, prev);
            }
        }
        InterruptGuard { old }
    }

    pub fn interrupted(&self) -> bool {
        interrupted()
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restores the handler saved by `install`.
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
    }
}

fn zeroed_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is plain data; all-zero is SIG_DFL with no flags.
    unsafe { std::mem::zeroed() }
}
