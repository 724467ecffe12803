//! Inline SVG line charts: runs on x, one value on y, points with a
//! tooltip, regressions marked, an optional dashed baseline.

use std::fmt::Write;

use super::html;

pub struct Point {
    /// Run position in the history (0-based).
    pub x: f64,
    pub y: f64,
    pub label: String,
    pub regressed: bool,
}

const W: f64 = 560.0;
const H: f64 = 200.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

/// `runs` is the number of runs in the history: the x axis spans all of
/// them, so charts of one page line up.
pub fn line_chart(points: &[Point], baseline: Option<f64>, y_label: &str, runs: usize) -> String {
    let ymax = points.iter().map(|p| p.y).chain(baseline).fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let xmax = (runs.max(2) - 1) as f64;
    let sx = |x: f64| LEFT + x / xmax * (W - LEFT - RIGHT);
    let sy = |y: f64| TOP + (1.0 - y / ymax) * (H - TOP - BOTTOM);
    let mut s = format!("<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">");
    for k in 0..=4 {
        let y = ymax * k as f64 / 4.0;
        let _ = write!(s, "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{y:.2}</text>", W - RIGHT, sy(y), sy(y), LEFT - 4.0, sy(y) + 4.0);
    }
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{}\"/>",
        H - BOTTOM
    );
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>",
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">run 1 … {runs}  ({})</text>",
        (LEFT + W - RIGHT) / 2.0,
        H - 6.0,
        html(y_label)
    );
    if let Some(b) = baseline {
        let _ = write!(s, "<line class=\"base\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"><title>baseline {b:.3}</title></line>", W - RIGHT, sy(b), sy(b));
    }
    if points.len() > 1 {
        let path: Vec<String> =
            points.iter().map(|p| format!("{:.1},{:.1}", sx(p.x), sy(p.y))).collect();
        let _ = write!(s, "<polyline class=\"line\" points=\"{}\"/>", path.join(" "));
    }
    for p in points {
        let _ = write!(
            s,
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\"><title>{}</title></circle>",
            if p.regressed { "regression" } else { "pt" },
            sx(p.x),
            sy(p.y),
            if p.regressed { 5 } else { 3 },
            html(&format!("{}{}", p.label, if p.regressed { " — REGRESSION" } else { "" }))
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_land_inside_the_plot_and_regressions_are_marked() {
        let pts = vec![
            Point { x: 0.0, y: 1.0, label: "a".into(), regressed: false },
            Point { x: 1.0, y: 2.0, label: "<b>".into(), regressed: true },
        ];
        let svg = line_chart(&pts, Some(1.0), "ratio", 2);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("class=\"regression\"").count(), 1);
        assert!(svg.contains("&lt;b&gt; — REGRESSION") && !svg.contains("<b>"));
        // First point at the left edge of the plot, second at the right.
        assert!(
            svg.contains(&format!("cx=\"{LEFT:.1}\""))
                && svg.contains(&format!("cx=\"{:.1}\"", W - RIGHT))
        );
    }
}
