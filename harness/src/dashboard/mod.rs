//! `xdpqual dashboard`: one self-contained HTML page from the history (no
//! server, no external asset: CSS, SVG charts and a few lines of script are
//! inline). Everything that came from a program, a file or a message is
//! escaped with [`html`].

pub mod chart;

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::history::compare::{compare, DEFAULT_THRESHOLD_PCT};
use crate::history::{History, HistoryError};
use crate::report::perf::{judge_regression, PerfSample};
use crate::report::{Check, Outcome, Report};

/// Text and attribute-safe HTML (the one definition is in util::escape).
pub use crate::util::escape::html;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse} th,td{border:1px solid #bbb;padding:3px 7px;text-align:left}
th{background:#f2f2f2} td.ok{background:#2e9d4a;color:#fff} td.fail{background:#d0342c;color:#fff}
td.skip{background:#c9c9c9} td.none{background:#fff}
td.ok a,td.fail a{color:#fff}
.charts{display:flex;flex-wrap:wrap;gap:14px} figure{margin:0;border:1px solid #ddd;padding:6px}
figcaption{font-size:12px;max-width:560px;overflow-wrap:anywhere}
pre{background:#f7f7f7;padding:6px;white-space:pre-wrap} .muted{color:#777}
svg .line{fill:none;stroke:#2864b4;stroke-width:2} svg .pt{fill:#2864b4} svg .regression{fill:#d0342c;stroke:#000}
svg .axis{stroke:#444} svg .grid{stroke:#ddd} svg text{font-size:11px;fill:#333} svg .base{stroke:#888;stroke-dasharray:4 3}
";

/// Counts what the browser actually laid out (charts with a non-empty
/// box, coloured matrix cells) into `body[data-rendered]`, where a
/// headless test reads it; `#only=ID` shows one section (screenshots).
const SCRIPT: &str = "
(function(){
  var m=/only=([a-z]+)/.exec(location.hash);
  if(m){document.querySelectorAll('section').forEach(function(s){if(s.id!==m[1])s.style.display='none';});}
  var charts=0,points=0,cells=0;
  document.querySelectorAll('svg.chart').forEach(function(s){var b=s.getBBox();if(b.width>0&&b.height>0)charts++;});
  points=document.querySelectorAll('svg.chart circle').length;
  document.querySelectorAll('#matrix td.ok,#matrix td.fail,#matrix td.skip').forEach(function(td){
    var c=getComputedStyle(td).backgroundColor; if(c&&c!=='rgba(0, 0, 0, 0)'&&c!=='transparent')cells++;});
  document.body.setAttribute('data-rendered','charts='+charts+';points='+points+';matrix='+cells);
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
    for c in &r.checks {
        if !programs.contains(&c.program.as_str()) {
            programs.push(&c.program);
        }
        if !cells.contains(&c.cell.as_str()) {
            cells.push(&c.cell);
        }
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
/// (run position, run id, sample).
type SeriesPoint<'a> = (usize, &'a str, &'a PerfSample);

fn trends(reports: &[Report], baseline: Option<&Report>, out: &mut String) -> usize {
    let mut series: BTreeMap<SeriesKey, Vec<SeriesPoint>> = BTreeMap::new();
    for (i, r) in reports.iter().enumerate() {
        for s in &r.perf {
            series
                .entry((s.program.clone(), s.capture.clone(), s.backend.clone()))
                .or_default()
                .push((i, &r.run.id, s));
        }
    }
    if series.is_empty() {
        out.push_str("<p>No performance measurements in the history (add a <code>[perf]</code> table to xdpqual.toml).</p>\n");
        return 0;
    }
    out.push_str("<div class=\"charts\">\n");
    for ((program, capture, backend), pts) in &series {
        let base = baseline.and_then(|b| {
            b.perf
                .iter()
                .find(|s| s.program == *program && s.capture == *capture && s.backend == *backend)
        });
        let points: Vec<chart::Point> = pts
            .iter()
            .enumerate()
            .map(|(k, (pos, id, s))| {
                // Each run is judged against the run before it.
                let regressed =
                    k > 0 && judge_regression(s, pts[k - 1].2, DEFAULT_THRESHOLD_PCT).regressed;
                chart::Point {
                    x: *pos as f64,
                    y: s.ratio,
                    label: format!(
                        "run {id}: {:.1} ns/packet, {:.3} x reference (noise {:.1}%)",
                        s.median_ns,
                        s.ratio,
                        s.noise * 100.0
                    ),
                    regressed,
                }
            })
            .collect();
        let title = format!("{program} on {capture} ({backend})");
        out.push_str("<figure>");
        out.push_str(&chart::line_chart(
            &points,
            base.map(|b| b.ratio),
            "cost / reference",
            reports.len(),
        ));
        let _ = writeln!(out, "<figcaption>{}</figcaption></figure>", html(&title));
    }
    out.push_str("</div>\n");
    series.len()
}

fn offload(r: &Report, out: &mut String) {
    if r.offload.is_empty() {
        out.push_str("<p>No offload profile in the latest run.</p>\n");
        return;
    }
    out.push_str("<table><tr><th>program</th><th>profile</th><th>verdict</th><th>estimated Mpps</th><th>bound</th></tr>\n");
    for o in &r.offload {
        let est = o.est_mpps.map_or_else(|| "-".to_string(), |m| format!("{m:.1}"));
        let v = o.verdict();
        // Offloadable: ok; with a run-time fallback: skip's amber (it loads,
        // but some path acts differently on the NIC); not offloadable: fail.
        let class = match v {
            nic_model::Offloadability::Offloadable => "ok",
            nic_model::Offloadability::OffloadableWithFallback => "skip",
            nic_model::Offloadability::NotOffloadable => "fail",
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\" title=\"{}\">{}</td><td title=\"{}\">{est}</td><td>{}</td></tr>",
            html(&o.program),
            html(&o.profile),
            html(&o.reason),
            html(v.label()),
            html(&o.est_basis),
            html(o.est_bound.as_deref().unwrap_or("-")),
        );
    }
    out.push_str("</table>\n<p class=\"muted\">Estimates assume every reachable instruction runs once per packet at one instruction per cycle on every core of the profile (hover for the arithmetic); each is capped by the profile's line rate where it has one, and the bound column says which applies; they rank programs, they do not predict a card.</p>\n");
}

/// The page for the whole history.
pub fn render(h: &History) -> Result<String, HistoryError> {
    let runs = h.runs()?;
    let reports: Vec<Report> = runs.iter().map(|r| h.report(&r.id)).collect::<Result<_, _>>()?;
    let baselines = h.baselines()?;
    let baseline = baselines
        .get(crate::history::DEFAULT_BASELINE)
        .and_then(|id| reports.iter().find(|r| &r.run.id == id));
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>xdpqual dashboard</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body>\n<h1>xdpqual dashboard</h1>\n");
    let Some(latest) = reports.last() else {
        out.push_str("<p>The history has no runs yet: run <code>xdpqual qualify</code>.</p>\n");
        out.push_str("<script>");
        out.push_str(SCRIPT);
        out.push_str("</script></body></html>\n");
        return Ok(out);
    };
    let (p, f, s) = latest.count();
    let _ = writeln!(
        out,
        "<p>{} run(s). Latest: <b>{}</b> on {} (kernel {}): {p} passed, {f} failed, {s} skipped.{}</p>",
        reports.len(),
        html(&latest.run.id),
        html(&latest.run.arch),
        html(latest.run.kernel.as_deref().unwrap_or("unavailable")),
        baselines.iter().map(|(n, id)| format!(" Baseline {}: {}.", html(n), html(id))).collect::<String>()
    );
    out.push_str("<nav><a href=\"#matrix\">matrix</a> · <a href=\"#diffs\">verdict diffs</a> · <a href=\"#trends\">performance</a> · <a href=\"#offload\">offload</a></nav>\n");
    out.push_str("<section id=\"matrix\"><h2>Compatibility matrix (latest run)</h2>\n<p class=\"muted\">Program × cell (kernel, engine, architecture, offload profile). Hover a cell for its checks.</p>\n");
    matrix(latest, &mut out);
    out.push_str("</section>\n<section id=\"diffs\"><h2>Verdict diffs</h2>\n");
    diffs(latest, reports.len().checked_sub(2).map(|i| &reports[i]), &mut out);
    out.push_str("</section>\n<section id=\"trends\"><h2>Performance over runs</h2>\n");
    let _ = writeln!(out, "<p class=\"muted\">Median engine cost per packet divided by the reference workload's, measured in the same run (lower is faster). Red points regressed against the run before by more than {DEFAULT_THRESHOLD_PCT}% and more than the noise allowance; the dashed line is the baseline.</p>");
    trends(&reports, baseline, &mut out);
    out.push_str(
        "</section>\n<section id=\"offload\"><h2>Offload throughput estimates (latest run)</h2>\n",
    );
    offload(latest, &mut out);
    out.push_str("</section>\n<script>");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body></html>\n");
    Ok(out)
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
}
