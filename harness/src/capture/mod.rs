//! Captures in and out: reading pcap/pcapng as Ethernet frames, writing
//! pcap, and classifying frames by protocol.
//!
//! - [`reader`]: streaming pcap/pcapng reader ([`CaptureReader`], [`Packet`]);
//! - [`batch`]: the fast path for classic Ethernet pcap ([`PcapBatches`]):
//!   batches of records borrowed from one reusable buffer;
//! - [`linktype`]: accepted link types and their conversion to Ethernet;
//! - [`writer`]: atomic Ethernet pcap writer;
//! - [`classify`]: protocol class and flow 5-tuple of a frame;
//! - [`error`], the [`CaptureError`] type.

pub mod batch;
pub mod classify;
pub mod error;
pub mod linktype;
pub mod reader;
pub mod writer;

pub use batch::{Batch, PcapBatches, RawRecord};
pub use classify::{
    classify, classify_with_flow, flow, FiveTuple, FrameClass, ProtoClass, VlanTagging,
};
pub use error::{CaptureError, RecordPos};
pub use linktype::LinkType;
pub use reader::{CaptureFormat, CaptureReader, LinkNotice, Packet, MAX_CAPLEN};
pub use writer::{write_pcap, PcapFileWriter, TsPrecision};
