//! Chunks of packets for parallel replay: the frames' bytes in one buffer
//! plus owned per-frame metadata.
//!
//! A chunk owns everything it refers to, so the next chunk can be read and
//! classified while the workers still run the current one (see
//! [`super::parallel`]). Classic Ethernet pcap files come in as
//! [`PcapBatches`] buffers without a copy; every other capture comes
//! through the streaming [`CaptureReader`] and its frames are gathered into
//! one buffer per chunk.

use std::path::Path;

use crate::capture::{
    classify_with_flow, Batch, CaptureError, CaptureReader, FiveTuple, FrameClass, PcapBatches,
    ProtoClass, VlanTagging,
};

/// Packets per chunk from the streaming reader: large enough that the
/// per-chunk synchronisation is noise. Classic pcap chunks are whatever
/// one [`PcapBatches`] buffer holds.
const STREAM_CHUNK: usize = 8 * 1024;

/// Placeholder until classification fills it in.
const UNCLASSIFIED: FrameClass =
    FrameClass { vlan: VlanTagging::Untagged, proto: ProtoClass::Unparseable };

/// One packet of a chunk; its bytes are [`Chunk::data`].
pub(super) struct Frame {
    from: usize,
    to: usize,
    pub ts_ns: u64,
    pub orig_len: u32,
    pub truncated: bool,
    /// Position in its capture file.
    pub index: u64,
    /// Position over all captures of the replay.
    pub global: u64,
    pub class: FrameClass,
    /// The worker (RSS queue) that runs it.
    pub queue: usize,
}

enum Bytes {
    Batch(Batch),
    Owned(Vec<u8>),
}

/// A run of consecutive packets of one capture.
pub(super) struct Chunk {
    bytes: Bytes,
    pub frames: Vec<Frame>,
    /// Why reading stopped right after these frames.
    pub error: Option<String>,
    /// No chunk follows this one in its capture.
    pub last: bool,
    /// Positions in `frames` of each worker's frames, in order, so that a
    /// worker walks only its own (set by [`Chunk::classify`]).
    by_queue: Vec<Vec<u32>>,
}

impl Chunk {
    pub(super) fn data(&self, f: &Frame) -> &[u8] {
        match &self.bytes {
            Bytes::Batch(b) => b.bytes(f.from, f.to),
            Bytes::Owned(v) => &v[f.from..f.to],
        }
    }

    /// Worker `w`'s frames, in capture order.
    pub(super) fn frames_of(&self, w: usize) -> impl Iterator<Item = &Frame> + '_ {
        let mine = self.by_queue.get(w).map_or(&[][..], Vec::as_slice);
        mine.iter().map(|&i| &self.frames[i as usize])
    }

    /// Sets every frame's class and, through `queue`, its worker.
    pub(super) fn classify(&mut self, queue: impl Fn(Option<&FiveTuple>) -> usize) {
        let Chunk { bytes, frames, by_queue, .. } = self;
        by_queue.clear();
        for (i, f) in frames.iter_mut().enumerate() {
            let data = match &*bytes {
                Bytes::Batch(b) => b.bytes(f.from, f.to),
                Bytes::Owned(v) => &v[f.from..f.to],
            };
            let (class, flow) = classify_with_flow(data);
            f.class = class;
            f.queue = queue(flow.as_ref());
            if by_queue.len() <= f.queue {
                by_queue.resize_with(f.queue + 1, Vec::new);
            }
            // A chunk holds far fewer frames than 2^32 (one buffer's worth).
            by_queue[f.queue].push(i as u32);
        }
    }
}

/// Where a capture's chunks come from.
pub(super) enum Source {
    Batches(PcapBatches),
    Stream(CaptureReader),
}

impl Source {
    pub(super) fn open(path: &Path) -> Result<Source, CaptureError> {
        Ok(match PcapBatches::open(path)? {
            Some(b) => Source::Batches(b),
            None => Source::Stream(CaptureReader::open(path)?),
        })
    }

    /// The next chunk; its frames are numbered from `global`. An empty
    /// chunk ends the capture.
    pub(super) fn next_chunk(&mut self, global: u64) -> Chunk {
        match self {
            Source::Batches(batches) => {
                let mut batch = batches.next_batch();
                let error = batch.error.take().map(|e| e.to_string());
                let frames: Vec<Frame> = batch
                    .spans()
                    .enumerate()
                    .map(|(i, (from, to, r))| Frame {
                        from,
                        to,
                        ts_ns: r.ts_ns,
                        orig_len: r.orig_len,
                        truncated: r.truncated(),
                        index: r.index,
                        global: global + i as u64,
                        class: UNCLASSIFIED,
                        queue: 0,
                    })
                    .collect();
                let last = error.is_some() || frames.is_empty();
                Chunk { bytes: Bytes::Batch(batch), frames, error, last, by_queue: Vec::new() }
            }
            Source::Stream(reader) => {
                let mut buf = Vec::new();
                let mut frames = Vec::new();
                let mut error = None;
                for item in reader.by_ref().take(STREAM_CHUNK) {
                    match item {
                        Ok(p) => {
                            let from = buf.len();
                            buf.extend_from_slice(&p.data);
                            frames.push(Frame {
                                from,
                                to: buf.len(),
                                ts_ns: p.ts_ns,
                                orig_len: p.orig_len,
                                truncated: p.truncated,
                                index: p.index,
                                global: global + frames.len() as u64,
                                class: UNCLASSIFIED,
                                queue: 0,
                            });
                        }
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                let last = error.is_some() || frames.len() < STREAM_CHUNK;
                Chunk { bytes: Bytes::Owned(buf), frames, error, last, by_queue: Vec::new() }
            }
        }
    }

    /// Hands a finished chunk's buffer back for reuse.
    pub(super) fn recycle(&mut self, chunk: Chunk) {
        if let (Source::Batches(batches), Bytes::Batch(b)) = (self, chunk.bytes) {
            batches.recycle(b);
        }
    }

    /// Warnings about the capture (synthetic Ethernet headers, ...).
    pub(super) fn notices(&mut self) -> Vec<String> {
        match self {
            Source::Batches(_) => Vec::new(),
            Source::Stream(reader) => reader.take_notices().iter().map(|n| n.to_string()).collect(),
        }
    }
}
