//! Streaming reader over pcap and pcapng captures.
//!
//! pcap-file parses the file header, record headers and blocks; we do the
//! buffering ourselves so that we can look at a record's length *before*
//! buffering it. A hostile length therefore costs an error, not gigabytes:
//! a record whose captured length exceeds [`MAX_CAPLEN`] (libpcap's
//! MAXIMUM_SNAPLEN, see libpcap pcap-int.h) or a pcapng block longer than
//! [`MAX_BLOCK_LEN`] (libpcap's MAX_BLOCKSIZE_MAX, see sf-pcapng.c) ends the
//! file with an error. Memory use is one record, whatever the file size.
//!
//! Any error ends the file: later calls return `None`. Packets already
//! returned stay valid; whether to use them is the caller's decision.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::PcapNgParser;
use pcap_file::{Endianness, TsResolution};

use super::error::{CaptureError, RecordPos};
use super::linktype::{LinkType, UnsupportedLinkType};

/// Largest captured length we accept for one packet.
pub const MAX_CAPLEN: u32 = 262_144;
/// Largest pcapng block we accept.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

const PCAP_RECORD_HDR: usize = 16;
const PCAP_FILE_HDR: usize = 24;
const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
/// The link-type bits of a pcap header's link field; the upper bits carry
/// FCS information (LT_LINKTYPE in libpcap pcap-common.h).
const LT_LINKTYPE_MASK: u32 = 0x03FF_FFFF;
/// Default pcapng timestamp resolution: 10^-6 s (pcapng spec, if_tsresol).
const DEFAULT_TSRESOL: u8 = 6;

/// One packet, always as an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// 0-based position among the packets of the file.
    pub index: u64,
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The frame, starting with the (possibly synthetic) Ethernet header.
    pub data: Vec<u8>,
    /// Length of the frame on the wire, adjusted like `data` when a
    /// synthetic Ethernet header replaced another link header.
    pub orig_len: u32,
    /// The capture holds less than the packet had on the wire.
    pub truncated: bool,
    /// Interface number: 0 for pcap; for pcapng the n-th interface
    /// description block of the *file* is interface n-1, so interfaces of a
    /// later section never reuse the numbers of an earlier one.
    pub interface: u32,
    /// The link type the packet was captured with (before conversion).
    pub link: LinkType,
}

/// The kind of file being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
}

/// Said once per file and link type when packets get a synthetic Ethernet header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkNotice {
    pub file: PathBuf,
    pub link: LinkType,
}

impl fmt::Display for LinkNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} is not Ethernet; its packets are replayed behind a synthetic Ethernet header (zero MAC addresses, EtherType from {})",
            self.file.display(),
            self.link,
            self.link.ethertype_source()
        )
    }
}

/// Reads packets one at a time; see the module documentation.
pub struct CaptureReader {
    file: PathBuf,
    src: Source,
    format: Format,
    next_index: u64,
    done: bool,
    notices: Vec<LinkNotice>,
    noticed: HashSet<LinkType>,
}

enum Format {
    Pcap(PcapState),
    PcapNg(NgState),
}

struct PcapState {
    parser: PcapParser,
    link: LinkType,
}

struct NgState {
    parser: PcapNgParser,
    /// Interfaces of the current section.
    ifaces: Vec<Iface>,
    /// Interfaces described so far in the whole file.
    total_ifaces: u32,
    /// Simple packet blocks carry no timestamp; they get the previous one.
    last_ts_ns: u64,
}

struct Iface {
    global: u32,
    link: Result<LinkType, UnsupportedLinkType>,
    snaplen: u32,
    tsresol: u8,
    tsoffset_s: i64,
}

