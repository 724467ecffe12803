//! Order statistics over repeated rounds.

use serde::Serialize;

/// Median and spread of per-round figures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub rounds: usize,
}

/// Nearest-rank percentile `q` (0..=1) of sorted samples: the smallest
/// sample with at least `q` of the samples at or below it.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = (q * n as f64).ceil().max(1.0) as usize;
    sorted[rank.min(n) - 1]
}

impl Spread {
    /// `None` for no samples. The median of an even count is the mean of
    /// the middle two.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
        Some(Spread { median, p10: nearest_rank(&s, 0.10), p90: nearest_rank(&s, 0.90), rounds: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten samples 1..=10: median 5.5; nearest rank p10 = 1st, p90 = 9th.
    #[test]
    fn ten_samples() {
        let s: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(Spread::of(&s), Some(Spread { median: 5.5, p10: 1.0, p90: 9.0, rounds: 10 }));
    }

    #[test]
    fn one_and_none() {
        assert_eq!(Spread::of(&[4.0]), Some(Spread { median: 4.0, p10: 4.0, p90: 4.0, rounds: 1 }));
        assert_eq!(Spread::of(&[]), None);
    }
}
