//! The qualification report and its renderings: JSON (schema
//! `xdpqual.qualify/2`), JUnit XML and a Markdown summary for pull requests.
//! Everything that came from a program or a file (names, messages) is
//! escaped for the format it lands in.

use serde::{Deserialize, Serialize};

pub mod perf;

use perf::PerfSample;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Pass { detail: String },
    Fail { reason: String },
    Skipped { reason: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Check {
    /// Index of the work unit (program x capture x cell) in the run's plan.
    #[serde(default)]
    pub unit: usize,
    pub program: String,
    pub capture: String,
    /// vm, rbpf, host or offload:PROFILE.
    #[serde(default)]
    pub cell: String,
    pub check: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Check {
    pub fn new(program: &str, capture: &str, check: &str, outcome: Outcome) -> Check {
        Check {
            unit: 0,
            program: program.into(),
            capture: capture.into(),
            cell: String::new(),
            check: check.into(),
            outcome,
        }
    }

    pub fn in_unit(mut self, unit: usize, cell: &str) -> Check {
        self.unit = unit;
        self.cell = cell.into();
        self
    }

    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }

    pub fn line(&self) -> String {
        let (tag, text) = match &self.outcome {
            Outcome::Pass { detail } => ("PASS", detail),
            Outcome::Fail { reason } => ("FAIL", reason),
            Outcome::Skipped { reason } => ("SKIP", reason),
        };
        // For the terminal: names and messages lose their control characters.
        crate::util::escape::terminal(&format!(
            "{tag} {} [{}] {}: {text}",
            self.program, self.capture, self.check
        ))
    }
}

/// One packet on which a check found a difference: for the dashboard's
/// per-packet pages.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PacketDetail {
    pub unit: usize,
    pub program: String,
    pub capture: String,
    pub cell: String,
    pub index: u64,
    pub detail: String,
}

/// A NIC offload verdict with a throughput estimate where the profile has
/// the constants for one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OffloadResult {
    #[serde(default)]
    pub unit: usize,
    pub program: String,
    pub profile: String,
    /// The target loads the program (offloadable, with or without a
    /// run-time fallback).
    pub compatible: bool,
    /// The verdict: offloadable, offloadable with run-time fallback, not
    /// offloadable. Absent in reports older than it (then `compatible`
    /// alone: see [`OffloadResult::state`]).
    #[serde(default, rename = "state")]
    pub state: Option<nic_model::Offloadability>,
    pub reason: String,
    pub est_mpps: Option<f64>,
    pub est_basis: String,
    /// Which bound the estimate is: `compute` or `line rate`.
    #[serde(default)]
    pub est_bound: Option<String>,
}

impl OffloadResult {
    /// The verdict, from `compatible` for reports older than `state` (where
    /// a run-time fallback was not told apart).
    pub fn verdict(&self) -> nic_model::Offloadability {
        self.state.unwrap_or(if self.compatible {
            nic_model::Offloadability::Offloadable
        } else {
            nic_model::Offloadability::NotOffloadable
        })
    }
}

/// Wall time one unit took: the cost that balances later shards.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UnitTiming {
    pub unit: usize,
    pub key: String,
    pub seconds: f64,
}

/// Which slice of the plan a shard ran.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ShardInfo {
    /// 1-based.
    pub index: u32,
    pub count: u32,
    /// Fingerprint of the whole plan and its assignment; shards of one
    /// qualification share it.
    pub plan: String,
    pub units: Vec<usize>,
    pub total_units: usize,
}

/// Where and when a report was made.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RunInfo {
    pub id: String,
    pub created_unix: u64,
    pub arch: String,
    pub kernel: Option<String>,
    pub config: String,
    #[serde(default)]
    pub shard: Option<ShardInfo>,
    /// The commit of the qualified sources (see `qualify::source_commit`);
    /// absent in reports older than it and where none is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Report {
    pub schema: String,
    pub xdpqual_version: String,
    #[serde(default)]
    pub run: RunInfo,
    pub checks: Vec<Check>,
    #[serde(default)]
    pub perf: Vec<PerfSample>,
    #[serde(default)]
    pub packets: Vec<PacketDetail>,
    #[serde(default)]
    pub offload: Vec<OffloadResult>,
    #[serde(default)]
    pub units: Vec<UnitTiming>,
}

/// Markdown-safe inline text (see [`crate::util::escape::markdown`]).
pub use crate::util::escape::markdown as md;
use crate::util::escape::{xml_attr, xml_text};

