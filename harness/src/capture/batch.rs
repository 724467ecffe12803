//! Fast path for classic Ethernet pcap: large reads into one reusable
//! buffer, packets handed out in batches as slices of it.
//!
//! [`CaptureReader`](super::CaptureReader) copies every record into a fresh
//! `Vec` (it has to: it streams one packet at a time, and converts other
//! link types). For the common case of a classic pcap file of Ethernet
//! frames nothing needs converting, so [`PcapBatches`] reads the file a few
//! MiB at a time and lends out every complete record in the buffer at once:
//! no allocation and no copy per packet, and memory bounded by the buffer
//! whatever the file's size.
//!
//! Why not `mmap`: an earlier version mapped the file. Measured on this
//! project's 2-core VM, walking the record headers of a 655 MB capture
//! took 195 ns per packet through the mapping (every new page is a
//! page-table fault and a cold DRAM read the prefetchers do not cover)
//! against 32 to 50 ns per packet with `read(2)` into a 256 KiB to 4 MiB
//! buffer, which the kernel fills with one sequential copy.
//!
//! It checks records exactly as the streaming reader does (same limits,
//! same errors at the same positions), so which reader ran is invisible in
//! a replay's output; the `batches_match_streaming` test holds it to that
//! over every capture in the tcpdump test suite. Anything it does not
//! handle (pcapng, other link types, files shorter than a header, things
//! that are not regular files) makes [`PcapBatches::open`] answer
//! `Ok(None)`, and the caller uses the streaming reader.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{CaptureError, RecordPos};
use super::linktype::LinkType;
use super::reader::MAX_CAPLEN;

const FILE_HDR: usize = 24;
const RECORD_HDR: usize = 16;
/// The link-type bits of the header's link field (LT_LINKTYPE, libpcap pcap-common.h).
const LT_LINKTYPE_MASK: u32 = 0x03FF_FFFF;
/// Buffer size: four times the largest legal record, so a batch is
/// thousands of ordinary packets, and no larger than one core's L2 (1 MiB
/// on this project's machines), so the packets are still in cache when
/// they are first parsed. Measured (user+sys CPU time, 2M-packet firewall
/// replay, eight interleaved runs): median 0.69 s with 1 MiB, 0.92 s with
/// 4 MiB, 0.77 s with 512 KiB.
pub const BUFFER_BYTES: usize = 1 << 20;
const _: () = assert!(
    BUFFER_BYTES >= RECORD_HDR + MAX_CAPLEN as usize,
    "a buffer must hold the largest record"
);

/// A classic pcap file of Ethernet frames, read in batches.
pub struct PcapBatches {
    file: PathBuf,
    src: File,
    /// The start of a record the last batch could not hold whole, carried
    /// into the next batch's buffer.
    carry: Vec<u8>,
    /// File offset of `carry[0]` (of the next unread byte when empty).
    carry_offset: u64,
    /// Buffers handed back with [`PcapBatches::recycle`], reused by the
    /// next batches (as many buffers are then in use as batches are held
    /// at once: one being read while the others' packets run).
    spare: Vec<Box<[u8]>>,
    /// The file has no more bytes than those already read.
    eof: bool,
    /// An error or the end was reached: no further batches.
    done: bool,
    next_index: u64,
    big_endian: bool,
    nanosecond: bool,
}

/// One record, borrowed from a [`Batch`].
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

/// Where one record's bytes lie in its batch's buffer.
#[derive(Clone, Copy)]
struct Span {
    from: usize,
    to: usize,
    ts_ns: u64,
    orig_len: u32,
}

/// The complete records that one buffer-full of the file held. It owns its
/// buffer, so the next batch can be read while this one is in use; hand it
/// back with [`PcapBatches::recycle`] to reuse the buffer.
pub struct Batch {
    buf: Box<[u8]>,
    spans: Vec<Span>,
    first_index: u64,
    /// The error that stopped reading right after these records; the batch
    /// still holds every good record before it.
    pub error: Option<CaptureError>,
}

