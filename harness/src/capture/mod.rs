//! Captures in and out: reading pcap/pcapng as Ethernet frames, writing
//! pcap, and classifying frames by protocol.
//!
//! - [`reader`]: streaming pcap/pcapng reader ([`CaptureReader`], [`Packet`]);
//! - [`linktype`]: accepted link types and their conversion to Ethernet;
//! - [`writer`]: atomic Ethernet pcap writer;
//! - [`classify`]: protocol class and flow 5-tuple of a frame;
//! - [`error`], the [`CaptureError`] type.

pub mod classify;
pub mod error;
pub mod linktype;
pub mod mapped;
pub mod reader;
pub mod writer;

pub use classify::{classify, classify_with_flow, flow, FiveTuple, FrameClass, ProtoClass, VlanTagging};
pub use error::{CaptureError, RecordPos};
pub use linktype::LinkType;
pub use mapped::{MappedPcap, RawRecord};
pub use reader::{CaptureFormat, CaptureReader, LinkNotice, Packet, MAX_CAPLEN};
pub use writer::{write_pcap, PcapFileWriter, TsPrecision};
