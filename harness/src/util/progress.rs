//! Progress bars on stderr for the long commands (`diff`, `bench`, `live`,
//! `matrix`), in the style of `qualify`'s bar. Off unless the command line
//! turns them on ([`enable`]), so the library and the tests stay silent;
//! and even then only while both stderr and stdout are terminals, so a
//! report piped or redirected never carries a bar's escape codes.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called once by the CLI: `on` is false with `--quiet`.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether a bar would be drawn now.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
        && std::io::stderr().is_terminal()
        && std::io::stdout().is_terminal()
}

/// A bar, or nothing when bars are off; cleared from the terminal when
/// dropped, so an early return or an error leaves no stale bar behind.
#[derive(Default)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    pub fn set_position(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.set_position(n);
        }
    }

    pub fn set_length(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.set_length(n);
        }
    }

    /// The text after the bar: which capture, row, cell or phase.
    pub fn set_message(&self, m: impl Into<String>) {
        if let Some(b) = &self.0 {
            // Names come from files: no control character reaches the terminal.
            b.set_message(crate::util::escape::terminal(&m.into()));
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Every bar is drawn through one MultiProgress, so that two at once (a
/// matrix's cells and a kernel download) stack instead of overwriting
/// each other.
fn multi() -> &'static indicatif::MultiProgress {
    static MULTI: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();
    MULTI.get_or_init(indicatif::MultiProgress::new)
}

fn styled(bar: ProgressBar, template: &str) -> Bar {
    let bar = multi().add(bar);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(250));
    Bar(Some(bar))
}

/// A counter of packets of unknown total: `what` names the work.
pub fn packets(what: &str) -> Bar {
    if !enabled() {
        return Bar(None);
    }
    let t = format!("{{spinner}} {what}: {{pos}} packets ({{per_sec}}), {{elapsed}}  {{wide_msg}}");
    styled(ProgressBar::new_spinner(), &t)
}

/// A bar over `n` steps (bench rows, matrix cells); the message says which
/// step and phase is under way.
pub fn steps(what: &str, n: u64) -> Bar {
    if !enabled() {
        return Bar(None);
    }
    let t = format!("{{bar:30}} {{pos}}/{{len}} {what}, {{elapsed}} elapsed  {{wide_msg}}");
    styled(ProgressBar::new(n), &t)
}

/// A byte counter for a download (`len` when the size is known).
pub fn bytes(what: &str, len: Option<u64>) -> Bar {
    if !enabled() {
        return Bar(None);
    }
    match len {
        Some(n) => styled(
            ProgressBar::new(n),
            &format!(
                "{{bar:30}} {what}: {{bytes}}/{{total_bytes}} ({{bytes_per_sec}}, ETA {{eta}})"
            ),
        ),
        None => styled(
            ProgressBar::new_spinner(),
            &format!("{{spinner}} {what}: {{bytes}} ({{bytes_per_sec}})"),
        ),
    }
}
