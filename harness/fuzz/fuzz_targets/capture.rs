//! Arbitrary bytes as a capture file, through both capture readers and the
//! frame classifier: hostile pcaps are ordinary input (tcpdump's own test
//! suite is full of them), so whatever the bytes, each reader must yield
//! records or a positioned error and stop, never panic or allocate without
//! bound, and the two readers must agree record for record.
//!
//! - `CaptureReader` (streaming; pcap and pcapng, link-type handling),
//!   from an in-memory reader;
//! - `PcapBatches` (the replay fast path; classic pcap only), from a file,
//!   since it reads with read(2) into its own buffers;
//! - `classify` on every frame the streaming reader yields, since the
//!   per-protocol summary parses each frame's headers.
#![no_main]

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xdpqual::capture::batch::{read_all, readers_disagree};
use xdpqual::capture::{classify, CaptureReader};

/// One scratch file per fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("xdpqual-fuzz-capture-{}.pcap", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    // Both readers get the same name, so their errors read the same.
    let path = scratch();
    let stream: Option<Vec<_>> =
        CaptureReader::from_reader(path.clone(), Cursor::new(data.to_vec()))
            .ok()
            .map(|r| r.collect());
    if let Some(records) = &stream {
        for p in records.iter().flatten() {
            let _ = classify(&p.data);
        }
    }

    std::fs::write(path, data).expect("the scratch file is writable");
    let Ok(Some(batches)) = read_all(path) else { return };
    // The batch reader accepted the file: the streaming reader must too,
    // and yield the same records and the same error at the same place.
    let stream = stream.expect("the batch reader accepted a file the streaming reader refuses");
    if let Some(why) = readers_disagree(stream, &batches) {
        panic!("the readers disagree: {why}");
    }
});
