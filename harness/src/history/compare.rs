//! Two runs side by side: checks that changed status, and performance
//! judged by the noise-aware rule of `report::perf::judge_regression`.

use crate::report::perf::{judge_regression, PerfSample, Regression};
use crate::report::{md, Check, Outcome, Report};

/// Default `--max-regression` of `xdpqual compare`, in percent.
pub const DEFAULT_THRESHOLD_PCT: f64 = 10.0;

#[derive(Debug, Clone)]
pub struct Comparison {
    pub run: String,
    pub baseline: String,
    /// Failing now, passing or absent in the baseline.
    pub new_failures: Vec<Check>,
    /// Passing now, failing in the baseline.
    pub fixed: Vec<Check>,
    pub perf: Vec<(PerfSample, Regression)>,
}

fn key(c: &Check) -> (&str, &str, &str, &str) {
    (&c.program, &c.capture, &c.cell, &c.check)
}

pub fn compare(now: &Report, base: &Report, threshold_pct: f64) -> Comparison {
    let mut new_failures = Vec::new();
    let mut fixed = Vec::new();
    for c in &now.checks {
        let before = base.checks.iter().find(|b| key(b) == key(c));
        match (&c.outcome, before.map(|b| &b.outcome)) {
            (Outcome::Fail { .. }, Some(Outcome::Fail { .. })) => {}
            (Outcome::Fail { .. }, _) => new_failures.push(c.clone()),
            (Outcome::Pass { .. }, Some(Outcome::Fail { .. })) => fixed.push(c.clone()),
            _ => {}
        }
    }
    let perf = now
        .perf
        .iter()
        .filter_map(|s| {
            base.perf
                .iter()
                .find(|b| {
                    b.program == s.program && b.capture == s.capture && b.backend == s.backend
                })
                .map(|b| (s.clone(), judge_regression(s, b, threshold_pct)))
        })
        .collect();
    Comparison { run: now.run.id.clone(), baseline: base.run.id.clone(), new_failures, fixed, perf }
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &(PerfSample, Regression)> {
        self.perf.iter().filter(|(_, r)| r.regressed)
    }

    pub fn worse(&self) -> bool {
        !self.new_failures.is_empty() || self.regressions().next().is_some()
    }

    /// Markdown, regressions and new failures first.
    pub fn markdown(&self) -> String {
        let mut s =
            format!("## xdpqual compare: run {} against {}\n\n", md(&self.run), md(&self.baseline));
        let regs: Vec<_> = self.regressions().collect();
        s.push_str(&format!(
            "{} new failure(s), {} fixed, {} perf regression(s) of {} measurements\n\n",
            self.new_failures.len(),
            self.fixed.len(),
            regs.len(),
            self.perf.len()
        ));
        if !self.new_failures.is_empty() {
            s.push_str("### New failures\n\n");
            for c in &self.new_failures {
                if let Outcome::Fail { reason } = &c.outcome {
                    s.push_str(&format!(
                        "- **{}** on {} ({}): {}\n",
                        md(&c.program),
                        md(&c.capture),
                        md(&c.check),
                        md(reason)
                    ));
                }
            }
            s.push('\n');
        }
        if !regs.is_empty() {
            s.push_str("### Performance regressions\n\n");
            for (p, r) in &regs {
                s.push_str(&format!(
                    "- **{}** on {}: {:+.1}% (threshold {}%, noise allowance {:.1}%)\n",
                    md(&p.program),
                    md(&p.capture),
                    r.change_pct,
                    r.threshold_pct,
                    r.noise_pct
                ));
            }
            s.push('\n');
        }
        if !self.fixed.is_empty() {
            s.push_str("### Fixed\n\n");
            for c in &self.fixed {
                s.push_str(&format!(
                    "- {} on {} ({})\n",
                    md(&c.program),
                    md(&c.capture),
                    md(&c.check)
                ));
            }
            s.push('\n');
        }
        if !self.perf.is_empty() {
            s.push_str("| program | capture | ns/packet | normalised change | noise allowance | verdict |\n|---|---|---|---|---|---|\n");
            for (p, r) in &self.perf {
                s.push_str(&format!(
                    "| {} | {} | {:.1} | {:+.1}% | {:.1}% | {} |\n",
                    md(&p.program),
                    md(&p.capture),
                    p.median_ns,
                    r.change_pct,
                    r.noise_pct,
                    if r.regressed { "**regressed**" } else { "ok" }
                ));
            }
        }
        s
    }
}
