//! Small shared helpers: atomic file writes, test skips, ordinals; hex
//! encoding and bounded input reads come from `xdpqual-object`.

pub mod escape;
pub mod progress;

/// Bounded, type-checked reads of the files a user names (in `xdpqual-object`,
/// which the loader shares).
pub use xdpqual_object::input;

use std::io::Write;
use std::path::Path;

/// English ordinal: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 63rd.
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

pub use xdpqual_object::hex::{hex, hex_bytes, hex_vec, unhex};

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed, then renamed over the target. A crash leaves either
/// the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Renaming over a device or a FIFO would replace it (`/dev/full` by a
    // regular file, as root): only a regular file, or nothing, is replaced.
    if let Ok(m) = std::fs::metadata(path) {
        if !m.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it exists and is not a regular file; refusing to replace it",
            ));
        }
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reports a test (or test part) that cannot run here, visibly.
///
/// libtest captures `print!`/`eprint!` output of passing tests, so a
/// `println!("SKIP: ...")` in a test that then returns is invisible in a CI
/// log and reads as a pass. `.ci/run` counts the `SKIP:` lines in its
/// closing summary.
pub fn skip(reason: impl std::fmt::Display) {
    past_test_capture("SKIP", reason);
}

/// A test's headline figure (files passed, packets compared), written past
/// libtest's capture like [`skip`]: a done-criterion such as "the pass count
/// is printed" needs the line in a passing run's log, where `println!`
/// output is swallowed. `.ci/run` lists the `COUNT:` lines at the end.
pub fn count(what: impl std::fmt::Display) {
    past_test_capture("COUNT", what);
}

/// A directory of the read-only project data (`shared/`, e.g.
/// `conformance/bpf_conformance/tests`), for tests. Looked for in this
/// order: `$XDPQUAL_SHARED_DIR`; `shared/` in the checkout or any directory
/// above it (beside the checkout is the usual place; a worktree sits deeper;
/// the device machine carries it inside); and, for a clone made from a local
/// checkout (`git clone main /tmp/fresh`), the same places around the
/// `origin` it was cloned from. `None` if none has `sub`.
pub fn shared_dir(sub: &str) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("XDPQUAL_SHARED_DIR").map(PathBuf::from).into_iter().collect();
    let around = |dir: &Path| -> Vec<PathBuf> {
        dir.canonicalize()
            .map(|d| d.ancestors().map(|a| a.join("shared")).collect())
            .unwrap_or_default()
    };
    candidates.extend(around(&root));
    let origin = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["remote", "get-url", "origin"])
        .output();
    if let Some(o) = origin.ok().filter(|o| o.status.success()) {
        let url = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if url.is_dir() {
            candidates.extend(around(&url));
        }
    }
    candidates.into_iter().map(|d| d.join(sub)).find(|d| d.is_dir())
}

/// Writes `TAG: text` to the process's stderr handle directly: libtest's
/// capture applies only to the print macros, so the line always appears.
fn past_test_capture(tag: &str, text: impl std::fmt::Display) {
    let line = format!("{tag}: {text}\n");
    // A failed write to stderr has nowhere better to be reported.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn ordinals() {
        let got: Vec<String> =
            [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 63, 100, 101, 111, 112].map(super::ordinal).into();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "63rd",
                "100th", "101st", "111th", "112th"
            ]
        );
    }

    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00ab10").unwrap(), vec![0, 0xab, 0x10]);
        assert_eq!(unhex("0x00 ab:10").unwrap(), vec![0, 0xab, 0x10]);
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }
}
