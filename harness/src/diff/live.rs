//! `live:IFACE[:MODE]` as a diff backend: the live backend runs the
//! captures through the interface (it compares every frame with the engine
//! itself, one in flight), and its per-packet disagreements are folded into
//! the diff report under the backend's label, counted once per packet with
//! the other backends' disagreements.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{BackendKind, DiffOptions, DiffReport, Mismatch, Skipped};
use crate::backends::live::observe::{Method, Seen};
use crate::backends::live::{self, Endpoint, LiveOptions, LiveSpec};
use crate::backends::PacketResult;
use crate::program::{Object, Program};
use crate::verdict::{Verdict, XdpAction};

/// What a live backend did, beside its disagreements.
#[derive(Clone, Debug, Serialize)]
pub struct LiveSummary {
    pub backend: String,
    pub peer: String,
    /// `fexit` or `tagging`, for this run.
    pub observation_method: Method,
    pub observation_fallback: Option<String>,
    pub sent: u64,
    pub not_sent: u64,
    pub foreign_runs: u64,
    /// Frames the tool did not send, by protocol (left out of the comparison).
    pub foreign: crate::backends::live::foreign::ForeignSummary,
    /// Why maps were not compared exactly, when they were not.
    pub maps_inexact: Option<String>,
    pub map_differences_inexact: Vec<String>,
    pub unattributed: u64,
    pub notes: Vec<String>,
}

/// The live result of a frame as a [`PacketResult`]: the action when the
/// fexit probe saw it, otherwise where the frame was seen.
fn as_result(seen: &Seen, run: Option<&live::probe::Run>) -> PacketResult {
    let verdict = match (run, seen) {
        (Some(r), _) => Verdict::Action { action: XdpAction::from_retval(r.action) },
        (None, Seen::NotRun { reason }) => Verdict::NotRun { reason: reason.clone() },
        (None, s) => Verdict::Error {
            message: format!("no action observed (tagging): frame seen at {}", s.label()),
        },
    };
    let output = match seen {
        Seen::Stack { frame } | Seen::Peer { frame } => frame.clone(),
        _ => Vec::new(),
    };
    PacketResult { verdict, output, events: vec![], redirect: None, insns: None, duration_ns: None }
}

/// Runs every `live:` backend of `opts` and folds it into `report`.
/// `mismatched`: the packets already counted as mismatches, by
/// (capture, index); `agreed_keys` those counted as agreeing.
pub(super) fn fold(
    obj: &Object,
    program: &Program,
    captures: &[PathBuf],
    opts: &DiffOptions,
    report: &mut DiffReport,
    mismatched: &mut HashSet<(String, u64)>,
    agreed_keys: &HashSet<(String, u64)>,
) {
    for kind in &opts.backends {
        let BackendKind::Live(spec) = kind else { continue };
        let label = kind.label();
        let lopts = match options(spec, opts) {
            Ok(o) => o,
            Err(e) => {
                report.skipped.push(Skipped { backend: kind.clone(), reason: e });
                continue;
            }
        };
        let lr = match live::run(obj, program, captures, &lopts) {
            Ok(r) => r,
            Err(e) => {
                report.skipped.push(Skipped { backend: kind.clone(), reason: e.to_string() });
                continue;
            }
        };
        report.backends.push(kind.clone());
        for m in lr.mismatches {
            let key = (m.capture.clone(), m.index);
            if mismatched.insert(key.clone()) {
                if agreed_keys.contains(&key) {
                    report.tally.agreed -= 1;
                }
                report.tally.mismatch_count += 1;
            }
            if report.mismatches.len() < opts.max_reported {
                let mut results = BTreeMap::new();
                results.insert(label.clone(), as_result(&m.live, m.fexit.as_ref()));
                results.insert("vm".to_string(), m.engine);
                report.mismatches.push(Mismatch {
                    capture: m.capture,
                    index: m.index,
                    flow: m.flow,
                    results,
                    detail: format!("vm vs {label}: {}", m.detail),
                });
            }
        }
        if !lr.map_mismatches.is_empty() {
            report
                .map_mismatches
                .extend(lr.map_mismatches.iter().map(|d| format!("vm vs {label}: {d}")));
        }
        report.live.push(LiveSummary {
            backend: label,
            peer: lr.peer,
            observation_method: lr.observation_method,
            observation_fallback: lr.observation_fallback,
            sent: lr.sent,
            not_sent: lr.not_sent,
            foreign_runs: lr.foreign_runs,
            foreign: lr.foreign,
            maps_inexact: lr.maps_inexact,
            map_differences_inexact: lr.map_differences_inexact,
            unattributed: lr.unattributed,
            notes: lr.notes,
        });
    }
}

fn options(spec: &LiveSpec, opts: &DiffOptions) -> Result<LiveOptions, String> {
    let iface = Endpoint::new(&spec.iface, None);
    let peer = live::veth_peer(&iface).map_err(|e| e.to_string())?;
    Ok(LiveOptions {
        iface,
        peer,
        mode: spec.mode,
        replace: false,
        maps: opts.maps.clone(),
        settle: Duration::from_millis(2),
        // Every disagreement is needed to count packets once.
        max_reported: usize::MAX,
        max_packets: None,
    })
}
