//! Inline SVG line charts over the runs of the history: one x position per
//! run, labelled with the run's date and commit; lines of values on a y axis
//! with a unit; points with a tooltip, regressions (the gate's verdict)
//! marked, an optional dashed baseline.

use std::fmt::Write;

use super::html;

/// One run on the x axis.
pub struct Tick {
    /// `YYYY-MM-DD HH:MM` (UTC).
    pub date: String,
    /// The short commit, or a dash when the run recorded none.
    pub commit: String,
}

pub struct Point {
    /// Run position in the history (0-based): the index into the ticks.
    pub x: usize,
    pub y: f64,
    /// The tooltip.
    pub label: String,
    /// Text written beside the point (the value and the reference's).
    pub note: Option<String>,
    pub regressed: bool,
}

/// How a line is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The measured value: a solid line with a circle per point (red and
    /// larger where the gate found a regression).
    Main,
    /// The reference workload's time in the same run: dotted, small squares.
    Reference,
    /// One of many normalised series behind the overview's mean: thin, no marks.
    Faint,
}

pub struct Line {
    pub style: Style,
    /// The tooltip of the whole line (a faint line's series name).
    pub title: String,
    pub points: Vec<Point>,
}

pub struct Chart<'a> {
    pub width: f64,
    pub height: f64,
    pub ticks: &'a [Tick],
    /// The y axis' quantity and unit.
    pub y_label: &'a str,
    pub baseline: Option<f64>,
    pub lines: Vec<Line>,
    /// Extra class on the `<svg>` (`overview`).
    pub class: &'a str,
}

const LEFT: f64 = 62.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;
/// The least room a tick's labels need.
const TICK_ROOM: f64 = 112.0;

/// `v` with about three significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The runs that get a labelled tick: all when they fit, else an even
/// subset that always holds the first and the last.
fn tick_indices(runs: usize, plot_width: f64) -> Vec<usize> {
    let fit = ((plot_width / TICK_ROOM).floor() as usize).max(2);
    if runs <= fit {
        return (0..runs).collect();
    }
    let step = runs.div_ceil(fit - 1);
    let mut v: Vec<usize> = (0..runs).step_by(step).collect();
    if runs - 1 - v.last().copied().unwrap_or(0) < step / 2 + 1 {
        v.pop();
    }
    v.push(runs - 1);
    v
}

