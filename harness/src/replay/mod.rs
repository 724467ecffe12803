//! Local pcap replay: every packet of every capture through one program.
//!
//! This is the core loop the other commands reuse. Captures are streamed
//! (memory does not grow with their size); map state carries over from
//! packet to packet unless `fresh_maps` is set.

mod chunk;
pub mod parallel;
pub mod shared_state;
pub mod summary;
pub mod trace;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::backends::{engine::run_packet_executed, PacketResult, PacketSource};
use crate::capture::{classify, flow, CaptureReader, PcapFileWriter, TsPrecision};
use crate::engine::{Engine, NoTrace};
use crate::program::Object;
use summary::{CaptureSummary, Summary};

/// Version of the `--json` per-packet line schema (see docs/replay-json.md).
pub const PACKET_SCHEMA: &str = "xdpqual.replay.packet/1";

#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub fresh_maps: bool,
    /// Per-packet JSON lines go here.
    pub json: Option<PathBuf>,
    /// VERDICT label -> capture file for that verdict's output packets.
    pub write_pcap: Vec<(String, PathBuf)>,
    /// Global packet number (0-based over all captures) to trace.
    pub trace: Option<u64>,
    /// Show a progress indicator on stderr (only when it is a terminal).
    pub progress: bool,
}

/// One per-packet JSON line.
#[derive(Serialize)]
pub(crate) struct PacketLine<'a> {
    pub(crate) schema: &'static str,
    pub(crate) capture: &'a str,
    pub(crate) index: u64,
    pub(crate) ts_ns: u64,
    pub(crate) len: usize,
    pub(crate) orig_len: u32,
    pub(crate) truncated: bool,
    pub(crate) class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flow: Option<String>,
    #[serde(flatten)]
    pub(crate) result: &'a PacketResult,
    pub(crate) output_changed: bool,
}

impl<'a> PacketLine<'a> {
    /// The line for one packet: `data` is the frame the program was given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        capture: &'a str,
        index: u64,
        ts_ns: u64,
        data: &[u8],
        orig_len: u32,
        truncated: bool,
        class: String,
        result: &'a PacketResult,
    ) -> PacketLine<'a> {
        PacketLine {
            schema: PACKET_SCHEMA,
            capture,
            index,
            ts_ns,
            len: data.len(),
            orig_len,
            truncated,
            class,
            flow: flow(data).map(|f| f.to_string()),
            // A frame that did not run has no output, which is no change.
            output_changed: !result.output.is_empty() && result.output != data,
            result,
        }
    }
}

/// What a replay produced: the summary plus where it stopped early, if it did.
pub struct ReplayReport {
    pub summary: Summary,
    pub trace: Option<String>,
}

/// Replays `captures` through `engine`, one packet at a time on this
/// thread. Per-file read errors are recorded in the summary and the next
/// file goes on. [`parallel::replay_parallel`] is the fast path the CLI
/// uses; this straightforward loop is kept as its reference (the parallel
/// tests compare the two).
pub fn replay(
    engine: &mut Engine,
    obj: &Object,
    program: &str,
    captures: &[PathBuf],
    opts: &ReplayOptions,
) -> Result<ReplayReport> {
    let mut summary = Summary {
        schema: "xdpqual.replay.summary/1",
        program: program.to_string(),
        object: obj.path.display().to_string(),
        captures: Vec::new(),
        executors: BTreeMap::new(),
    };
    let mut json = match &opts.json {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("creating JSON output {}", p.display()))?,
        )),
        None => None,
    };
    let mut writers: BTreeMap<String, PcapFileWriter> = BTreeMap::new();
    for (verdict, path) in &opts.write_pcap {
        writers.insert(
            verdict.to_uppercase(),
            PcapFileWriter::create(path, TsPrecision::Nanosecond)
                .with_context(|| format!("creating {}", path.display()))?,
        );
    }
    let mut global = 0u64;
    let mut trace_text = None;
    let progress = progress_bar(opts.progress);
    for path in captures {
        let mut cap = CaptureSummary { capture: path.display().to_string(), ..Default::default() };
        match CaptureReader::open(path) {
            Err(e) => cap.error = Some(e.to_string()),
            Ok(mut reader) => {
                for item in &mut reader {
                    let pkt = match item {
                        Ok(p) => p,
                        Err(e) => {
                            cap.error = Some(e.to_string());
                            break;
                        }
                    };
                    if opts.fresh_maps {
                        engine.reset_maps();
                    }
                    let src = PacketSource {
                        data: pkt.data,
                        ts_ns: pkt.ts_ns,
                        ingress_ifindex: opts.ingress_ifindex,
                        rx_queue_index: opts.rx_queue_index,
                    };
                    let (result, executor) = if opts.trace == Some(global) {
                        let mut rec = crate::engine::Recorder::new(100_000);
                        let (r, executor) = run_packet_executed(engine, &src, &mut rec);
                        trace_text = Some(trace::render(engine, obj, program, &rec, &r));
                        (r, executor)
                    } else {
                        run_packet_executed(engine, &src, &mut NoTrace)
                    };
                    if let Some(e) = executor {
                        *summary.executors.entry(e.name().to_string()).or_default() += 1;
                    }
                    let class = classify(&src.data).to_string();
                    let label = result.verdict.label();
                    cap.counts.add(&label);
                    match &result.verdict {
                        crate::verdict::Verdict::Fault { message, .. } => {
                            *cap.faults.entry(summary::fault_reason(message)).or_default() += 1
                        }
                        crate::verdict::Verdict::Error { message } => {
                            *cap.errors.entry(message.clone()).or_default() += 1
                        }
                        _ => {}
                    }
                    cap.by_class.entry(class.clone()).or_default().add(&label);
                    if pkt.truncated {
                        cap.truncated += 1;
                    }
                    if let Some(w) = writers.get_mut(&label) {
                        if !result.output.is_empty() {
                            w.write(pkt.ts_ns, &result.output)
                                .context("writing --write-pcap output")?;
                        }
                    }
                    if let Some(j) = json.as_mut() {
                        let line = PacketLine::new(
                            &cap.capture,
                            pkt.index,
                            pkt.ts_ns,
                            &src.data,
                            pkt.orig_len,
                            pkt.truncated,
                            class,
                            &result,
                        );
                        serde_json::to_writer(&mut *j, &line)?;
                        j.write_all(b"\n")?;
                    }
                    global += 1;
                    if let Some(p) = &progress {
                        p.inc(1);
                    }
                }
                cap.notices = reader.take_notices().iter().map(|n| n.to_string()).collect();
            }
        }
        summary.captures.push(cap);
    }
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    if let Some(mut j) = json {
        j.flush()?;
    }
    for (_, w) in writers {
        w.finish().context("finishing --write-pcap output")?;
    }
    Ok(ReplayReport { summary, trace: trace_text })
}

pub(crate) fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let p = indicatif::ProgressBar::new_spinner();
    p.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} packets replayed ({per_sec})")
            .expect("valid template"),
    );
    p.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(p)
}

/// Splits `PROG.o[:SECTION]`.
pub fn split_target(s: &str) -> (PathBuf, Option<String>) {
    match s.rsplit_once(':') {
        Some((path, sec)) if Path::new(path).extension().is_some_and(|e| e == "o") => {
            (PathBuf::from(path), Some(sec.to_string()))
        }
        _ => (PathBuf::from(s), None),
    }
}
