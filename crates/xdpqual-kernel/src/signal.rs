//! Deferring SIGINT and SIGTERM while a program is attached to an
//! interface, so the run can detach it before the process exits.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, SIGINT and SIGTERM set a flag instead of killing the
/// process, so a run can detach its program before it exits; the previous
/// handlers come back on drop.
pub struct InterruptGuard {
    old: [(libc::c_int, libc::sigaction); 2],
}

impl InterruptGuard {
    pub fn install() -> InterruptGuard {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let mut old = [(libc::SIGINT, zeroed_sigaction()), (libc::SIGTERM, zeroed_sigaction())];
        for (sig, prev) in old.iter_mut() {
            let mut act = zeroed_sigaction();
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
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
        INTERRUPTED.load(Ordering::SeqCst)
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
