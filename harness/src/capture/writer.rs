//! Writes Ethernet pcap files (used by `replay --write-pcap` and `gen-pcap`).
//!
//! Files are little-endian, pcap 2.4, link type Ethernet, snaplen
//! [`MAX_CAPLEN`]. Writing is atomic: packets go to a temporary file in
//! the destination directory, which is renamed over the destination only by
//! [`PcapFileWriter::finish`]; a writer dropped before that removes it, so a
//! reader never sees half a capture.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::error::CaptureError;
use super::reader::MAX_CAPLEN;

/// Timestamp precision of a written pcap (selects the file's magic number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TsPrecision {
    /// Magic a1b2c3d4; nanoseconds are truncated to microseconds.
    #[default]
    Microsecond,
    /// Magic a1b23c4d.
    Nanosecond,
}

/// A pcap being written; see the module documentation.
pub struct PcapFileWriter {
    path: PathBuf,
    tmp: PathBuf,
    inner: Option<PcapWriter<BufWriter<File>>>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl PcapFileWriter {
    /// Starts writing `path` (replaced only when [`finish`](Self::finish) succeeds).
    pub fn create(
        path: impl AsRef<Path>,
        precision: TsPrecision,
    ) -> Result<PcapFileWriter, CaptureError> {
        let path = path.as_ref().to_path_buf();
        let fail = |reason: String| CaptureError::Write { file: path.clone(), reason };
        // The finished file is renamed over `path`: over a device or a FIFO
        // that would replace it (`-o /dev/full` as root turned /dev/full
        // into a regular file), so only a regular file, or nothing, is.
        if let Ok(m) = std::fs::metadata(&path) {
            if !m.is_file() {
                return Err(fail(
                    "it exists and is not a regular file; refusing to replace it".into(),
                ));
            }
        }
        let name = path
            .file_name()
            .ok_or_else(|| fail("the output path does not name a file".into()))?
            .to_string_lossy()
            .into_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file =
            std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| {
                fail(format!("cannot create temporary file {}: {e}", tmp.display()))
            })?;
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: MAX_CAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: match precision {
                TsPrecision::Microsecond => TsResolution::MicroSecond,
                TsPrecision::Nanosecond => TsResolution::NanoSecond,
            },
            endianness: Endianness::Little,
        };
        let mut writer = PcapFileWriter { path: path.clone(), tmp, inner: None };
        let inner = PcapWriter::with_header(BufWriter::new(file), header)
            .map_err(|e| fail(e.to_string()))?;
        writer.inner = Some(inner);
        Ok(writer)
    }

    /// Appends a complete (untruncated) frame.
    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> Result<(), CaptureError> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.write_truncated(ts_ns, frame, len)
    }

    /// Appends a frame that was `orig_len` bytes long on the wire (>= `frame.len()`).
    pub fn write_truncated(
        &mut self,
        ts_ns: u64,
        frame: &[u8],
        orig_len: u32,
    ) -> Result<(), CaptureError> {
        if frame.len() > MAX_CAPLEN as usize {
            return Err(self.fail(format!(
                "a {}-byte frame exceeds the {MAX_CAPLEN}-byte snaplen",
                frame.len()
            )));
        }
        let packet = PcapPacket::new(Duration::from_nanos(ts_ns), orig_len, frame);
        let inner = self.inner.as_mut().expect("inner is set from create until finish or drop");
        inner
            .write_packet(&packet)
            .map_err(|e| CaptureError::Write { file: self.path.clone(), reason: e.to_string() })?;
        Ok(())
    }

    /// Flushes, syncs and renames the temporary file over the destination.
    pub fn finish(mut self) -> Result<(), CaptureError> {
        let inner = self.inner.take().expect("inner is set from create until finish or drop");
        let file = inner
            .into_writer()
            .into_inner()
            .map_err(|e| self.fail(format!("flush failed: {}", e.error())))?;
        file.sync_all().map_err(|e| self.fail(format!("sync failed: {e}")))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| {
            self.fail(format!("cannot rename {} into place: {e}", self.tmp.display()))
        })?;
        self.tmp = PathBuf::new();
        Ok(())
    }

    fn fail(&self, reason: String) -> CaptureError {
        CaptureError::Write { file: self.path.clone(), reason }
    }
}

impl Drop for PcapFileWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            if let Some(inner) = self.inner.take() {
                let _ = inner.into_writer().flush();
            }
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `(timestamp_ns, frame)` pairs as a pcap, atomically.
pub fn write_pcap<I, F>(
    path: impl AsRef<Path>,
    precision: TsPrecision,
    packets: I,
) -> Result<u64, CaptureError>
where
    I: IntoIterator<Item = (u64, F)>,
    F: AsRef<[u8]>,
{
    let mut w = PcapFileWriter::create(path, precision)?;
    let mut n = 0u64;
    for (ts, frame) in packets {
        w.write(ts, frame.as_ref())?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}
