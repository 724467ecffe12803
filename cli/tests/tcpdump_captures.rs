//! Every capture of tcpdump's test suite (830 files, many deliberately
//! malformed) either reads fully or ends with a per-file error — never a
//! panic, a hang or a huge allocation. Prints a table of outcomes.
//!
//! The corpus lives outside the repository, in `shared/` next to it (or
//! inside it on the device machine); `XDPQUAL_SHARED_DIR` overrides. If it
//! is absent the test prints SKIP and passes.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use xdpqual::capture::CaptureReader;

fn corpus_dir() -> Option<PathBuf> {
    xdpqual::util::shared_dir("pcaps/tcpdump/tests")
}

enum Outcome {
    Read { packets: u64 },
    Error { kind: &'static str, packets: u64, message: String },
}

/// How long one file may take before it counts as hung. Not a performance
/// check: the slowest file takes milliseconds; this only turns a hang into a
/// failure that names the file.
const HANG_LIMIT: Duration = Duration::from_secs(120);

/// Bound on packets per file: far above any file in the corpus, low enough
/// that a reader looping without progress would be caught.
const PACKET_LIMIT: u64 = 5_000_000;

fn read_file(path: &Path) -> Outcome {
    let mut reader = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Error { kind: e.kind_label(), packets: 0, message: e.to_string() }
        }
    };
    let mut packets = 0u64;
    loop {
        match reader.next_packet() {
            None => return Outcome::Read { packets },
            Some(Ok(p)) => {
                assert_eq!(p.index, packets, "indices are consecutive");
                assert!(p.data.len() <= 262_144 + 14, "frame of {} bytes", p.data.len());
                packets += 1;
                assert!(
                    packets <= PACKET_LIMIT,
                    "{}: more than {PACKET_LIMIT} packets",
                    path.display()
                );
            }
            Some(Err(e)) => {
                let message = e.to_string();
                assert!(
                    message.contains(&*path.to_string_lossy()),
                    "error message does not name the file: {message}"
                );
                return Outcome::Error { kind: e.kind_label(), packets, message };
            }
        }
    }
}

#[test]
fn every_tcpdump_capture_reads_or_fails_cleanly() {
    let Some(dir) = corpus_dir() else {
        xdpqual::util::skip(format_args!(
            "tcpdump_captures: no shared/pcaps/tcpdump/tests directory (set XDPQUAL_SHARED_DIR)"
        ));
        return;
    };
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let total = files.len();
    assert!(total > 0, "{} is empty", dir.display());

    let mut table: BTreeMap<String, usize> = BTreeMap::new();
    let mut panics = Vec::new();
    let mut hung = Vec::new();
    let mut examples: BTreeMap<String, String> = BTreeMap::new();
    let (mut ok_files, mut err_files, mut packets_total) = (0usize, 0usize, 0u64);
    for path in &files {
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(|| read_file(&p))));
        });
        let result = match rx.recv_timeout(HANG_LIMIT) {
            Ok(r) => r,
            Err(_) => {
                hung.push(path.display().to_string());
                continue;
            }
        };
        match result {
            Ok(Outcome::Read { packets }) => {
                ok_files += 1;
                packets_total += packets;
                *table.entry("read fully".into()).or_default() += 1;
            }
            Ok(Outcome::Error { kind, packets, message }) => {
                err_files += 1;
                packets_total += packets;
                // Group by kind, and for link types by the link type named.
                let reason = match kind {
                    "unsupported-link" => {
                        let link = message
                            .split(": ")
                            .nth(2)
                            .and_then(|s| s.split(" is not").next())
                            .unwrap_or("");
                        format!("error: {kind}: {link}")
                    }
                    _ => format!("error: {kind}"),
                };
                examples.entry(reason.clone()).or_insert(message);
                *table.entry(reason).or_default() += 1;
            }
            Err(_) => panics.push(path.display().to_string()),
        }
    }
    xdpqual::util::count(format_args!("tcpdump corpus: {total} files in {}", dir.display()));
    println!("{:>6}  outcome", "files");
    for (reason, n) in &table {
        println!("{n:>6}  {reason}");
    }
    xdpqual::util::count(format_args!("packets read: {packets_total}"));
    println!("one example message per error reason:");
    for (reason, msg) in &examples {
        println!("  [{reason}] {msg}");
    }
    assert!(panics.is_empty(), "reading panicked on {} file(s): {panics:?}", panics.len());
    assert!(hung.is_empty(), "reading did not finish within {HANG_LIMIT:?} for: {hung:?}");
    assert_eq!(ok_files + err_files, total, "every file is accounted for");
    assert_eq!(table.values().sum::<usize>(), total);
}