impl CaptureReader {
    /// Opens a capture file and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureReader, CaptureError> {
        let path = path.as_ref();
        // Refuses FIFOs, devices and directories before reading (and
        // without blocking on a FIFO); the capture is then streamed.
        let (f, _) = crate::util::input::open_regular(path, "capture")
            .map_err(|source| CaptureError::Open { file: path.to_path_buf(), source })?;
        Self::from_reader(path, f)
    }

    /// Reads a capture from any byte stream; `name` is used in messages.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        reader: impl Read + Send + 'static,
    ) -> Result<CaptureReader, CaptureError> {
        let file = name.into();
        let mut src = Source::new(Box::new(reader));
        let read_err =
            |file: &PathBuf, source| CaptureError::Read { file: file.clone(), offset: 0, source };
        let avail = src.fill(4).map_err(|e| read_err(&file, e))?;
        let magic = src.available()[..avail.min(4)].to_vec();
        let format = match magic.as_slice() {
            [0x0a, 0x0d, 0x0d, 0x0a] => Format::PcapNg(open_pcapng(&file, &mut src)?),
            [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1] => Format::Pcap(open_pcap(&file, &mut src)?),
            _ => return Err(CaptureError::NotACapture { file, magic }),
        };
        let mut reader = CaptureReader {
            file,
            src,
            format,
            next_index: 0,
            done: false,
            notices: Vec::new(),
            noticed: HashSet::new(),
        };
        if let Format::Pcap(p) = &reader.format {
            let link = p.link;
            reader.notice(link);
        }
        Ok(reader)
    }

    /// The file name used in messages.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// pcap (with its timestamp resolution and byte order) or pcapng.
    pub fn format(&self) -> CaptureFormat {
        match &self.format {
            Format::Pcap(p) => {
                let h = p.parser.header();
                CaptureFormat::Pcap {
                    nanosecond: h.ts_resolution == TsResolution::NanoSecond,
                    big_endian: h.endianness == Endianness::Big,
                }
            }
            Format::PcapNg(_) => CaptureFormat::PcapNg,
        }
    }

    /// Link-conversion notices raised since the last call (each at most once per file).
    pub fn take_notices(&mut self) -> Vec<LinkNotice> {
        std::mem::take(&mut self.notices)
    }

    /// The next packet, an error that ends the file, or `None` at the end.
    pub fn next_packet(&mut self) -> Option<Result<Packet, CaptureError>> {
        if self.done {
            return None;
        }
        let result = match &mut self.format {
            Format::Pcap(_) => self.next_pcap(),
            Format::PcapNg(_) => self.next_pcapng(),
        };
        match result {
            Ok(Some(p)) => {
                self.next_index += 1;
                Some(Ok(p))
            }
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

    fn pos(&self) -> RecordPos {
        RecordPos { file: self.file.clone(), index: self.next_index, offset: self.src.offset }
    }

    fn notice(&mut self, link: LinkType) {
        if !link.is_ethernet() && self.noticed.insert(link) {
            self.notices.push(LinkNotice { file: self.file.clone(), link });
        }
    }

    /// Makes `need` bytes of the current record available or says why not.
    fn need(&mut self, need: usize) -> Result<(), CaptureError> {
        let avail = self.src.fill(need).map_err(|source| CaptureError::Read {
            file: self.file.clone(),
            offset: self.src.offset,
            source,
        })?;
        if avail < need {
            return Err(CaptureError::Truncated {
                pos: self.pos(),
                needed: need as u64,
                available: avail as u64,
            });
        }
        Ok(())
    }

    fn at_eof(&mut self) -> Result<bool, CaptureError> {
        let avail = self.src.fill(1).map_err(|source| CaptureError::Read {
            file: self.file.clone(),
            offset: self.src.offset,
            source,
        })?;
        Ok(avail == 0)
    }

    fn next_pcap(&mut self) -> Result<Option<Packet>, CaptureError> {
        if self.at_eof()? {
            return Ok(None);
        }
        self.need(PCAP_RECORD_HDR)?;
        let Format::Pcap(state) = &self.format else { unreachable!("called for pcap only") };
        let header = state.parser.header();
        let endian = header.endianness;
        let caplen = read_u32(endian, &self.src.available()[8..12]);
        if caplen > MAX_CAPLEN {
            return Err(CaptureError::CaplenTooLarge {
                pos: self.pos(),
                caplen: caplen.into(),
                max: MAX_CAPLEN.into(),
            });
        }
        self.need(PCAP_RECORD_HDR + caplen as usize)?;
        let pos = self.pos();
        let Format::Pcap(state) = &self.format else { unreachable!("called for pcap only") };
        let link = state.link;
        let avail = self.src.available();
        let (rem, raw) = state
            .parser
            .next_raw_packet(avail)
            .map_err(|e| CaptureError::BadRecord { pos: pos.clone(), reason: e.to_string() })?;
        let used = avail.len() - rem.len();
        let frac_ns = match header.ts_resolution {
            TsResolution::MicroSecond => u64::from(raw.ts_frac) * 1_000,
            TsResolution::NanoSecond => u64::from(raw.ts_frac),
        };
        let ts_ns = u64::from(raw.ts_sec) * 1_000_000_000 + frac_ns;
        let orig_len = raw.orig_len;
        let converted = link.to_ethernet(&raw.data, orig_len);
        self.src.consume(used);
        let (data, orig_len_eth) = converted.map_err(|reason| CaptureError::Conversion {
            pos,
            link: link.to_string(),
            reason,
        })?;
        Ok(Some(Packet {
            index: self.next_index,
            ts_ns,
            data,
            orig_len: orig_len_eth,
            truncated: caplen < orig_len,
            interface: 0,
            link,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Packet>, CaptureError> {
        loop {
            if self.at_eof()? {
                return Ok(None);
            }
            self.need(12)?;
            let Format::PcapNg(state) = &self.format else {
                unreachable!("called for pcapng only")
            };
            let endian = state.parser.section().endianness;
            let (block_type, block_len) = peek_block_header(endian, self.src.available())
                .map_err(|reason| CaptureError::BadRecord { pos: self.pos(), reason })?;
            if block_len > MAX_BLOCK_LEN {
                return Err(CaptureError::BadRecord {
                    pos: self.pos(),
                    reason: format!(
                        "block length {block_len} exceeds the {MAX_BLOCK_LEN}-byte maximum"
                    ),
                });
            }
            self.need(block_len.max(12) as usize)?;
            let pos = self.pos();
            let Format::PcapNg(state) = &mut self.format else {
                unreachable!("called for pcapng only")
            };
            let avail = self.src.available();
            let (rem, raw) = state
                .parser
                .next_raw_block(avail)
                .map_err(|e| CaptureError::BadRecord { pos: pos.clone(), reason: e.to_string() })?;
            let used = avail.len() - rem.len();
            let endian = state.parser.section().endianness;
            let body: &[u8] = &raw.body;
            let record = match block_type {
                PCAPNG_SHB => {
                    state.ifaces.clear();
                    None
                }
                PCAPNG_IDB => {
                    let idb = state
                        .parser
                        .interfaces()
                        .last()
                        .expect("pcap-file records every IDB it parses");
                    state.ifaces.push(iface_from_idb(idb, state.total_ifaces));
                    state.total_ifaces = state.total_ifaces.saturating_add(1);
                    None
                }
                PCAPNG_EPB | PCAPNG_PB => {
                    Some(parse_packet_block(block_type, endian, body, state, &pos)?)
                }
                PCAPNG_SPB => Some(parse_simple_block(endian, body, state, &pos)?),
                _ => None,
            };
            let Some(rec) = record else {
                self.src.consume(used);
                continue;
            };
            let iface = &state.ifaces[rec.iface];
            let link = match iface.link {
                Ok(link) => link,
                Err(unsupported) => {
                    return Err(CaptureError::UnsupportedLink {
                        file: self.file.clone(),
                        interface: iface.global,
                        link: unsupported.to_string(),
                    })
                }
            };
            let interface = iface.global;
            let ts_ns = match rec.ts_units {
                Some(units) => ts_to_ns(units, iface.tsresol, iface.tsoffset_s),
                None => state.last_ts_ns,
            };
            state.last_ts_ns = ts_ns;
            let data = &body[rec.data_start..rec.data_start + rec.caplen as usize];
            let converted = link.to_ethernet(data, rec.orig_len);
            self.src.consume(used);
            let (data, orig_len) = converted.map_err(|reason| CaptureError::Conversion {
                pos,
                link: link.to_string(),
                reason,
            })?;
            self.notice(link);
            return Ok(Some(Packet {
                index: self.next_index,
                ts_ns,
                data,
                orig_len,
                truncated: rec.caplen < rec.orig_len,
                interface,
                link,
            }));
        }
    }
}

impl Iterator for CaptureReader {
    type Item = Result<Packet, CaptureError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet()
    }
}

fn open_pcap(file: &Path, src: &mut Source) -> Result<PcapState, CaptureError> {
    let bad = |reason: String| CaptureError::BadHeader { file: file.to_path_buf(), reason };
    let avail = src.fill(PCAP_FILE_HDR).map_err(|e| bad(e.to_string()))?;
    if avail < PCAP_FILE_HDR {
        return Err(bad(format!(
            "the file is {avail} bytes long, shorter than the 24-byte pcap header"
        )));
    }
    let (_, parser) = PcapParser::new(src.available()).map_err(|e| bad(e.to_string()))?;
    src.consume(PCAP_FILE_HDR);
    let number = u32::from(parser.header().datalink) & LT_LINKTYPE_MASK;
    let link = LinkType::from_number(number).map_err(|u| CaptureError::UnsupportedLink {
        file: file.to_path_buf(),
        interface: 0,
        link: u.to_string(),
    })?;
    Ok(PcapState { parser, link })
}

fn open_pcapng(file: &Path, src: &mut Source) -> Result<NgState, CaptureError> {
    let bad = |reason: String| CaptureError::BadHeader { file: file.to_path_buf(), reason };
    let avail = src.fill(12).map_err(|e| bad(e.to_string()))?;
    if avail < 12 {
        return Err(bad(format!(
            "the file is {avail} bytes long, shorter than a pcapng section header"
        )));
    }
    let (_, len) = peek_block_header(Endianness::Big, src.available()).map_err(bad)?;
    if len > MAX_BLOCK_LEN {
        return Err(bad(format!(
            "section header length {len} exceeds the {MAX_BLOCK_LEN}-byte maximum"
        )));
    }
    let len = len.max(12) as usize;
    let avail = src.fill(len).map_err(|e| bad(e.to_string()))?;
    if avail < len {
        return Err(bad(format!("the section header claims {len} bytes but the file has {avail}")));
    }
    let avail = src.available();
    let (rem, parser) =
        PcapNgParser::new(avail).map_err(|e| bad(format!("section header: {e}")))?;
    let used = avail.len() - rem.len();
    src.consume(used);
    Ok(NgState { parser, ifaces: Vec::new(), total_ifaces: 0, last_ts_ns: 0 })
}

fn iface_from_idb(
    idb: &pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock,
    global: u32,
) -> Iface {
    let mut tsresol = DEFAULT_TSRESOL;
    let mut tsoffset_s = 0i64;
    for opt in &idb.options {
        match opt {
            InterfaceDescriptionOption::IfTsResol(r) => tsresol = *r,
            // if_tsoffset is a signed 64-bit number of seconds (pcapng spec); pcap-file reads it unsigned.
            InterfaceDescriptionOption::IfTsOffset(o) => tsoffset_s = *o as i64,
            _ => {}
        }
    }
    Iface {
        global,
        link: LinkType::from_number(u32::from(idb.linktype)),
        snaplen: idb.snaplen,
        tsresol,
        tsoffset_s,
    }
}

/// Where a packet's bytes are inside a block body, and its metadata.
struct BlockRecord {
    iface: usize,
    ts_units: Option<u64>,
    data_start: usize,
    caplen: u32,
    orig_len: u32,
}

/// Enhanced (6) and obsolete (2) packet blocks share a layout after the
/// interface field: timestamp high, low, captured length, original length.
fn parse_packet_block(
    block_type: u32,
    endian: Endianness,
    body: &[u8],
    state: &NgState,
    pos: &RecordPos,
) -> Result<BlockRecord, CaptureError> {
    let bad = |reason: String| CaptureError::BadRecord { pos: pos.clone(), reason };
    if body.len() < 20 {
        return Err(bad(format!(
            "packet block body is {} bytes, shorter than its 20-byte fixed part",
            body.len()
        )));
    }
    let iface = if block_type == PCAPNG_EPB {
        read_u32(endian, &body[0..4])
    } else {
        u32::from(read_u16(endian, &body[0..2]))
    };
    let ts_units = (u64::from(read_u32(endian, &body[4..8])) << 32)
        | u64::from(read_u32(endian, &body[8..12]));
    let caplen = read_u32(endian, &body[12..16]);
    let orig_len = read_u32(endian, &body[16..20]);
    if caplen > MAX_CAPLEN {
        return Err(CaptureError::CaplenTooLarge {
            pos: pos.clone(),
            caplen: caplen.into(),
            max: MAX_CAPLEN.into(),
        });
    }
    if 20 + caplen as usize > body.len() {
        return Err(bad(format!(
            "captured length {caplen} does not fit in a block body of {} bytes",
            body.len()
        )));
    }
    let iface = check_iface(iface, state).map_err(bad)?;
    Ok(BlockRecord { iface, ts_units: Some(ts_units), data_start: 20, caplen, orig_len })
}

/// A simple packet block belongs to the section's first interface; its
/// captured length is the original length cut to that interface's snaplen
/// (pcapng spec, "Simple Packet Block").
fn parse_simple_block(
    endian: Endianness,
    body: &[u8],
    state: &NgState,
    pos: &RecordPos,
) -> Result<BlockRecord, CaptureError> {
    let bad = |reason: String| CaptureError::BadRecord { pos: pos.clone(), reason };
    if body.len() < 4 {
        return Err(bad("simple packet block body shorter than 4 bytes".into()));
    }
    let iface = check_iface(0, state).map_err(bad)?;
    let orig_len = read_u32(endian, &body[0..4]);
    let snaplen = match state.ifaces[iface].snaplen {
        0 => u32::MAX,
        s => s,
    };
    let room = u32::try_from(body.len() - 4).unwrap_or(u32::MAX);
    let caplen = orig_len.min(snaplen).min(room);
    if caplen > MAX_CAPLEN {
        return Err(CaptureError::CaplenTooLarge {
            pos: pos.clone(),
            caplen: caplen.into(),
            max: MAX_CAPLEN.into(),
        });
    }
    Ok(BlockRecord { iface, ts_units: None, data_start: 4, caplen, orig_len })
}

fn check_iface(id: u32, state: &NgState) -> Result<usize, String> {
    let n = state.ifaces.len();
    if (id as usize) < n {
        Ok(id as usize)
    } else {
        Err(format!("packet refers to interface {id} but this section describes {n} interface(s)"))
    }
}

/// Block type and total length of the block at the start of `buf` (>= 12 bytes).
/// A section header's byte order comes from its own byte-order magic.
fn peek_block_header(section: Endianness, buf: &[u8]) -> Result<(u32, u32), String> {
    let block_type = read_u32(section, &buf[0..4]);
    if block_type != PCAPNG_SHB {
        return Ok((block_type, read_u32(section, &buf[4..8])));
    }
    let endian = match &buf[8..12] {
        [0x1a, 0x2b, 0x3c, 0x4d] => Endianness::Big,
        [0x4d, 0x3c, 0x2b, 0x1a] => Endianness::Little,
        other => {
            return Err(format!("section header has byte-order magic {other:02x?}, not 1a2b3c4d"))
        }
    };
    Ok((block_type, read_u32(endian, &buf[4..8])))
}

/// Converts pcapng timestamp units to nanoseconds. `tsresol`: high bit
/// clear means units of 10^-n s, set means 2^-n s (pcapng spec, if_tsresol).
/// Values out of range saturate rather than wrap.
pub(crate) fn ts_to_ns(units: u64, tsresol: u8, tsoffset_s: i64) -> u64 {
    let units = u128::from(units);
    let exp = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 == 0 {
        if exp <= 9 {
            units * 10u128.pow(9 - exp)
        } else {
            10u128.checked_pow(exp - 9).map_or(0, |d| units / d)
        }
    } else {
        (units * 1_000_000_000) >> exp
    };
    let total = ns as i128 + i128::from(tsoffset_s) * 1_000_000_000;
    total.clamp(0, i128::from(u64::MAX)) as u64
}

fn read_u32(e: Endianness, b: &[u8]) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    match e {
        Endianness::Big => u32::from_be_bytes(a),
        Endianness::Little => u32::from_le_bytes(a),
    }
}

fn read_u16(e: Endianness, b: &[u8]) -> u16 {
    let a = [b[0], b[1]];
    match e {
        Endianness::Big => u16::from_be_bytes(a),
        Endianness::Little => u16::from_le_bytes(a),
    }
}

/// A read buffer that grows to the largest record asked for (bounded by
/// the limits above) and tracks the file offset of its first byte.
struct Source {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
}

impl Source {
    const CHUNK: usize = 64 * 1024;

    fn new(inner: Box<dyn Read + Send>) -> Source {
        Source { inner, buf: vec![0; Self::CHUNK], start: 0, end: 0, offset: 0 }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Tries to make `want` bytes available; returns how many are (fewer only at end of file).
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        if self.end - self.start >= want {
            return Ok(self.end - self.start);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        while self.end < want {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_timestamp_resolutions() {
        assert_eq!(ts_to_ns(1_500_000, 6, 0), 1_500_000_000);
        assert_eq!(ts_to_ns(7, 9, 0), 7);
        assert_eq!(ts_to_ns(12_345, 12, 0), 12);
        // 2^-10 s units: 1024 units = 1 s.
        assert_eq!(ts_to_ns(1024, 0x80 | 10, 0), 1_000_000_000);
        assert_eq!(ts_to_ns(1, 6, 2), 2_000_001_000);
        assert_eq!(ts_to_ns(1, 6, -5), 0, "negative times saturate at 0");
        assert_eq!(ts_to_ns(u64::MAX, 0, 0), u64::MAX, "overflow saturates");
        assert_eq!(ts_to_ns(u64::MAX, 127, 0), 0);
    }
}
