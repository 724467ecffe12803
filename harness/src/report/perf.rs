//! A performance sample as a report and the history store it, and the rule
//! that judges one sample against its baseline. How samples are measured
//! is `qualify::perf`.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PerfSample {
    /// The plan unit that measured it.
    #[serde(default)]
    pub unit: usize,
    pub program: String,
    pub capture: String,
    pub backend: String,
    pub rounds: u32,
    pub packets: u64,
    /// Median over rounds of the program's ns per packet.
    pub median_ns: f64,
    /// Median over rounds of the reference workload's ns per packet.
    pub ref_median_ns: f64,
    /// Median over rounds of (program ns / reference ns) in that round.
    pub ratio: f64,
    /// Relative spread of the per-round ratios: 1.4826 x MAD / median, an
    /// estimate of one standard deviation that outliers do not inflate.
    pub noise: f64,
    /// Instructions the engine executed per packet, on average.
    pub insns_per_packet: f64,
}

/// A comparison of one sample against its baseline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Regression {
    /// Change of the normalised cost, in percent (positive is slower).
    pub change_pct: f64,
    /// The change noise alone could explain, in percent.
    pub noise_pct: f64,
    pub threshold_pct: f64,
    pub regressed: bool,
}

/// The threshold rule: a sample regressed against its baseline when its
/// normalised cost (`ratio`) grew by more than `threshold_pct` percent AND
/// by more than three combined noise deviations,
/// `300 * sqrt(noise_now^2 + noise_base^2)` percent. The first clause is
/// the user's budget; the second keeps a noisy measurement from failing
/// the gate on jitter alone.
pub fn judge_regression(now: &PerfSample, base: &PerfSample, threshold_pct: f64) -> Regression {
    let change_pct = if base.ratio > 0.0 { (now.ratio / base.ratio - 1.0) * 100.0 } else { 0.0 };
    let noise_pct = 300.0 * (now.noise * now.noise + base.noise * base.noise).sqrt();
    Regression {
        change_pct,
        noise_pct,
        threshold_pct,
        regressed: change_pct > threshold_pct && change_pct > noise_pct,
    }
}

/// The name of the regression gate's check (`qualify` writes it, the
/// dashboard finds the gate's verdict by it): one definition for both.
pub fn regression_gate_name(max_pct: f64, baseline: &str) -> String {
    format!("perf: at most {max_pct}% slower than baseline '{baseline}'")
}

/// Whether a check is the regression gate (see [`regression_gate_name`]).
pub fn is_regression_gate(check: &str) -> bool {
    check.starts_with("perf: at most ") && check.contains("% slower than baseline '")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ratio: f64, noise: f64) -> PerfSample {
        PerfSample {
            unit: 0,
            program: "p".into(),
            capture: "c".into(),
            backend: "vm".into(),
            rounds: 5,
            packets: 1,
            median_ns: 0.0,
            ref_median_ns: 0.0,
            ratio,
            noise,
            insns_per_packet: 0.0,
        }
    }

    #[test]
    fn regression_needs_both_threshold_and_noise() {
        // 20% slower, quiet measurements: regressed at a 10% threshold.
        let r = judge_regression(&s(1.2, 0.01), &s(1.0, 0.01), 10.0);
        assert!((r.change_pct - 20.0).abs() < 1e-9 && r.regressed, "{r:?}");
        // Same change under a 25% threshold: not regressed.
        assert!(!judge_regression(&s(1.2, 0.01), &s(1.0, 0.01), 25.0).regressed);
        // 20% slower but each side has 10% noise: 3 x 14.1% = 42% covers it.
        let r = judge_regression(&s(1.2, 0.1), &s(1.0, 0.1), 10.0);
        assert!(!r.regressed && (r.noise_pct - 300.0 * 0.02f64.sqrt()).abs() < 1e-9, "{r:?}");
        // Faster is never a regression.
        assert!(!judge_regression(&s(0.5, 0.0), &s(1.0, 0.0), 0.0).regressed);
    }

    #[test]
    fn the_gate_name_is_recognised_and_the_ns_budget_is_not() {
        assert!(is_regression_gate(&regression_gate_name(25.0, "default")));
        assert!(is_regression_gate(&regression_gate_name(2.5, "odd 'name'")));
        assert!(!is_regression_gate("perf: at most 400 ns/packet"));
    }
}
