//! Fast path for classic Ethernet pcap: the file memory-mapped, packets as
//! slices into the mapping.
//!
//! [`CaptureReader`](super::CaptureReader) copies every record into a fresh
//! `Vec` (it has to: it streams, and converts other link types). For the
//! common case of a classic pcap file of Ethernet frames nothing needs
//! converting, so [`MappedPcap`] hands out borrowed records with no
//! allocation and no copy, at the speed the page cache delivers.
//!
//! It checks records exactly as the streaming reader does (same limits,
//! same errors at the same positions), so which reader ran is invisible in
//! a replay's output; the `mapped_matches_streaming` test holds it to that
//! over every capture in the tcpdump test suite. Anything it does not
//! handle (pcapng, other link types) makes [`MappedPcap::open`] answer
//! `Ok(None)`, and the caller uses the streaming reader.

use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::{CaptureError, RecordPos};
use super::linktype::LinkType;
use super::reader::MAX_CAPLEN;

const FILE_HDR: usize = 24;
const RECORD_HDR: usize = 16;
/// The link-type bits of the header's link field (LT_LINKTYPE, libpcap pcap-common.h).
const LT_LINKTYPE_MASK: u32 = 0x03FF_FFFF;

/// A classic pcap file of Ethernet frames, mapped into memory.
pub struct MappedPcap {
    file: PathBuf,
    map: Mmap,
    /// Bytes from the start already handed back with [`MappedPcap::release`].
    released: std::cell::Cell<usize>,
    big_endian: bool,
    nanosecond: bool,
}

/// One record, borrowed from the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// 0-based position among the packets of the file.
    pub index: u64,
    pub ts_ns: u64,
    pub data: &'a [u8],
    pub orig_len: u32,
}

impl RawRecord<'_> {
    /// The capture holds less than the packet had on the wire.
    pub fn truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

impl MappedPcap {
    /// Maps `path` if it is a classic pcap of Ethernet frames; `Ok(None)`
    /// for anything else (the streaming reader handles those, and reports
    /// their errors).
    pub fn open(path: impl AsRef<Path>) -> Result<Option<MappedPcap>, CaptureError> {
        let path = path.as_ref();
        let f = std::fs::File::open(path).map_err(|source| CaptureError::Open { file: path.to_path_buf(), source })?;
        let meta = f.metadata().map_err(|source| CaptureError::Open { file: path.to_path_buf(), source })?;
        if !meta.is_file() || meta.len() < FILE_HDR as u64 {
            return Ok(None);
        }
        // SAFETY: the mapping is read-only and private to this process. If
        // another process truncates the file while it is mapped, reads past
        // the new end raise SIGBUS; captures are inputs we only read, and
        // the streaming reader is the path for files that may change.
        let map = unsafe { Mmap::map(&f) }.map_err(|source| CaptureError::Open { file: path.to_path_buf(), source })?;
        let (big_endian, nanosecond) = match map[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => return Ok(None),
        };
        let link = read_u32(big_endian, &map[20..24]) & LT_LINKTYPE_MASK;
        if !matches!(LinkType::from_number(link), Ok(LinkType::Ethernet)) {
            return Ok(None);
        }
        // Read-ahead hint only; failure changes nothing but speed.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Some(MappedPcap { file: path.to_path_buf(), map, released: std::cell::Cell::new(0), big_endian, nanosecond }))
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The records in file order; an error ends the iteration.
    pub fn records(&self) -> Records<'_> {
        Records { pcap: self, offset: FILE_HDR, index: 0, done: false }
    }

    /// Lets the kernel drop this process's pages of the file before byte
    /// `upto` (whole pages only), so a long replay's resident memory stays
    /// at the pages in use rather than growing to the file's size. Reading
    /// a released range again is still correct, only slower.
    pub fn release(&self, upto: usize) {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let end = (upto.min(self.map.len()) / page) * page;
        let start = self.released.get();
        if end <= start {
            return;
        }
        // SAFETY: MADV_DONTNEED on a private, read-only file mapping only
        // drops this process's page-table entries; a later access faults
        // the same bytes in again from the file (madvise(2)), so slices
        // into the range never observe different contents. The range is
        // page-aligned and inside the mapping. Failure only leaves the
        // pages resident.
        let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
        self.released.set(end);
    }

    /// Size of the mapped file in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() <= FILE_HDR
    }
}

/// Iterator over a [`MappedPcap`]'s records.
pub struct Records<'a> {
    pcap: &'a MappedPcap,
    offset: usize,
    index: u64,
    done: bool,
}

