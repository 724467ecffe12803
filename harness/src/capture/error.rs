//! Errors from reading and writing captures.
//!
//! Every error names the file; errors about a record also name the packet
//! index it would have had (0-based) and the byte offset where its record
//! starts, so a user can find it with a hex dump.

use std::fmt;
use std::path::PathBuf;

/// Where in a capture something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPos {
    /// The capture file (or the name given to an in-memory capture).
    pub file: PathBuf,
    /// The 0-based index the packet would have had.
    pub index: u64,
    /// Byte offset of the start of the record (pcap record header or pcapng block).
    pub offset: u64,
}

impl fmt::Display for RecordPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: packet {} (record at byte offset {})",
            self.file.display(),
            self.index,
            self.offset
        )
    }
}

/// A capture could not be read (or written).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}: cannot open capture: {source}", file.display())]
    Open {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: not a pcap or pcapng capture: the file starts with {magic:02x?}, which is neither a pcap magic number (a1b2c3d4 / a1b23c4d in either byte order) nor a pcapng section header (0a0d0d0a)", file.display())]
    NotACapture { file: PathBuf, magic: Vec<u8> },

    #[error("{}: bad file header: {reason}", file.display())]
    BadHeader { file: PathBuf, reason: String },

    #[error("{pos}: malformed record: {reason}; packets before it were read")]
    BadRecord { pos: RecordPos, reason: String },

    #[error("{pos}: the file ends in the middle of this record ({needed} bytes needed, {available} left); packets before it were read")]
    Truncated { pos: RecordPos, needed: u64, available: u64 },

    #[error("{pos}: captured length {caplen} is larger than the {max}-byte maximum any capture tool writes; the file is corrupt or hostile (packets before it were read)")]
    CaplenTooLarge { pos: RecordPos, caplen: u64, max: u64 },

    #[error("{}: interface {interface}: {link} is not Ethernet; xdpqual replays Ethernet, SLL/SLL2 and raw-IP captures", file.display())]
    UnsupportedLink {
        file: PathBuf,
        interface: u32,
        /// e.g. "link type 105 (IEEE802_11)".
        link: String,
    },

    #[error("{pos}: cannot turn this {link} packet into an Ethernet frame: {reason}")]
    Conversion { pos: RecordPos, link: String, reason: String },

    #[error("{}: read error at byte offset {offset}: {source}", file.display())]
    Read {
        file: PathBuf,
        offset: u64,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: cannot write capture: {reason}", file.display())]
    Write { file: PathBuf, reason: String },
}

impl CaptureError {
    /// A short, stable label for the kind of error (used to tabulate outcomes).
    pub fn kind_label(&self) -> &'static str {
        match self {
            CaptureError::Open { .. } => "open",
            CaptureError::NotACapture { .. } => "not-a-capture",
            CaptureError::BadHeader { .. } => "bad-header",
            CaptureError::BadRecord { .. } => "bad-record",
            CaptureError::Truncated { .. } => "truncated",
            CaptureError::CaplenTooLarge { .. } => "caplen-too-large",
            CaptureError::UnsupportedLink { .. } => "unsupported-link",
            CaptureError::Conversion { .. } => "conversion",
            CaptureError::Read { .. } => "read",
            CaptureError::Write { .. } => "write",
        }
    }
}