impl Report {
    pub fn new() -> Report {
        Report {
            schema: "xdpqual.qualify/2".into(),
            xdpqual_version: env!("CARGO_PKG_VERSION").into(),
            run: RunInfo::default(),
            checks: Vec::new(),
            perf: Vec::new(),
            packets: Vec::new(),
            offload: Vec::new(),
            units: Vec::new(),
        }
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| matches!(c.outcome, Outcome::Fail { .. }))
    }

    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    pub fn count(&self) -> (usize, usize, usize) {
        let mut n = (0, 0, 0);
        for c in &self.checks {
            match c.outcome {
                Outcome::Pass { .. } => n.0 += 1,
                Outcome::Fail { .. } => n.1 += 1,
                Outcome::Skipped { .. } => n.2 += 1,
            }
        }
        n
    }

    /// Seconds per check for JUnit's `time`. The checks of one work unit
    /// come out of one replay of its capture (the engine run, the
    /// comparison and the perf rounds are not timed apart), so a unit's wall
    /// time is shared evenly among its checks; a check of a unit with no
    /// timing (a report from before timings were kept) gets 0. The times
    /// add up to the units' total, which is the suite's `time`.
    pub fn check_seconds(&self) -> Vec<f64> {
        let mut per_unit: std::collections::HashMap<usize, (f64, usize)> = Default::default();
        for u in &self.units {
            per_unit.entry(u.unit).or_insert((0.0, 0)).0 += u.seconds.max(0.0);
        }
        for c in &self.checks {
            if let Some(e) = per_unit.get_mut(&c.unit) {
                e.1 += 1;
            }
        }
        self.checks
            .iter()
            .map(|c| match per_unit.get(&c.unit) {
                Some((secs, n)) if *n > 0 => secs / *n as f64,
                _ => 0.0,
            })
            .collect()
    }

    pub fn junit(&self) -> String {
        let (_, failed, skipped) = self.count();
        let times = self.check_seconds();
        let total: f64 = times.iter().sum();
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"xdpqual\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{total:.6}\">\n<testsuite name=\"qualify\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{total:.6}\">\n",
            self.checks.len(),
            self.checks.len()
        );
        // Failures first, so a reader of the raw file sees them at once.
        let mut ordered: Vec<(&Check, f64)> =
            self.checks.iter().zip(times.iter().copied()).filter(|(c, _)| c.failed()).collect();
        ordered.extend(self.checks.iter().zip(times.iter().copied()).filter(|(c, _)| !c.failed()));
        for (c, secs) in ordered {
            s.push_str(&format!(
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{secs:.6}\">",
                xml_attr(&c.program),
                xml_attr(&format!("{} [{}]", c.check, c.capture))
            ));
            match &c.outcome {
                Outcome::Pass { .. } => {}
                Outcome::Fail { reason } => s.push_str(&format!(
                    "<failure message=\"{}\">{}</failure>",
                    xml_attr(reason),
                    xml_text(reason)
                )),
                Outcome::Skipped { reason } => {
                    s.push_str(&format!("<skipped message=\"{}\"/>", xml_attr(reason)))
                }
            }
            s.push_str("</testcase>\n");
        }
        s.push_str("</testsuite>\n</testsuites>\n");
        s
    }

    /// `summary.md`, for a pull request or a job summary: the failures
    /// first, then a program x cell grid of counts, then the skips grouped
    /// by reason (one line each, inside `<details>`), then where the full
    /// report is. Each part has a byte budget, so the whole stays under
    /// [`SUMMARY_LIMIT`] whatever the corpus size; what does not fit is
    /// counted, not dropped silently. Everything from a program or a file is
    /// escaped with [`md`].
    pub fn markdown(&self) -> String {
        let (passed, failed, skipped) = self.count();
        let mut s = String::new();
        if failed > 0 {
            s.push_str(&format!("## xdpqual: {failed} check(s) FAILED\n\n"));
        } else {
            s.push_str("## xdpqual: all checks passed\n\n");
        }
        s.push_str(&format!("{passed} passed, {failed} failed, {skipped} skipped\n\n"));

        // 1. Failures, each with its reason.
        if failed > 0 {
            let mut shown = 0;
            for c in self.failures() {
                if let Outcome::Fail { reason } = &c.outcome {
                    let line = format!(
                        "- **{}** on {} ({}): {}\n",
                        md(&c.program),
                        md(&c.capture),
                        md(&c.check),
                        md(&clip(reason, 600))
                    );
                    if s.len() + line.len() > FAILURES_BUDGET {
                        break;
                    }
                    s.push_str(&line);
                    shown += 1;
                }
            }
            if shown < failed {
                s.push_str(&format!("- and {} more failure(s): see report.json\n", failed - shown));
            }
            s.push('\n');
        }

        // 2. Program x cell grid.
        let mut cells: Vec<&str> = Vec::new();
        let mut programs: Vec<&str> = Vec::new();
        let mut counts: std::collections::HashMap<(&str, &str), (usize, usize, usize)> =
            Default::default();
        for c in &self.checks {
            let cell = if c.cell.is_empty() { "-" } else { c.cell.as_str() };
            if !cells.contains(&cell) {
                cells.push(cell);
            }
            if !programs.contains(&c.program.as_str()) {
                programs.push(&c.program);
            }
            let n = counts.entry((c.program.as_str(), cell)).or_default();
            match c.outcome {
                Outcome::Pass { .. } => n.0 += 1,
                Outcome::Fail { .. } => n.1 += 1,
                Outcome::Skipped { .. } => n.2 += 1,
            }
        }
        if !programs.is_empty() {
            s.push_str("### Checks by program\n\n");
            s.push_str("| program |");
            for c in &cells {
                s.push_str(&format!(" {} |", md(c)));
            }
            s.push_str("\n|---|");
            s.push_str(&"---|".repeat(cells.len()));
            s.push('\n');
            let budget = s.len() + GRID_BUDGET;
            let mut shown = 0;
            for p in &programs {
                let mut row = format!("| {} |", md(&clip(p, 200)));
                for c in &cells {
                    let cell = match counts.get(&(*p, *c)) {
                        None => String::new(),
                        Some(&(ok, bad, skip)) => {
                            let mut parts = Vec::new();
                            if bad > 0 {
                                parts.push(format!("**{bad} fail**"));
                            }
                            if ok > 0 {
                                parts.push(format!("{ok} pass"));
                            }
                            if skip > 0 {
                                parts.push(format!("{skip} skip"));
                            }
                            parts.join(", ")
                        }
                    };
                    row.push_str(&format!(" {cell} |"));
                }
                row.push('\n');
                if s.len() + row.len() > budget {
                    break;
                }
                s.push_str(&row);
                shown += 1;
            }
            s.push('\n');
            if shown < programs.len() {
                s.push_str(&format!(
                    "{} more program(s) did not fit: see report.json.\n\n",
                    programs.len() - shown
                ));
            }
        }

        // 3. Skips, one line per reason.
        if skipped > 0 {
            let mut reasons: Vec<(&str, usize)> = Vec::new();
            for c in &self.checks {
                if let Outcome::Skipped { reason } = &c.outcome {
                    match reasons.iter_mut().find(|(r, _)| *r == reason.as_str()) {
                        Some((_, n)) => *n += 1,
                        None => reasons.push((reason, 1)),
                    }
                }
            }
            s.push_str(&format!(
                "### Skipped\n\n<details><summary>{skipped} skipped check(s), {} reason(s)</summary>\n\n",
                reasons.len()
            ));
            let budget = s.len() + SKIPS_BUDGET;
            let mut shown = 0;
            for (reason, n) in &reasons {
                let line = format!("- {n} x {}\n", md(&clip(reason, 400)));
                if s.len() + line.len() > budget {
                    break;
                }
                s.push_str(&line);
                shown += 1;
            }
            if shown < reasons.len() {
                s.push_str(&format!(
                    "- and {} more reason(s): see report.json\n",
                    reasons.len() - shown
                ));
            }
            s.push_str("\n</details>\n\n");
        }

        // 4. Where everything is (beside this file: the same text whichever
        // run, shard merge or copy it is).
        s.push_str(
            "Full report: report.json (every check with its detail) and junit.xml, beside this summary.\n",
        );
        s
    }
}

