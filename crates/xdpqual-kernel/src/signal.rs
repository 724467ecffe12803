//! SIGINT and SIGTERM as a request to stop, for the runs that must finish
//! something first: `live` detaches its program from the interface before
//! the process exits, `diff` stops between packets and reports what it has,
//! marked as partial. The one handler only sets a flag the run polls.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: std::ffi::c_int) {
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
    /// The handlers in force before `install`, restored on drop (`None`
    /// where sigaction refused, which it does only for an invalid signal).
    old: [(Signal, Option<SigAction>); 2],
}

impl InterruptGuard {
    pub fn install(second: SecondSignal) -> InterruptGuard {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let flags = match second {
            SecondSignal::Deferred => SaFlags::empty(),
            SecondSignal::EndsProcess => SaFlags::SA_RESTART | SaFlags::SA_RESETHAND,
        };
        let act = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
        let old = [Signal::SIGINT, Signal::SIGTERM].map(|sig| {
            // SAFETY: nix marks sigaction unsafe because a handler may do
            // anything in signal context; `on_signal` only stores to an
            // atomic, which is async-signal-safe.
            (sig, unsafe { sigaction(sig, &act) }.ok())
        });
        InterruptGuard { old }
    }

    pub fn interrupted(&self) -> bool {
        interrupted()
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            if let Some(prev) = prev {
                // SAFETY: restores the handler that was in force before
                // `install`, as the process had it.
                let _ = unsafe { sigaction(*sig, prev) };
            }
        }
    }
}
