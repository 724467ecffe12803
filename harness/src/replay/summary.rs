//! Verdict counts per capture and per protocol class.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

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
    let mut s = format!("  {label:<22}{:>9}", c.total);
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
            let _ = writeln!(out, "{} through {} ({}):", cap.capture, self.program, self.object);
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
                let _ = writeln!(out, "  warning: {n}");
            }
            if let Some(e) = &cap.error {
                let _ = writeln!(out, "  error: {e} (the packets before it are counted above)");
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