/// summary.md stays under this many bytes (GitHub's PR comments and job
/// summaries stop at 65,536 characters).
pub const SUMMARY_LIMIT: usize = 60 * 1024;
/// Bytes up to which the failure list is written (from the top).
const FAILURES_BUDGET: usize = 24 * 1024;
/// Bytes the grid may add.
const GRID_BUDGET: usize = 24 * 1024;
/// Bytes the skip reasons may add.
const SKIPS_BUDGET: usize = 6 * 1024;

/// At most `max` characters of `t`, with an ellipsis when cut.
fn clip(t: &str, max: usize) -> String {
    if t.chars().count() <= max {
        t.to_string()
    } else {
        let mut c: String = t.chars().take(max).collect();
        c.push_str("...");
        c
    }
}

impl Default for Report {
    fn default() -> Self {
        Report::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_times_share_each_units_wall_time() {
        let mut r = Report::new();
        let pass = || Outcome::Pass { detail: String::new() };
        r.checks.push(Check::new("p", "c", "a", pass()).in_unit(0, "vm"));
        r.checks.push(Check::new("p", "c", "b", pass()).in_unit(0, "vm"));
        r.checks.push(Check::new("p", "c", "c", pass()).in_unit(1, "host"));
        r.checks.push(Check::new("p", "-", "d", pass()).in_unit(2, "offload:x"));
        r.units.push(UnitTiming { unit: 0, key: "u0".into(), seconds: 3.0 });
        r.units.push(UnitTiming { unit: 1, key: "u1".into(), seconds: 0.5 });
        // Unit 2 has no timing (an older report): 0, not a guess.
        assert_eq!(r.check_seconds(), vec![1.5, 1.5, 0.5, 0.0]);
        let j = r.junit();
        assert!(j.contains("<testsuite name=\"qualify\" tests=\"4\" failures=\"0\" skipped=\"0\" time=\"3.500000\">"), "{j}");
        assert_eq!(j.matches("time=\"1.500000\"").count(), 2, "{j}");
    }

    #[test]
    fn hostile_names_are_escaped() {
        let mut r = Report::new();
        r.checks.push(Check::new(
            "<script>|x`",
            "c",
            "k",
            Outcome::Fail { reason: "a & b <b>".into() },
        ));
        let m = r.markdown();
        assert!(!m.contains("<script>") && m.contains("&lt;script&gt;\\|x\\`"), "{m}");
        let j = r.junit();
        assert!(!j.contains("<script>") && j.contains("&lt;script&gt;"), "{j}");
        assert!(m.starts_with("## xdpqual: 1 check(s) FAILED"));
    }
}