impl Chart<'_> {
    pub fn render(&self) -> String {
        let (w, h) = (self.width, self.height);
        let runs = self.ticks.len().max(1);
        let ymax = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.y))
            .chain(self.baseline)
            .filter(|y| y.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.18;
        let plot_w = w - LEFT - RIGHT;
        // One run sits in the middle; more spread from edge to edge.
        let sx = |x: usize| {
            if runs == 1 {
                LEFT + plot_w / 2.0
            } else {
                LEFT + x as f64 / (runs - 1) as f64 * plot_w
            }
        };
        let sy = |y: f64| TOP + (1.0 - y / ymax) * (h - TOP - BOTTOM);
        let mut s = format!("<svg class=\"chart {}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">", self.class);
        for k in 0..=4 {
            let y = ymax * k as f64 / 4.0;
            let _ = write!(s, "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", w - RIGHT, sy(y), sy(y), LEFT - 4.0, sy(y) + 4.0, num(y));
        }
        let _ = write!(
            s,
            "<text class=\"ylabel\" transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            (TOP + h - BOTTOM) / 2.0,
            html(self.y_label)
        );
        let _ = write!(
            s,
            "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{}\"/><line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>",
            h - BOTTOM,
            w - RIGHT,
            h - BOTTOM,
            h - BOTTOM
        );
        for i in tick_indices(self.ticks.len(), plot_w) {
            let t = &self.ticks[i];
            let x = sx(i);
            // The first and last labels stay inside the box.
            let anchor = if runs == 1 {
                "middle"
            } else if i == 0 {
                "start"
            } else if i == runs - 1 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                s,
                "<g class=\"tick\"><line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick-date\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text><text class=\"tick-commit\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text></g>",
                h - BOTTOM,
                h - BOTTOM + 4.0,
                h - BOTTOM + 16.0,
                html(&t.date),
                h - BOTTOM + 29.0,
                html(&t.commit)
            );
        }
        if let Some(b) = self.baseline {
            let _ = write!(s, "<line class=\"base\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"><title>baseline {}</title></line>", w - RIGHT, sy(b), sy(b), num(b));
        }
        // Faint lines first, so the measured ones stay on top.
        let mut order: Vec<&Line> = self.lines.iter().collect();
        order.sort_by_key(|l| match l.style {
            Style::Faint => 0,
            Style::Reference => 1,
            Style::Main => 2,
        });
        for l in order {
            let class = match l.style {
                Style::Main => "line",
                Style::Reference => "refline",
                Style::Faint => "faint",
            };
            if l.points.len() > 1 {
                let path: Vec<String> =
                    l.points.iter().map(|p| format!("{:.1},{:.1}", sx(p.x), sy(p.y))).collect();
                let _ = write!(
                    s,
                    "<polyline class=\"{class}\" points=\"{}\"><title>{}</title></polyline>",
                    path.join(" "),
                    html(&l.title)
                );
            }
            for p in &l.points {
                let (x, y) = (sx(p.x), sy(p.y));
                match l.style {
                    Style::Faint => {}
                    Style::Reference => {
                        let _ = write!(
                            s,
                            "<rect class=\"ref\" x=\"{:.1}\" y=\"{:.1}\" width=\"5\" height=\"5\"><title>{}</title></rect>",
                            x - 2.5,
                            y - 2.5,
                            html(&p.label)
                        );
                    }
                    Style::Main => {
                        let _ = write!(
                            s,
                            "<circle class=\"{}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{}\"><title>{}</title></circle>",
                            if p.regressed { "regression" } else { "pt" },
                            if p.regressed { 5 } else { 3 },
                            html(&format!(
                                "{}{}",
                                p.label,
                                if p.regressed { " — REGRESSION (the gate failed)" } else { "" }
                            ))
                        );
                    }
                }
                if let Some(note) = &p.note {
                    // Beside the edges the text runs inwards, clear of the y labels.
                    let anchor = match p.x {
                        _ if runs == 1 => "middle",
                        0 => "start",
                        x if x == runs - 1 => "end",
                        _ => "middle",
                    };
                    let _ = write!(
                        s,
                        "<text class=\"note\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                        (y - 8.0).max(TOP + 8.0),
                        html(note)
                    );
                }
            }
        }
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(n: usize) -> Vec<Tick> {
        (0..n)
            .map(|i| Tick { date: format!("2026-01-{:02} 10:00", i + 1), commit: format!("c{i}") })
            .collect()
    }

    fn pt(x: usize, y: f64, label: &str, regressed: bool) -> Point {
        Point { x, y, label: label.into(), note: None, regressed }
    }

    #[test]
    fn points_land_inside_the_plot_and_regressions_are_marked() {
        let t = ticks(2);
        let chart = Chart {
            width: 560.0,
            height: 220.0,
            ticks: &t,
            y_label: "ns/packet",
            baseline: Some(1.0),
            lines: vec![
                Line {
                    style: Style::Main,
                    title: "p".into(),
                    points: vec![pt(0, 1.0, "a", false), pt(1, 2.0, "<b>", true)],
                },
                Line {
                    style: Style::Reference,
                    title: "reference".into(),
                    points: vec![pt(0, 0.5, "r0", false), pt(1, 0.5, "r1", false)],
                },
            ],
            class: "",
        };
        let svg = chart.render();
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("<rect class=\"ref\"").count(), 2);
        assert_eq!(svg.matches("class=\"regression\"").count(), 1);
        assert!(svg.contains("&lt;b&gt; — REGRESSION") && !svg.contains("<b>"));
        // First point at the left edge of the plot, second at the right.
        assert!(
            svg.contains(&format!("cx=\"{LEFT:.1}\""))
                && svg.contains(&format!("cx=\"{:.1}\"", 560.0 - RIGHT))
        );
        // Both runs are labelled with their date and commit.
        for needle in [">2026-01-01 10:00<", ">c0<", ">2026-01-02 10:00<", ">c1<", ">ns/packet<"] {
            assert!(svg.contains(needle), "{needle} in {svg}");
        }
    }

    #[test]
    fn many_runs_get_a_readable_subset_of_ticks_with_both_ends() {
        let plot = 560.0 - LEFT - RIGHT;
        assert_eq!(tick_indices(3, plot), vec![0, 1, 2]);
        for n in [5usize, 9, 40, 41, 200] {
            let v = tick_indices(n, plot);
            assert_eq!((v[0], *v.last().unwrap()), (0, n - 1), "{n}: {v:?}");
            assert!(v.len() as f64 <= (plot / TICK_ROOM).floor().max(2.0) + 1.0, "{n}: {v:?}");
            assert!(v.windows(2).all(|w| w[0] < w[1]), "{n}: {v:?}");
        }
    }
}
