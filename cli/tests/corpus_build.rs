//! The committed corpus objects (`corpus/build/*.o`) must be exactly what
//! `corpus/build.sh` produces from the committed sources.
//!
//! Expectations are worked out per object, so a source edited without a
//! rebuild (or an object edited by hand) would silently test something else.
//! The rebuild only means something with the same compiler, so the test
//! skips, loudly, when `clang-19` is missing or reports a different version
//! from `corpus/build/CLANG_VERSION`. Uses only std so it builds whatever
//! shape the library is in.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

/// First line of `clang-19 --version`, or why it could not be had.
fn clang_version() -> Result<String, String> {
    let out = Command::new("clang-19")
        .arg("--version")
        .output()
        .map_err(|e| format!("clang-19 is not runnable: {e}"))?;
    if !out.status.success() {
        return Err(format!("`clang-19 --version` exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

fn objects_in(dir: &Path) -> BTreeSet<String> {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .collect()
}

/// Why the rebuild cannot be meaningful here, if it cannot.
fn skip_reason(recorded: &str) -> Option<String> {
    let found = match clang_version() {
        Ok(v) => v,
        Err(why) => return Some(why),
    };
    if found != recorded {
        return Some(format!("clang-19 is `{found}`, the objects were built with `{recorded}`"));
    }
    if !Path::new("/usr/s390x-linux-gnu/include/asm/byteorder.h").exists() {
        return Some(
            "s390x kernel headers (libc6-dev-s390x-cross), which the bpfeb builds use, are not \
             installed"
                .to_string(),
        );
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        return Some("libbpf headers (/usr/include/bpf) are not installed".to_string());
    }
    None
}

#[test]
fn committed_corpus_objects_match_a_fresh_build() {
    let corpus = corpus_dir();
    let committed_dir = corpus.join("build");
    let version_file = committed_dir.join("CLANG_VERSION");
    let recorded = fs::read_to_string(&version_file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", version_file.display()));
    if let Some(why) = skip_reason(recorded.trim()) {
        xdpqual::util::skip(format_args!("corpus rebuild check: {why}"));
        return;
    }

    let fresh_dir =
        std::env::temp_dir().join(format!("xdpqual-corpus-build-{}", std::process::id()));
    let _ = fs::remove_dir_all(&fresh_dir);
    fs::create_dir_all(&fresh_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", fresh_dir.display()));
    let out = Command::new("bash")
        .arg("build.sh")
        .arg(&fresh_dir)
        .current_dir(&corpus)
        .output()
        .expect("cannot run bash");
    assert!(
        out.status.success(),
        "corpus/build.sh failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let mut problems = Vec::new();
    // The corpus, then the hostile programs (corpus/hostile/) and the
    // big-endian builds (bpfeb/) in their own folders.
    for sub in ["", "hostile", "bpfeb"] {
        compare_objects(&committed_dir.join(sub), &fresh_dir.join(sub), &mut problems);
    }
    let _ = fs::remove_dir_all(&fresh_dir);
    assert!(problems.is_empty(), "corpus objects out of date:\n  {}", problems.join("\n  "));
    assert!(!objects_in(&committed_dir).is_empty(), "corpus/build holds no objects");
    assert!(
        !objects_in(&committed_dir.join("hostile")).is_empty(),
        "corpus/build/hostile holds no objects"
    );
    assert!(
        !objects_in(&committed_dir.join("bpfeb")).is_empty(),
        "corpus/build/bpfeb holds no objects"
    );
}

/// Records every object that is missing, extra or different between the
/// committed folder and a fresh build of it.
fn compare_objects(committed_dir: &Path, fresh_dir: &Path, problems: &mut Vec<String>) {
    let committed = objects_in(committed_dir);
    let fresh = objects_in(fresh_dir);
    for name in fresh.difference(&committed) {
        problems.push(format!(
            "{}: built from source but not committed",
            committed_dir.join(name).display()
        ));
    }
    for name in committed.difference(&fresh) {
        problems.push(format!(
            "{}: committed but no source builds it (stale object)",
            committed_dir.join(name).display()
        ));
    }
    for name in committed.intersection(&fresh) {
        let a = fs::read(committed_dir.join(name)).expect("read committed object");
        let b = fs::read(fresh_dir.join(name)).expect("read fresh object");
        if a != b {
            problems.push(format!(
                "{name}: stale: committed object ({} bytes) differs from a fresh build ({} bytes); run corpus/build.sh and commit",
                a.len(),
                b.len()
            ));
        }
    }
}