impl<'a> Records<'a> {
    /// File offset of the next record.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn pos(&self) -> RecordPos {
        RecordPos { file: self.pcap.file.clone(), index: self.index, offset: self.offset as u64 }
    }

    fn next_record(&mut self) -> Result<Option<RawRecord<'a>>, CaptureError> {
        let buf: &'a [u8] = &self.pcap.map;
        let rest = &buf[self.offset..];
        if rest.is_empty() {
            return Ok(None);
        }
        // Same checks, same order and same numbers as CaptureReader::next_pcap.
        if rest.len() < RECORD_HDR {
            return Err(CaptureError::Truncated { pos: self.pos(), needed: RECORD_HDR as u64, available: rest.len() as u64 });
        }
        let be = self.pcap.big_endian;
        let caplen = read_u32(be, &rest[8..12]);
        if caplen > MAX_CAPLEN {
            return Err(CaptureError::CaplenTooLarge { pos: self.pos(), caplen: caplen.into(), max: MAX_CAPLEN.into() });
        }
        let total = RECORD_HDR + caplen as usize;
        if rest.len() < total {
            return Err(CaptureError::Truncated { pos: self.pos(), needed: total as u64, available: rest.len() as u64 });
        }
        let ts_sec = u64::from(read_u32(be, &rest[0..4]));
        let frac = u64::from(read_u32(be, &rest[4..8]));
        let frac_ns = if self.pcap.nanosecond { frac } else { frac * 1_000 };
        let rec = RawRecord {
            index: self.index,
            ts_ns: ts_sec * 1_000_000_000 + frac_ns,
            data: &rest[RECORD_HDR..total],
            orig_len: read_u32(be, &rest[12..16]),
        };
        self.offset += total;
        self.index += 1;
        Ok(Some(rec))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RawRecord<'a>, CaptureError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn read_u32(big_endian: bool, b: &[u8]) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;

    fn pcap_bytes(big_endian: bool, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let w = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = Vec::new();
        out.extend_from_slice(&w(0xa1b2_c3d4));
        out.extend_from_slice(&(if big_endian { 2u16.to_be_bytes() } else { 2u16.to_le_bytes() }));
        out.extend_from_slice(&(if big_endian { 4u16.to_be_bytes() } else { 4u16.to_le_bytes() }));
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&w(65535));
        out.extend_from_slice(&w(1));
        for (sec, usec, data, orig) in records {
            out.extend_from_slice(&w(*sec));
            out.extend_from_slice(&w(*usec));
            out.extend_from_slice(&w(data.len() as u32));
            out.extend_from_slice(&w(*orig));
            out.extend_from_slice(data);
        }
        out
    }

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("xdpqual-mapped-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Every field, both byte orders, worked out from the bytes written.
    #[test]
    fn records_are_slices_with_metadata() {
        for be in [false, true] {
            let p = temp(&format!("basic-{be}"), &pcap_bytes(be, &[(2, 5, &[1, 2, 3], 3), (3, 0, &[9; 20], 60)]));
            let m = MappedPcap::open(&p).unwrap().expect("classic Ethernet pcap");
            let recs: Vec<_> = m.records().map(|r| r.unwrap()).collect();
            assert_eq!(recs.len(), 2);
            assert_eq!(recs[0], RawRecord { index: 0, ts_ns: 2_000_005_000, data: &[1, 2, 3], orig_len: 3 });
            assert!(!recs[0].truncated());
            assert_eq!(recs[1].index, 1);
            assert_eq!(recs[1].ts_ns, 3_000_000_000);
            assert_eq!(recs[1].data, &[9; 20]);
            assert!(recs[1].truncated());
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn pcapng_and_other_links_fall_back() {
        let mut raw = pcap_bytes(false, &[]);
        raw[20] = 101; // LINKTYPE_RAW
        let p = temp("raw", &raw);
        assert!(MappedPcap::open(&p).unwrap().is_none());
        let p2 = temp("ng", &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(MappedPcap::open(&p2).unwrap().is_none());
        std::fs::remove_file(p).unwrap();
        std::fs::remove_file(p2).unwrap();
    }

    /// A record cut short: 16 + 10 bytes needed, 16 + 4 present.
    #[test]
    fn truncated_record_is_the_streaming_readers_error() {
        let mut bytes = pcap_bytes(false, &[(1, 0, &[0; 14], 14), (1, 1, &[0; 10], 10)]);
        bytes.truncate(bytes.len() - 6);
        let p = temp("trunc", &bytes);
        let m = MappedPcap::open(&p).unwrap().unwrap();
        let items: Vec<_> = m.records().collect();
        assert_eq!(items.len(), 2);
        match &items[1] {
            Err(CaptureError::Truncated { pos, needed, available }) => {
                assert_eq!((pos.index, pos.offset, *needed, *available), (1, 24 + 16 + 14, 26, 20));
            }
            other => panic!("expected a truncation error, got {other:?}"),
        }
        std::fs::remove_file(p).unwrap();
    }

    /// The two readers agree on every packet and every error over the
    /// tcpdump suite's classic Ethernet captures (many malformed).
    #[test]
    fn mapped_matches_streaming() {
        // Same search as tests/tcpdump_captures.rs: shared/ beside or inside the checkout.
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut candidates: Vec<PathBuf> = std::env::var_os("XDPQUAL_SHARED_DIR").map(PathBuf::from).into_iter().collect();
        candidates.push(manifest.join("../../shared"));
        candidates.push(manifest.join("../shared"));
        let Some(dir) = candidates.into_iter().map(|d| d.join("pcaps/tcpdump/tests")).find(|d| d.is_dir()) else {
            eprintln!("SKIP: the tcpdump capture corpus is not present");
            return;
        };
        let entries = std::fs::read_dir(&dir).unwrap();
        let mut compared = 0;
        for e in entries {
            let path = e.unwrap().path();
            let Ok(Some(m)) = MappedPcap::open(&path) else { continue };
            let stream = CaptureReader::open(&path).unwrap_or_else(|e| panic!("mapped reader accepted what the streaming one refuses: {e}"));
            let mut fast = m.records();
            for s in stream {
                let f = fast.next().unwrap_or_else(|| panic!("{}: mapped reader ended early", path.display()));
                match (s, f) {
                    (Ok(s), Ok(f)) => {
                        assert_eq!((s.index, s.ts_ns, s.orig_len, s.truncated), (f.index, f.ts_ns, f.orig_len, f.truncated()), "{}", path.display());
                        assert_eq!(s.data, f.data, "{} packet {}", path.display(), s.index);
                    }
                    (Err(s), Err(f)) => assert_eq!(s.to_string(), f.to_string()),
                    (s, f) => panic!("{}: readers disagree: {s:?} vs {f:?}", path.display()),
                }
            }
            assert!(fast.next().is_none(), "{}: mapped reader has more records", path.display());
            compared += 1;
        }
        assert!(compared > 100, "only {compared} captures compared");
    }
}
