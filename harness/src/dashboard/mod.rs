//! `xdpqual dashboard`: one self-contained HTML page from the history (no
//! server, no external asset: CSS, SVG charts and a few lines of script are
//! inline). Everything that came from a program, a file or a message is
//! escaped with [`html`].

pub mod chart;

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::history::compare::{compare, DEFAULT_THRESHOLD_PCT};
use crate::history::{History, HistoryError};
use crate::report::perf::{is_regression_gate, PerfSample};
use crate::report::{Check, OffloadResult, Outcome, Report};

/// Text and attribute-safe HTML (the one definition is in util::escape).
pub use crate::util::escape::html;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse} th,td{border:1px solid #bbb;padding:3px 7px;text-align:left}
th{background:#f2f2f2} td.ok{background:#2e9d4a;color:#fff} td.fail{background:#d0342c;color:#fff}
td.skip{background:#c9c9c9} td.none{background:#fff}
td.ok a,td.fail a{color:#fff}
table.grid td{min-width:9em;vertical-align:top}
table.grid td span{display:block} table.grid .exp,table.grid .est{font-size:12px}
td.offloadable{background:#d7f0dc} td.fallback{background:#fbe8b8} td.notoffloadable{background:#ececec}
td.offloadable .state{color:#1d6b33;font-weight:600} td.fallback .state{color:#8a5a00;font-weight:600} td.notoffloadable .state{color:#555;font-weight:600}
td.unexpected{outline:3px solid #d0342c;outline-offset:-3px} td.unexpected .exp{color:#b0221b;font-weight:700}
td.expected .exp{color:#444}
.charts{display:flex;flex-wrap:wrap;gap:14px} figure{margin:0;border:1px solid #ddd;padding:6px}
figcaption{font-size:12px;max-width:940px;overflow-wrap:anywhere}
pre{background:#f7f7f7;padding:6px;white-space:pre-wrap} .muted{color:#777}
svg .line{fill:none;stroke:#2864b4;stroke-width:2} svg .pt{fill:#2864b4} svg .regression{fill:#d0342c;stroke:#000}
svg .refline{fill:none;stroke:#999;stroke-width:1.5;stroke-dasharray:2 3} svg .ref{fill:#999}
svg .faint{fill:none;stroke:#c4cedb;stroke-width:1}
svg .axis{stroke:#444} svg .grid{stroke:#ddd} svg text{font-size:11px;fill:#333} svg .base{stroke:#888;stroke-dasharray:4 3}
svg .note{font-size:10px;fill:#2864b4} svg .tick-commit{font-family:ui-monospace,monospace;fill:#555}
";

/// Counts what the browser actually laid out into `body[data-rendered]`,
/// where a headless test reads it: the overview chart, the other charts
/// (each with a non-empty box), their points, coloured matrix cells and
/// coloured offload cells; `#only=ID` shows one section (screenshots).
const SCRIPT: &str = "
(function(){
  var m=/only=([a-z]+)/.exec(location.hash);
  if(m){document.querySelectorAll('section').forEach(function(s){if(s.id!==m[1])s.style.display='none';});}
  function laid(s){var b=s.getBBox();return b.width>0&&b.height>0;}
  function coloured(td){var c=getComputedStyle(td).backgroundColor;return c&&c!=='rgba(0, 0, 0, 0)'&&c!=='transparent';}
  var overview=0,charts=0,points=0,cells=0,grid=0;
  document.querySelectorAll('svg.chart').forEach(function(s){if(laid(s)){if(s.classList.contains('overview'))overview++;else charts++;}});
  points=document.querySelectorAll('#trends svg.chart circle').length;
  document.querySelectorAll('#matrix td.ok,#matrix td.fail,#matrix td.skip').forEach(function(td){if(coloured(td))cells++;});
  document.querySelectorAll('#offload td.offloadable,#offload td.fallback,#offload td.notoffloadable').forEach(function(td){if(coloured(td))grid++;});
  document.body.setAttribute('data-rendered','overview='+overview+';charts='+charts+';points='+points+';matrix='+cells+';offload='+grid);
})();
";

fn status_rank(o: &Outcome) -> u8 {
    match o {
        Outcome::Fail { .. } => 3,
        Outcome::Pass { .. } => 2,
        Outcome::Skipped { .. } => 1,
    }
}

fn column_title(cell: &str, r: &Report) -> String {
    let arch = &r.run.arch;
    match cell {
        "vm" => format!("engine ({arch})"),
        "rbpf" => format!("rbpf ({arch})"),
        "host" => format!("kernel {} ({arch})", r.run.kernel.as_deref().unwrap_or("unavailable")),
        c => c
            .strip_prefix("offload:")
            .map(|p| format!("offload {p}"))
            .unwrap_or_else(|| c.to_string()),
    }
}

fn matrix(r: &Report, out: &mut String) {
    let mut programs: Vec<&str> = Vec::new();
    let mut cells: Vec<&str> = Vec::new();
    // Offload profiles have their own grid, which says what the verdict
    // is; here a green "pass" for a program that is not offloadable (as
    // configured) read as the opposite.
    for c in r.checks.iter().filter(|c| !c.cell.starts_with("offload:")) {
        if !programs.contains(&c.program.as_str()) {
            programs.push(&c.program);
        }
        if !cells.contains(&c.cell.as_str()) {
            cells.push(&c.cell);
        }
    }
    if programs.is_empty() {
        out.push_str(
            "<p>No check outside the offload profiles in the latest run.</p>
",
        );
        return;
    }
    let _ = write!(out, "<table><tr><th>program</th>");
    for c in &cells {
        let _ = write!(out, "<th>{}</th>", html(&column_title(c, r)));
    }
    out.push_str("</tr>\n");
    for p in &programs {
        let _ = write!(out, "<tr><th>{}</th>", html(p));
        for cell in &cells {
            let here: Vec<&Check> =
                r.checks.iter().filter(|c| c.program == *p && c.cell == *cell).collect();
            let Some(worst) = here.iter().max_by_key(|c| status_rank(&c.outcome)) else {
                out.push_str("<td class=\"none\"></td>");
                continue;
            };
            let (class, text) = match worst.outcome {
                Outcome::Fail { .. } => ("fail", "fail"),
                Outcome::Pass { .. } => ("ok", "pass"),
                Outcome::Skipped { .. } => ("skip", "skip"),
            };
            let title = here.iter().map(|c| c.line()).collect::<Vec<_>>().join("\n");
            let body = if class == "fail" {
                format!("<a href=\"#unit-{}\">{text}</a>", worst.unit)
            } else {
                text.to_string()
            };
            let _ = write!(out, "<td class=\"{class}\" title=\"{}\">{body}</td>", html(&title));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn diffs(r: &Report, previous: Option<&Report>, out: &mut String) {
    let failures: Vec<&Check> = r.failures().collect();
    if failures.is_empty() {
        out.push_str("<p>No failing check in the latest run.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for c in &failures {
            if let Outcome::Fail { reason } = &c.outcome {
                let n = r.packets.iter().filter(|p| p.unit == c.unit).count();
                let link = if n > 0 {
                    format!(" <a href=\"#unit-{}\">{n} packet(s)</a>", c.unit)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "<li><b>{}</b> on {} ({}, {}): {}{link}</li>",
                    html(&c.program),
                    html(&c.capture),
                    html(&c.cell),
                    html(&c.check),
                    html(reason)
                );
            }
        }
        out.push_str("</ul>\n");
    }
    if let Some(prev) = previous {
        let cmp = compare(r, prev, DEFAULT_THRESHOLD_PCT);
        let _ = writeln!(
            out,
            "<p>Since run {}: {} new failure(s), {} fixed.</p>",
            html(&prev.run.id),
            cmp.new_failures.len(),
            cmp.fixed.len()
        );
    }
    let mut units: Vec<usize> = r.packets.iter().map(|p| p.unit).collect();
    units.dedup();
    for u in units {
        let here: Vec<_> = r.packets.iter().filter(|p| p.unit == u).collect();
        let first = here[0];
        let _ = writeln!(
            out,
            "<details id=\"unit-{u}\" open><summary>{} on {} ({}): per-packet details</summary>",
            html(&first.program),
            html(&first.capture),
            html(&first.cell)
        );
        for p in here {
            let _ = writeln!(
                out,
                "<p id=\"unit-{u}-pkt-{}\">packet {}</p><pre>{}</pre>",
                p.index,
                p.index,
                html(&p.detail)
            );
        }
        out.push_str("</details>\n");
    }
    // Failing units without packet details still get an anchor target.
    for c in &failures {
        if !r.packets.iter().any(|p| p.unit == c.unit)
            && !out.contains(&format!("id=\"unit-{}\"", c.unit))
        {
            let _ = writeln!(out, "<div id=\"unit-{}\"></div>", c.unit);
        }
    }
}

/// (program, capture, backend).
type SeriesKey = (String, String, String);

/// The gate's verdict on one perf sample: the regression gate's check in
/// the unit that measured it (qualify judges it with
/// `report::perf::judge_regression` against the baseline it was given), or
/// `None` when the program has no regression budget: then there is no gate
/// and no mark. The dashboard does not judge again: a second judgement,
/// against another run or another threshold, is how a red point once sat
/// on a run whose gate had passed.
fn gate<'a>(r: &'a Report, s: &PerfSample) -> Option<&'a Check> {
    r.checks.iter().find(|c| {
        c.unit == s.unit
            && c.program == s.program
            && c.capture == s.capture
            && is_regression_gate(&c.check)
    })
}

fn gate_failed(r: &Report, s: &PerfSample) -> bool {
    gate(r, s).is_some_and(|c| c.failed())
}

/// `YYYY-MM-DD HH:MM` UTC, from the one calendar conversion
/// (`bench::utc_stamp`'s `YYYYMMDDTHHMMSSZ`).
pub fn utc_minute(secs: u64) -> String {
    let t = crate::bench::utc_stamp(secs);
    format!("{}-{}-{} {}:{}", &t[0..4], &t[4..6], &t[6..8], &t[9..11], &t[11..13])
}

/// The first 7 characters of a commit id (git's short form).
pub fn short_commit(commit: Option<&str>) -> String {
    match commit {
        Some(c) if !c.is_empty() => c.chars().take(7).collect(),
        _ => "no commit".into(),
    }
}

fn ticks(reports: &[Report]) -> Vec<chart::Tick> {
    reports
        .iter()
        .map(|r| chart::Tick {
            date: utc_minute(r.run.created_unix),
            commit: short_commit(r.run.commit.as_deref()),
        })
        .collect()
}

fn series(reports: &[Report]) -> BTreeMap<SeriesKey, Vec<(usize, &PerfSample)>> {
    let mut series: BTreeMap<SeriesKey, Vec<(usize, &PerfSample)>> = BTreeMap::new();
    for (i, r) in reports.iter().enumerate() {
        for s in &r.perf {
            series
                .entry((s.program.clone(), s.capture.clone(), s.backend.clone()))
                .or_default()
                .push((i, s));
        }
    }
    series
}

/// The whole corpus in one chart: each series' normalised cost (its ratio
/// to the reference workload) divided by the same series' in the baseline
/// run, or in its first run when the baseline did not measure it; the bold
/// line is the geometric mean over the series each run measured. Red marks
/// are runs where the regression gate failed for at least one series.
fn overview(
    reports: &[Report],
    baseline: Option<&Report>,
    ticks: &[chart::Tick],
    out: &mut String,
) {
    let all = series(reports);
    if all.is_empty() {
        out.push_str("<p>No performance measurements in the history (add a <code>[perf]</code> table to xdpqual.toml).</p>\n");
        return;
    }
    let mut faint = Vec::new();
    // Per run: sum of ln(relative cost), count.
    let mut logs = vec![(0.0f64, 0usize); reports.len()];
    for ((program, capture, backend), pts) in &all {
        let base = baseline
            .and_then(|b| {
                b.perf.iter().find(|s| {
                    s.program == *program && s.capture == *capture && s.backend == *backend
                })
            })
            .unwrap_or(pts[0].1);
        if base.ratio <= 0.0 {
            continue;
        }
        let mut points = Vec::new();
        for (i, s) in pts {
            let rel = s.ratio / base.ratio;
            if rel > 0.0 && rel.is_finite() {
                logs[*i].0 += rel.ln();
                logs[*i].1 += 1;
                points.push(chart::Point {
                    x: *i,
                    y: rel,
                    label: String::new(),
                    note: None,
                    regressed: false,
                });
            }
        }
        faint.push(chart::Line {
            style: chart::Style::Faint,
            title: format!("{program} on {capture} ({backend})"),
            points,
        });
    }
    let mean: Vec<chart::Point> = logs
        .iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(i, (sum, n))| {
            let r = &reports[i];
            let regressed: Vec<String> = r
                .perf
                .iter()
                .filter(|s| gate_failed(r, s))
                .map(|s| format!("{} on {}", s.program, s.capture))
                .collect();
            let g = (sum / *n as f64).exp();
            chart::Point {
                x: i,
                y: g,
                label: format!(
                    "{} {} ({}): geometric mean {:.3} x baseline over {n} series{}",
                    ticks[i].date,
                    ticks[i].commit,
                    r.run.id,
                    g,
                    if regressed.is_empty() {
                        String::new()
                    } else {
                        format!("; regression gate failed for {}", regressed.join(", "))
                    }
                ),
                note: Some(format!("{g:.3}")),
                regressed: !regressed.is_empty(),
            }
        })
        .collect();
    let mut lines = faint;
    lines.push(chart::Line {
        style: chart::Style::Main,
        title: "geometric mean".into(),
        points: mean,
    });
    let chart = chart::Chart {
        width: 960.0,
        height: 300.0,
        ticks,
        y_label: "cost × baseline",
        baseline: Some(1.0),
        lines,
        class: "overview",
    };
    out.push_str("<figure>");
    out.push_str(&chart.render());
    let _ = writeln!(
        out,
        "<figcaption>All {} series (program × capture × backend): cost relative to the baseline run{} (1.0, dashed), normalised by the reference workload timed in the same run. Bold: geometric mean; grey: each series (hover for its name).</figcaption></figure>",
        all.len(),
        baseline.map(|b| format!(" {}", html(&b.run.id))).unwrap_or_else(|| " (none set: each series' first run)".into())
    );
}

fn trends(
    reports: &[Report],
    baseline: Option<&Report>,
    ticks: &[chart::Tick],
    out: &mut String,
) -> usize {
    let all = series(reports);
    if all.is_empty() {
        out.push_str("<p>No performance measurements in the history.</p>\n");
        return 0;
    }
    // Values are written beside the points while they have room.
    let notes_all = ticks.len() <= 4;
    out.push_str("<div class=\"charts\">\n");
    for ((program, capture, backend), pts) in &all {
        let base = baseline.and_then(|b| {
            b.perf
                .iter()
                .find(|s| s.program == *program && s.capture == *capture && s.backend == *backend)
        });
        let last = pts.last().map(|(i, _)| *i);
        let main: Vec<chart::Point> = pts
            .iter()
            .map(|(i, s)| {
                let r = &reports[*i];
                let g = gate(r, s);
                chart::Point {
                    x: *i,
                    y: s.median_ns,
                    label: format!(
                        "{} {} (run {}): {} ns/packet, reference workload {} ns/packet (ratio {:.3}, noise {:.1}%, {} rounds){}",
                        ticks[*i].date,
                        ticks[*i].commit,
                        r.run.id,
                        chart::num(s.median_ns),
                        chart::num(s.ref_median_ns),
                        s.ratio,
                        s.noise * 100.0,
                        s.rounds,
                        g.map(|c| format!("\n{}", c.line())).unwrap_or_else(|| "\nno regression gate for this program".into())
                    ),
                    note: (notes_all || Some(*i) == last).then(|| {
                        format!("{} ns (ref {})", chart::num(s.median_ns), chart::num(s.ref_median_ns))
                    }),
                    regressed: g.is_some_and(|c| c.failed()),
                }
            })
            .collect();
        let reference: Vec<chart::Point> = pts
            .iter()
            .map(|(i, s)| chart::Point {
                x: *i,
                y: s.ref_median_ns,
                label: format!(
                    "{} {}: reference workload {} ns/packet",
                    ticks[*i].date,
                    ticks[*i].commit,
                    chart::num(s.ref_median_ns)
                ),
                note: None,
                regressed: false,
            })
            .collect();
        let chart = chart::Chart {
            width: 560.0,
            height: 220.0,
            ticks,
            y_label: "ns/packet",
            // The baseline's cost scaled to this run's reference would be
            // a second model; the dashed line is the baseline's own ns.
            baseline: base.map(|b| b.median_ns),
            lines: vec![
                chart::Line {
                    style: chart::Style::Reference,
                    title: "reference workload".into(),
                    points: reference,
                },
                chart::Line {
                    style: chart::Style::Main,
                    title: format!("{program} on {capture}"),
                    points: main,
                },
            ],
            class: "",
        };
        out.push_str("<figure>");
        out.push_str(&chart.render());
        let _ = writeln!(
            out,
            "<figcaption>{} on {} ({})</figcaption></figure>",
            html(program),
            html(capture),
            html(backend)
        );
    }
    out.push_str("</div>\n");
    all.len()
}

/// What the run's offload check for `o` expected, from its verdict: the
/// check passes when the program loads on the profile exactly when the
/// configuration expects it to. `None` when the run has no such check.
fn offload_expected(r: &Report, o: &OffloadResult) -> Option<bool> {
    let cell = format!("offload:{}", o.profile);
    let c =
        r.checks.iter().find(|c| c.unit == o.unit && c.program == o.program && c.cell == cell)?;
    match c.outcome {
        Outcome::Pass { .. } => Some(o.verdict().loads()),
        Outcome::Fail { .. } => Some(!o.verdict().loads()),
        Outcome::Skipped { .. } => None,
    }
}

fn offload(r: &Report, out: &mut String) -> usize {
    if r.offload.is_empty() {
        out.push_str("<p>No offload profile in the latest run.</p>\n");
        return 0;
    }
    let mut programs: Vec<&str> = Vec::new();
    let mut profiles: Vec<&str> = Vec::new();
    for o in &r.offload {
        if !programs.contains(&o.program.as_str()) {
            programs.push(&o.program);
        }
        if !profiles.contains(&o.profile.as_str()) {
            profiles.push(&o.profile);
        }
    }
    out.push_str("<table class=\"grid\"><tr><th>program</th>");
    for p in &profiles {
        let _ = write!(out, "<th>{}</th>", html(p));
    }
    out.push_str("</tr>\n");
    let mut cells = 0;
    for prog in &programs {
        let _ = write!(out, "<tr><th>{}</th>", html(prog));
        for prof in &profiles {
            let Some(o) = r.offload.iter().find(|o| o.program == *prog && o.profile == *prof)
            else {
                out.push_str("<td class=\"none\"></td>");
                continue;
            };
            cells += 1;
            let v = o.verdict();
            let state = match v {
                nic_model::Offloadability::Offloadable => "offloadable",
                nic_model::Offloadability::OffloadableWithFallback => "fallback",
                nic_model::Offloadability::NotOffloadable => "notoffloadable",
            };
            let (exp_class, exp_text) = match offload_expected(r, o) {
                Some(e) if e == v.loads() => ("expected", "as expected".to_string()),
                Some(e) => (
                    "unexpected",
                    format!(
                        "UNEXPECTED: expected {}",
                        if e { "offloadable" } else { "not offloadable" }
                    ),
                ),
                None => ("unknown", "no expectation".to_string()),
            };
            let est = match (o.est_mpps, o.est_bound.as_deref()) {
                (Some(m), Some(b)) => {
                    format!("<span class=\"est\">≤ {} Mpps ({})</span>", chart::num(m), html(b))
                }
                (Some(m), None) => format!("<span class=\"est\">≤ {} Mpps</span>", chart::num(m)),
                _ => String::new(),
            };
            let title = format!("{}\n{}", o.reason, o.est_basis);
            let _ = write!(
                out,
                "<td class=\"{state} {exp_class}\" title=\"{}\"><span class=\"state\">{}</span><span class=\"exp\">{}</span>{est}</td>",
                html(&title),
                html(v.label()),
                html(&exp_text),
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<p class=\"muted\">Each cell: the checker's verdict for the program on the profile (offloadable; offloadable with run-time fallback: it loads, but some path acts differently on the NIC; not offloadable), then whether xdpqual.toml expected it to load. Hover for the findings. Estimates assume every reachable instruction runs once per packet at one instruction per cycle on every core of the profile; each is capped by the profile's line rate where it has one, and the parenthesis says which bound applies; they rank programs, they do not predict a card.</p>\n");
    cells
}

/// The page for the whole history.
pub fn render(h: &History) -> Result<String, HistoryError> {
    let runs = h.runs()?;
    let reports: Vec<Report> = runs
        .iter()
        .map(|row| {
            let mut r = h.report(&row.id)?;
            // The runs table is the record of the commit (a report from
            // before schema 2 has none in either place).
            if r.run.commit.is_none() {
                r.run.commit = row.commit.clone();
            }
            Ok(r)
        })
        .collect::<Result<_, HistoryError>>()?;
    let baselines = h.baselines()?;
    let baseline = baselines
        .get(crate::history::DEFAULT_BASELINE)
        .and_then(|id| reports.iter().find(|r| &r.run.id == id));
    Ok(page(&reports, &baselines, baseline))
}

fn page(
    reports: &[Report],
    baselines: &BTreeMap<String, String>,
    baseline: Option<&Report>,
) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>xdpqual dashboard</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body>\n<h1>xdpqual dashboard</h1>\n");
    let Some(latest) = reports.last() else {
        out.push_str("<p>The history has no runs yet: run <code>xdpqual qualify</code>.</p>\n");
        out.push_str("<script>");
        out.push_str(SCRIPT);
        out.push_str("</script></body></html>\n");
        return out;
    };
    let ticks = ticks(reports);
    let (p, f, s) = latest.count();
    let t = ticks.last().expect("one tick per run");
    let _ = writeln!(
        out,
        "<p>{} run(s). Latest: <b>{}</b>, {} UTC, commit {}, on {} (kernel {}): {p} passed, {f} failed, {s} skipped.{}</p>",
        reports.len(),
        html(&latest.run.id),
        html(&t.date),
        html(&t.commit),
        html(&latest.run.arch),
        html(latest.run.kernel.as_deref().unwrap_or("unavailable")),
        baselines.iter().map(|(n, id)| format!(" Baseline {}: {}.", html(n), html(id))).collect::<String>()
    );
    out.push_str("<nav><a href=\"#overview\">overview</a> · <a href=\"#matrix\">matrix</a> · <a href=\"#diffs\">verdict diffs</a> · <a href=\"#offload\">offload</a> · <a href=\"#trends\">performance per program</a></nav>\n");
    out.push_str("<section id=\"overview\"><h2>Performance of the whole corpus</h2>\n");
    overview(reports, baseline, &ticks, &mut out);
    out.push_str("<p class=\"muted\">Red points: runs where the regression gate of xdpqual.toml (<code>max_regression_pct</code>, judged against the baseline that run was given) failed for at least one series; hover for which. Programs without that budget have no gate and are never marked.</p>\n");
    out.push_str("</section>\n<section id=\"matrix\"><h2>Compatibility matrix (latest run)</h2>\n<p class=\"muted\">Program × cell (kernel, engine, architecture). Hover a cell for its checks. Offload profiles are in the <a href=\"#offload\">offload grid</a>.</p>\n");
    matrix(latest, &mut out);
    out.push_str("</section>\n<section id=\"diffs\"><h2>Verdict diffs</h2>\n");
    diffs(latest, reports.len().checked_sub(2).map(|i| &reports[i]), &mut out);
    out.push_str("</section>\n<section id=\"offload\"><h2>Offload (latest run)</h2>\n");
    offload(latest, &mut out);
    out.push_str("</section>\n<section id=\"trends\"><h2>Performance per program</h2>\n");
    out.push_str("<p class=\"muted\">The engine's median cost per packet in ns (solid, lower is faster) and, dotted, the reference workload's, timed in the same run: when both move together the machine changed, not the program. The gate judges their ratio. Dashed: the baseline run's cost. Red points: the regression gate failed (hover for its verdict).</p>\n");
    trends(reports, baseline, &ticks, &mut out);
    out.push_str("</section>\n<script>");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{PacketDetail, RunInfo};

    #[test]
    fn program_derived_text_is_escaped_everywhere() {
        let mut r = Report::new();
        r.run = RunInfo { id: "1-x".into(), arch: "x86_64".into(), ..Default::default() };
        let evil = "<script>alert(1)</script>\"'&";
        r.checks.push(
            Check::new(evil, evil, evil, Outcome::Fail { reason: evil.into() }).in_unit(0, "vm"),
        );
        r.packets.push(PacketDetail {
            unit: 0,
            program: evil.into(),
            capture: evil.into(),
            cell: "vm".into(),
            index: 3,
            detail: evil.into(),
        });
        let mut out = String::new();
        matrix(&r, &mut out);
        diffs(&r, None, &mut out);
        assert!(!out.contains("<script>") && !out.contains("\"'&"), "{out}");
        assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        assert!(out.contains("href=\"#unit-0\"") && out.contains("id=\"unit-0\""));
    }

    fn sample(unit: usize, program: &str, ratio: f64) -> PerfSample {
        PerfSample {
            unit,
            program: program.into(),
            capture: "c.pcap".into(),
            backend: "vm".into(),
            rounds: 3,
            packets: 10,
            median_ns: ratio * 50.0,
            ref_median_ns: 50.0,
            ratio,
            noise: 0.0,
            insns_per_packet: 10.0,
        }
    }

    /// A run whose only perf sample is 3x slower than the run before it,
    /// and whose regression gate (against its baseline) says `gate`.
    fn run(id: &str, t: u64, commit: &str, ratio: f64, gate: Option<Outcome>) -> Report {
        let mut r = Report::new();
        r.run = RunInfo {
            id: id.into(),
            created_unix: t,
            arch: "x86_64".into(),
            commit: Some(commit.into()),
            ..Default::default()
        };
        r.perf.push(sample(0, "p.o", ratio));
        r.checks.push(
            Check::new("p.o", "c.pcap", "expected verdicts", Outcome::Pass { detail: "ok".into() })
                .in_unit(0, "vm"),
        );
        // The absolute budget failing is not a regression.
        r.checks.push(
            Check::new(
                "p.o",
                "c.pcap",
                "perf: at most 1 ns/packet",
                Outcome::Fail { reason: "over".into() },
            )
            .in_unit(0, "vm"),
        );
        if let Some(g) = gate {
            r.checks.push(
                Check::new(
                    "p.o",
                    "c.pcap",
                    &crate::report::perf::regression_gate_name(25.0, "default"),
                    g,
                )
                .in_unit(0, "vm"),
            );
        }
        r
    }

    #[test]
    fn regression_marks_are_the_gates_verdicts() {
        // 1.0 -> 3.0 -> 9.0: each run is 200% slower than the one before,
        // which a run-to-run judgement would mark twice. The gate passed
        // the second (its baseline was elsewhere) and failed the third.
        let reports = vec![
            run("1-a", 1_000_000_000, "aaaaaaa111", 1.0, None),
            run(
                "2-b",
                1_000_086_400,
                "bbbbbbb222",
                3.0,
                Some(Outcome::Pass { detail: "+1%".into() }),
            ),
            run(
                "3-c",
                1_000_172_800,
                "ccccccc333",
                9.0,
                Some(Outcome::Fail { reason: "+80%".into() }),
            ),
        ];
        let page = page(&reports, &BTreeMap::new(), None);
        let trends = &page[page.find("<section id=\"trends\"").unwrap()..];
        let overview = &page[page.find("<section id=\"overview\"").unwrap()
            ..page.find("<section id=\"matrix\"").unwrap()];
        for part in [trends, overview] {
            assert_eq!(part.matches("<circle class=\"regression\"").count(), 1, "{part}");
            assert_eq!(part.matches("<circle class=\"pt\"").count(), 2, "{part}");
            // The marked point is the third run's.
            let marked = part.split("<circle class=\"regression\"").nth(1).unwrap();
            assert!(marked.split("</circle>").next().unwrap().contains("3-c"), "{marked}");
        }
        // Without a gate (run 1) the tooltip says so.
        assert!(trends.contains("no regression gate for this program"));
        // x axis: the runs' dates (1_000_000_000 is 2001-09-09 01:46:40
        // UTC) and short commits.
        for t in [">2001-09-09 01:46<", ">2001-09-10 01:46<", ">aaaaaaa<", ">ccccccc<"] {
            assert!(trends.contains(t) && overview.contains(t), "{t}");
        }
        assert!(!page.contains("aaaaaaa1"), "commits are shortened to 7");
        // The y axis is ns/packet and the reference's time is beside the value.
        assert!(trends.contains(">ns/packet<") && trends.contains("450 ns (ref 50.0)"), "{trends}");
    }

    #[test]
    fn offload_grid_says_the_state_and_whether_it_was_expected() {
        use nic_model::Offloadability as O;
        let mut r = Report::new();
        let evil = "<b>x</b>";
        let rows = [
            (0, "a.o", "nfp", O::Offloadable, Outcome::Pass { detail: String::new() }),
            (1, "a.o", evil, O::NotOffloadable, Outcome::Fail { reason: String::new() }),
            (2, evil, "nfp", O::NotOffloadable, Outcome::Pass { detail: String::new() }),
            (3, evil, evil, O::OffloadableWithFallback, Outcome::Pass { detail: String::new() }),
        ];
        for (unit, prog, prof, state, outcome) in rows {
            r.offload.push(OffloadResult {
                unit,
                program: prog.into(),
                profile: prof.into(),
                compatible: state.loads(),
                state: Some(state),
                reason: evil.into(),
                est_mpps: state.loads().then_some(12.5),
                est_basis: evil.into(),
                est_bound: state.loads().then(|| "compute".into()),
            });
            r.checks.push(
                Check::new(prog, "-", "offload", outcome).in_unit(unit, &format!("offload:{prof}")),
            );
        }
        let mut out = String::new();
        assert_eq!(offload(&r, &mut out), 4);
        assert!(!out.contains("<b>") && out.contains("&lt;b&gt;x&lt;/b&gt;"), "{out}");
        // 2 programs x 2 profiles, one row per program.
        assert_eq!(out.matches("<tr>").count(), 3, "{out}");
        let cells: Vec<&str> = out.split("<td ").skip(1).collect();
        assert!(
            cells[0].starts_with("class=\"offloadable expected\"")
                && cells[0].contains(">offloadable<")
                && cells[0].contains(">as expected<")
                && cells[0].contains("12.5 Mpps (compute)"),
            "{}",
            cells[0]
        );
        // Fail: the program does not load, so the configuration expected it to.
        assert!(
            cells[1].starts_with("class=\"notoffloadable unexpected\"")
                && cells[1].contains(">not offloadable<")
                && cells[1].contains("UNEXPECTED: expected offloadable")
                && !cells[1].contains("Mpps"),
            "{}",
            cells[1]
        );
        assert!(
            cells[2].contains(">not offloadable<") && cells[2].contains(">as expected<"),
            "{}",
            cells[2]
        );
        assert!(
            cells[3].contains(">offloadable with run-time fallback<")
                && cells[3].contains(">as expected<"),
            "{}",
            cells[3]
        );
        // No "pass" anywhere in the grid: it says what it means.
        assert!(!out.contains(">pass<"));
    }

    #[test]
    fn offload_checks_stay_out_of_the_matrix() {
        let mut r = Report::new();
        r.checks.push(
            Check::new("p.o", "c", "replay", Outcome::Pass { detail: String::new() })
                .in_unit(0, "vm"),
        );
        r.checks.push(
            Check::new("p.o", "-", "offload", Outcome::Pass { detail: String::new() })
                .in_unit(1, "offload:nfp"),
        );
        let mut out = String::new();
        matrix(&r, &mut out);
        assert!(out.contains("<th>engine (") && !out.contains("offload"), "{out}");
    }
}