impl Batch {
    /// Records in the batch (0 at the end of the file).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The records with where their bytes lie in the batch: `(from, to,
    /// record)`, so a caller can keep positions without borrowing the
    /// batch and read the bytes later with [`Batch::bytes`].
    pub fn spans(&self) -> impl ExactSizeIterator<Item = (usize, usize, RawRecord<'_>)> + '_ {
        self.spans.iter().zip(self.records()).map(|(s, r)| (s.from, s.to, r))
    }

    /// The batch's bytes `from..to` (positions from [`Batch::spans`]).
    pub fn bytes(&self, from: usize, to: usize) -> &[u8] {
        &self.buf[from..to]
    }

    /// The records, in file order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = RawRecord<'_>> + '_ {
        self.spans.iter().enumerate().map(move |(i, s)| RawRecord {
            index: self.first_index + i as u64,
            ts_ns: s.ts_ns,
            data: &self.buf[s.from..s.to],
            orig_len: s.orig_len,
        })
    }
}

impl PcapBatches {
    /// Opens `path` if it is a classic pcap of Ethernet frames; `Ok(None)`
    /// for anything else (the streaming reader handles those, and reports
    /// their errors).
    pub fn open(path: impl AsRef<Path>) -> Result<Option<PcapBatches>, CaptureError> {
        let path = path.as_ref();
        let open_err = |source| CaptureError::Open { file: path.to_path_buf(), source };
        let (mut src, meta) =
            crate::util::input::open_regular(path, "capture").map_err(open_err)?;
        if !meta.is_file() || meta.len() < FILE_HDR as u64 {
            return Ok(None);
        }
        let mut hdr = [0u8; FILE_HDR];
        src.read_exact(&mut hdr).map_err(|source| CaptureError::Read {
            file: path.to_path_buf(),
            offset: 0,
            source,
        })?;
        let (big_endian, nanosecond) = match hdr[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => return Ok(None),
        };
        let link = read_u32(big_endian, &hdr[20..24]) & LT_LINKTYPE_MASK;
        if !matches!(LinkType::from_number(link), Ok(LinkType::Ethernet)) {
            return Ok(None);
        }
        Ok(Some(PcapBatches {
            file: path.to_path_buf(),
            src,
            carry: Vec::new(),
            carry_offset: FILE_HDR as u64,
            spare: Vec::new(),
            eof: false,
            done: false,
            next_index: 0,
            big_endian,
            nanosecond,
        }))
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Reads the next buffer-full and returns every complete record in it.
    /// After an error or the end of the file every further batch is empty.
    pub fn next_batch(&mut self) -> Batch {
        if self.done {
            return Batch {
                buf: Box::new([]),
                spans: Vec::new(),
                first_index: self.next_index,
                error: None,
            };
        }
        let mut buf =
            self.spare.pop().unwrap_or_else(|| vec![0u8; BUFFER_BYTES].into_boxed_slice());
        let base = self.carry_offset;
        buf[..self.carry.len()].copy_from_slice(&self.carry);
        let mut end = self.carry.len();
        self.carry.clear();
        let mut error = None;
        while end < buf.len() && !self.eof {
            match self.src.read(&mut buf[end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    // The records wholly read before the failure still count.
                    error = Some(CaptureError::Read {
                        file: self.file.clone(),
                        offset: base + end as u64,
                        source,
                    });
                    self.eof = true;
                }
            }
        }
        let mut spans = Vec::with_capacity(end / 64 + 1);
        let mut at = 0;
        while error.is_none() {
            match self.record_at(
                &buf[at..end],
                base + at as u64,
                self.next_index + spans.len() as u64,
            ) {
                Ok(Some(span)) => {
                    spans.push(Span {
                        from: at + RECORD_HDR,
                        to: at + span.0,
                        ts_ns: span.1,
                        orig_len: span.2,
                    });
                    at += span.0;
                }
                Ok(None) => break,
                Err(e) => error = Some(e),
            }
        }
        if error.is_some() || (at == end && self.eof) {
            self.done = true;
        } else {
            // The buffer holds the largest legal record, so what is left is
            // the start of one record; the next batch completes it.
            self.carry.extend_from_slice(&buf[at..end]);
            self.carry_offset = base + at as u64;
        }
        let first_index = self.next_index;
        self.next_index += spans.len() as u64;
        Batch { buf, spans, first_index, error }
    }

    /// Hands a finished batch's buffer back for the next batch to reuse.
    pub fn recycle(&mut self, batch: Batch) {
        if batch.buf.len() == BUFFER_BYTES {
            self.spare.push(batch.buf);
        }
    }

    /// The record at the start of `rest` (file offset `offset`, packet
    /// number `index`): `(total bytes, ts_ns, orig_len)`, or `None` when it
    /// is not wholly read yet (or the file ended cleanly there).
    fn record_at(
        &self,
        rest: &[u8],
        offset: u64,
        index: u64,
    ) -> Result<Option<(usize, u64, u32)>, CaptureError> {
        if rest.is_empty() {
            return Ok(None);
        }
        let pos = || RecordPos { file: self.file.clone(), index, offset };
        // Same checks, same order and same numbers as CaptureReader::next_pcap.
        // A partial record is only an error once the file has ended: until
        // then the rest of it is still to be read.
        if rest.len() < RECORD_HDR {
            return if self.eof {
                Err(CaptureError::Truncated {
                    pos: pos(),
                    needed: RECORD_HDR as u64,
                    available: rest.len() as u64,
                })
            } else {
                Ok(None)
            };
        }
        let be = self.big_endian;
        let caplen = read_u32(be, &rest[8..12]);
        if caplen > MAX_CAPLEN {
            return Err(CaptureError::CaplenTooLarge {
                pos: pos(),
                caplen: caplen.into(),
                max: MAX_CAPLEN.into(),
            });
        }
        let total = RECORD_HDR + caplen as usize;
        if rest.len() < total {
            return if self.eof {
                Err(CaptureError::Truncated {
                    pos: pos(),
                    needed: total as u64,
                    available: rest.len() as u64,
                })
            } else {
                Ok(None)
            };
        }
        let ts_sec = u64::from(read_u32(be, &rest[0..4]));
        let frac = u64::from(read_u32(be, &rest[4..8]));
        let frac_ns = if self.nanosecond { frac } else { frac * 1_000 };
        Ok(Some((total, ts_sec * 1_000_000_000 + frac_ns, read_u32(be, &rest[12..16]))))
    }
}

/// An owned record, as [`read_all`] returns it.
pub type OwnedRecord = (u64, u64, Vec<u8>, u32);

/// Every record of `path` in order, through [`PcapBatches`] (the
/// `Ok(None)` of `open` passed through). For tests and small tools; replay
/// uses the batches directly.
pub fn read_all(
    path: impl AsRef<Path>,
) -> Result<Option<Vec<Result<OwnedRecord, CaptureError>>>, CaptureError> {
    let Some(mut r) = PcapBatches::open(path)? else { return Ok(None) };
    let mut out = Vec::new();
    loop {
        let mut batch = r.next_batch();
        let empty = batch.is_empty();
        out.extend(
            batch.records().map(|rec| Ok((rec.index, rec.ts_ns, rec.data.to_vec(), rec.orig_len))),
        );
        if let Some(e) = batch.error.take() {
            out.push(Err(e));
            break;
        }
        r.recycle(batch);
        if empty {
            break;
        }
    }
    Ok(Some(out))
}

/// Where the streaming reader's records (`stream`) and the batch reader's
/// ([`read_all`]) first differ, in words; `None` when they agree on every
/// record, every error and the count. The one definition of "the two
/// readers agree", shared by the unit test and the `capture` fuzz target.
pub fn readers_disagree(
    stream: impl IntoIterator<Item = Result<super::Packet, CaptureError>>,
    batches: &[Result<OwnedRecord, CaptureError>],
) -> Option<String> {
    let mut batches = batches.iter();
    for (i, s) in stream.into_iter().enumerate() {
        let Some(b) = batches.next() else {
            return Some(format!(
                "the batch reader ended after {i} records; the streaming reader has more"
            ));
        };
        match (s, b) {
            (Ok(s), Ok((index, ts_ns, data, orig_len))) => {
                let truncated = (data.len() as u64) < u64::from(*orig_len);
                if (s.index, s.ts_ns, s.orig_len, s.truncated)
                    != (*index, *ts_ns, *orig_len, truncated)
                {
                    return Some(format!(
                        "record {i}: (index, ts_ns, orig_len, truncated) {:?} streaming against {:?} batched",
                        (s.index, s.ts_ns, s.orig_len, s.truncated),
                        (index, ts_ns, orig_len, truncated)
                    ));
                }
                if s.data != *data {
                    return Some(format!("packet {}: the frame bytes differ", s.index));
                }
            }
            (Err(s), Err(b)) if s.to_string() == b.to_string() => {}
            (s, b) => return Some(format!("record {i}: {s:?} streaming against {b:?} batched")),
        }
    }
    batches
        .next()
        .map(|_| "the batch reader has more records than the streaming reader".to_string())
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
        let p = std::env::temp_dir().join(format!("xdpqual-batch-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Every field, both byte orders, worked out from the bytes written.
    #[test]
    fn records_are_slices_with_metadata() {
        for be in [false, true] {
            let p = temp(
                &format!("basic-{be}"),
                &pcap_bytes(be, &[(2, 5, &[1, 2, 3], 3), (3, 0, &[9; 20], 60)]),
            );
            let mut r = PcapBatches::open(&p).unwrap().expect("classic Ethernet pcap");
            let b = r.next_batch();
            assert!(b.error.is_none());
            let recs: Vec<_> = b.records().collect();
            assert_eq!(recs.len(), 2);
            assert_eq!(
                recs[0],
                RawRecord { index: 0, ts_ns: 2_000_005_000, data: &[1, 2, 3], orig_len: 3 }
            );
            assert!(!recs[0].truncated());
            assert_eq!(recs[1].index, 1);
            assert_eq!(recs[1].ts_ns, 3_000_000_000);
            assert_eq!(recs[1].data, &[9; 20]);
            assert!(recs[1].truncated());
            drop(recs);
            r.recycle(b);
            assert!(r.next_batch().is_empty());
            std::fs::remove_file(p).unwrap();
        }
    }

    /// A batch can be kept while the next is read (double buffering):
    /// its records stay valid, and numbering continues across batches.
    #[test]
    fn batches_outlive_the_next_read() {
        let payloads: Vec<Vec<u8>> =
            (0..2 * BUFFER_BYTES / 1500).map(|i| vec![(i % 256) as u8; 1500]).collect();
        let recs: Vec<(u32, u32, &[u8], u32)> =
            payloads.iter().map(|d| (1, 0, d.as_slice(), d.len() as u32)).collect();
        let p = temp("double", &pcap_bytes(false, &recs));
        let mut r = PcapBatches::open(&p).unwrap().unwrap();
        let first = r.next_batch();
        let second = r.next_batch();
        assert!(!first.is_empty() && !second.is_empty());
        let a: Vec<_> = first.records().map(|x| (x.index, x.data[0])).collect();
        let b: Vec<_> = second.records().map(|x| (x.index, x.data[0])).collect();
        assert_eq!(a[0], (0, 0));
        assert_eq!(b[0].0, a.len() as u64, "numbering continues");
        assert_eq!(b[0].1, (a.len() % 256) as u8, "the second batch starts where the first ended");
        std::fs::remove_file(p).unwrap();
    }

    /// Records that straddle buffer refills come out whole: a file several
    /// buffers long, of records sized to misalign with the buffer.
    #[test]
    fn records_across_refills_are_whole() {
        let sizes = [9000usize, 1514, 60, 65535, 14];
        let payloads: Vec<Vec<u8>> = (0..3 * BUFFER_BYTES / 15000)
            .map(|i| vec![(i % 251) as u8; sizes[i % sizes.len()]])
            .collect();
        let recs: Vec<(u32, u32, &[u8], u32)> =
            payloads.iter().map(|d| (7, 1, d.as_slice(), d.len() as u32)).collect();
        let p = temp("refill", &pcap_bytes(true, &recs));
        let all = read_all(&p).unwrap().unwrap();
        assert_eq!(all.len(), payloads.len());
        for (i, (item, want)) in all.iter().zip(&payloads).enumerate() {
            let (index, ts, data, orig) = item.as_ref().unwrap();
            assert_eq!(
                (*index, *ts, data, *orig as usize),
                (i as u64, 7_000_001_000, want, want.len())
            );
        }
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn pcapng_and_other_links_fall_back() {
        let mut raw = pcap_bytes(false, &[]);
        raw[20] = 101; // LINKTYPE_RAW
        let p = temp("raw", &raw);
        assert!(PcapBatches::open(&p).unwrap().is_none());
        let p2 = temp(
            "ng",
            &[
                0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        );
        assert!(PcapBatches::open(&p2).unwrap().is_none());
        std::fs::remove_file(p).unwrap();
        std::fs::remove_file(p2).unwrap();
    }

    /// A record cut short: 16 + 10 bytes needed, 16 + 4 present.
    #[test]
    fn truncated_record_is_the_streaming_readers_error() {
        let mut bytes = pcap_bytes(false, &[(1, 0, &[0; 14], 14), (1, 1, &[0; 10], 10)]);
        bytes.truncate(bytes.len() - 6);
        let p = temp("trunc", &bytes);
        let all = read_all(&p).unwrap().unwrap();
        assert_eq!(all.len(), 2);
        match &all[1] {
            Err(CaptureError::Truncated { pos, needed, available }) => {
                assert_eq!((pos.index, pos.offset, *needed, *available), (1, 24 + 16 + 14, 26, 20));
            }
            other => panic!("expected a truncation error, got {other:?}"),
        }
        std::fs::remove_file(p).unwrap();
    }

    /// The agreement check itself must see a changed byte, a missing
    /// record and an extra one, or `batches_match_streaming` proves nothing.
    #[test]
    fn readers_disagree_sees_each_kind_of_difference() {
        let p = temp("agree", &pcap_bytes(false, &[(1, 0, &[7; 14], 14), (2, 0, &[8; 20], 30)]));
        let stream = || CaptureReader::open(&p).unwrap();
        let batches = read_all(&p).unwrap().unwrap();
        assert_eq!(readers_disagree(stream(), &batches), None);

        let mut changed = read_all(&p).unwrap().unwrap();
        if let Ok(r) = &mut changed[1] {
            r.2[3] ^= 1;
        }
        assert!(readers_disagree(stream(), &changed).unwrap().contains("frame bytes differ"));
        assert!(readers_disagree(stream(), &batches[..1]).unwrap().contains("ended after 1"));
        let mut extra = read_all(&p).unwrap().unwrap();
        extra.push(Ok((2, 0, vec![0; 14], 14)));
        assert!(readers_disagree(stream(), &extra).unwrap().contains("more records"));
        std::fs::remove_file(p).unwrap();
    }

    /// The two readers agree on every packet and every error over the
    /// tcpdump suite's classic Ethernet captures (many malformed).
    #[test]
    fn batches_match_streaming() {
        let Some(dir) = crate::util::shared_dir("pcaps/tcpdump/tests") else {
            crate::util::skip("the tcpdump capture corpus is not present");
            return;
        };
        let mut compared = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let Ok(Some(fast)) = read_all(&path) else { continue };
            let stream = CaptureReader::open(&path).unwrap_or_else(|e| {
                panic!("batch reader accepted what the streaming one refuses: {e}")
            });
            if let Some(why) = readers_disagree(stream, &fast) {
                panic!("{}: {why}", path.display());
            }
            compared += 1;
        }
        assert!(compared > 100, "only {compared} captures compared");
    }
}
