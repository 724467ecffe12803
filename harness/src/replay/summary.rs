//! Verdict counts per capture and per protocol class.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::util::escape::terminal;

#[derive(Default, Serialize, Clone, Debug)]
pub struct Counts {
    pub by_verdict: BTreeMap<String, u64>,
    pub total: u64,
}

impl Counts {
    pub fn add(&mut self, verdict: &str) {
        *self.by_verdict.entry(verdict.to_string()).or_default() += 1;
        self.total += 1;
    }
}

#[derive(Default, Serialize, Clone, Debug)]
pub struct CaptureSummary {
    pub capture: String,
    pub counts: Counts,
    pub by_class: BTreeMap<String, Counts>,
    /// Records whose capture length is below their wire length.
    pub truncated: u64,
    /// Warnings about the capture (synthetic Ethernet headers, ...).
    pub notices: Vec<String>,
    /// Set when reading stopped early; packets before it are counted.
    pub error: Option<String>,
    /// FAULT verdicts by reason ([`fault_reason`]: the message without the
    /// per-packet address and bounds), with counts.
    pub faults: BTreeMap<String, u64>,
    /// ERROR verdicts (the backend itself failed) by message, with counts.
    pub errors: BTreeMap<String, u64>,
}

/// What a fault message says without its per-packet details (addresses,
/// the valid range of a packet of that length), so faults of one cause
/// count as one reason: "load of 4 bytes at <addr> is outside the packet
/// at insn 42 of prog (x.c:7)".
pub fn fault_reason(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(" (valid offsets ") {
            if let Some(end) = after.find(')') {
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("0x") {
            let n = after.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n > 0 {
                out.push_str("<addr>");
                rest = &after[n..];
                continue;
            }
        }
        let c = rest.chars().next().expect("non-empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Adds `add` into `into`, key by key.
pub fn add_counts(into: &mut BTreeMap<String, u64>, add: impl IntoIterator<Item = (String, u64)>) {
    for (k, n) in add {
        *into.entry(k).or_default() += n;
    }
}

#[derive(Default, Serialize, Clone, Debug)]
pub struct Summary {
    pub schema: &'static str,
    pub program: String,
    pub object: String,
    pub captures: Vec<CaptureSummary>,
    /// Packets each executor ran (`jit`, `interpreter`), over all
    /// captures, counted run by run: a JIT replay still interprets the
    /// packet it traces. Frames refused before the program ran are in no
    /// count.
    pub executors: BTreeMap<String, u64>,
}

const COLUMNS: [&str; 8] =
    ["PASS", "DROP", "TX", "REDIRECT", "ABORTED", "FAULT", "NOT_RUN", "other"];

fn row(label: &str, c: &Counts) -> String {
    let mut s = format!("  {:<22}{:>9}", terminal(label), c.total);
    for col in COLUMNS {
        let n = if col == "other" {
            c.by_verdict
                .iter()
                .filter(|(k, _)| !COLUMNS.contains(&k.as_str()))
                .map(|(_, v)| v)
                .sum()
        } else {
            c.by_verdict.get(col).copied().unwrap_or(0)
        };
        let _ = write!(s, "{n:>9}");
    }
    s
}

impl Summary {
    /// The table printed after a replay.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let header = {
            let mut h = format!("  {:<22}{:>9}", "", "packets");
            for c in COLUMNS {
                let _ = write!(h, "{c:>9}");
            }
            h
        };
        for cap in &self.captures {
            let _ = writeln!(
                out,
                "{} through {} ({}):",
                terminal(&cap.capture),
                terminal(&self.program),
                terminal(&self.object)
            );
            let _ = writeln!(out, "{header}");
            let _ = writeln!(out, "{}", row("all", &cap.counts));
            for (class, c) in &cap.by_class {
                let _ = writeln!(out, "{}", row(class, c));
            }
            if cap.truncated > 0 {
                let _ = writeln!(
                    out,
                    "  {} truncated records (caplen < len) were replayed as captured",
                    cap.truncated
                );
            }
            for n in &cap.notices {
                let _ = writeln!(out, "  warning: {}", terminal(n));
            }
            for (what, list) in [("faults", &cap.faults), ("errors", &cap.errors)] {
                if list.is_empty() {
                    continue;
                }
                let mut by_count: Vec<(&String, &u64)> = list.iter().collect();
                by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let items: Vec<String> =
                    by_count.iter().map(|(r, n)| format!("{n} \u{d7} {}", terminal(r))).collect();
                let _ = writeln!(out, "  {what}: {}", items.join("; "));
            }
            if let Some(e) = &cap.error {
                let _ = writeln!(
                    out,
                    "  error: {} (the packets before it are counted above)",
                    terminal(e)
                );
            }
            out.push('\n');
        }
        if !self.executors.is_empty() {
            let ran: Vec<String> = self.executors.iter().map(|(e, n)| format!("{e} {n}")).collect();
            let _ = writeln!(out, "packets run by executor: {}", ran.join(", "));
        }
        out
    }
}
