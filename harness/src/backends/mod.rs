//! The places a program can run. Each backend takes the loader's
//! [`crate::program::Program`] form and reports, per packet, a
//! [`PacketResult`] in the same terms, so the diff can compare them.
//!
//! - [`engine`]: `vm`, our interpreter;
//! - [`rbpf`]: the rbpf crate, as an independent second engine;
//! - [`host`]: the running kernel through `BPF_PROG_TEST_RUN` (it lives in
//!   the kernel layer, crate `xdpqual-kernel`, which the QEMU guest agent
//!   shares);
//! - [`live`]: a real interface.

pub mod engine;
pub use xdpqual_kernel::host;
pub mod live;
pub mod nic;
pub mod rbpf;

use crate::engine::{Event, RedirectTarget};
use crate::verdict::Verdict;
use serde::Serialize;

/// One input packet with the context every backend needs.
#[derive(Clone, Debug)]
pub struct PacketSource {
    pub data: Vec<u8>,
    pub ts_ns: u64,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
}

/// What one backend did with one packet.
#[derive(Clone, Debug, Serialize)]
pub struct PacketResult {
    pub verdict: Verdict,
    /// The frame after the program (metadata, data, fragments).
    #[serde(with = "crate::util::hex_bytes")]
    pub output: Vec<u8>,
    pub events: Vec<Event>,
    pub redirect: Option<RedirectTarget>,
    /// Instructions executed, where the backend can count them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insns: Option<u64>,
    /// Run time the backend measured, where it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
}
