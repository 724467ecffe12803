//! The terminal table.

use std::fmt::Write;

use super::{BenchReport, Outcome, Row};

fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One line per backend; skipped ones with their reason, notes below.
pub fn table(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}) on {} packets of {}, {} rounds{}",
        r.program,
        r.object,
        r.packets,
        r.capture,
        r.rounds,
        r.kernel.as_deref().map(|k| format!(", kernel {k}")).unwrap_or_default()
    );
    let _ = writeln!(out, "host: {}", r.host);
    let _ = writeln!(
        out,
        "{:<18}{:>10}{:>10}{:>10}{:>10}{:>10}{:>9}{:>11}",
        "backend", "ns/pkt", "p10", "p90", "pkt/s", "insn/pkt", "ns/insn", "vs kernel"
    );
    let mut notes = Vec::new();
    rows(&mut out, &r.rows, &mut notes, "");
    if !r.floor.is_empty() {
        let _ = writeln!(out, "per-run floor (built-in `r0 = XDP_PASS; exit`, same packets):");
        rows(&mut out, &r.floor, &mut notes, "floor ");
    }
    for n in notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}

fn rows(out: &mut String, rows: &[Row], notes: &mut Vec<String>, tag: &str) {
    for row in rows {
        let name = row.backend.name();
        match &row.outcome {
            Outcome::Measured(m) => {
                let s = &m.ns_per_packet;
                let _ = writeln!(
                    out,
                    "{name:<18}{:>10}{:>10}{:>10}{:>10}{:>10}{:>9}{:>11}",
                    num(s.median),
                    num(s.p10),
                    num(s.p90),
                    num(m.packets_per_s),
                    m.insns_per_packet.map_or("-".into(), num),
                    m.ns_per_insn.map_or("-".into(), num),
                    m.vs_kernel_in_kernel.map_or("-".into(), |x| format!("{x:.2}x")),
                );
                if let Some(n) = &m.note {
                    notes.push(format!("{tag}{name}: {n}"));
                }
            }
            Outcome::Skipped(why) => {
                let _ = writeln!(out, "{name:<18}skipped: {why}");
            }
        }
    }
}

/// The same table in GitHub-flavoured Markdown (for a PR comment or a job
/// summary). Names from the user's files and skip reasons are escaped.
pub fn markdown(r: &BenchReport) -> String {
    use crate::util::escape::markdown as md;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### bench: {} ({})\n\n{} packets of {}, {} rounds{}; host: {}\n",
        md(&r.program),
        md(&r.object),
        r.packets,
        md(&r.capture),
        r.rounds,
        r.kernel.as_deref().map(|k| format!(", kernel {}", md(k))).unwrap_or_default(),
        md(&r.host)
    );
    let _ = writeln!(
        out,
        "| backend | ns/pkt | p10 | p90 | pkt/s | insn/pkt | ns/insn | vs kernel |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut notes = Vec::new();
    let both: Vec<(&str, &Row)> =
        r.rows.iter().map(|x| ("", x)).chain(r.floor.iter().map(|x| ("floor ", x))).collect();
    for (tag, row) in both {
        let name = format!("{tag}{}", row.backend.name());
        match &row.outcome {
            Outcome::Measured(m) => {
                let s = &m.ns_per_packet;
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                    num(s.median),
                    num(s.p10),
                    num(s.p90),
                    num(m.packets_per_s),
                    m.insns_per_packet.map_or("-".into(), num),
                    m.ns_per_insn.map_or("-".into(), num),
                    m.vs_kernel_in_kernel.map_or("-".into(), |x| format!("{x:.2}x")),
                );
                if let Some(n) = &m.note {
                    notes.push(format!("{name}: {}", md(n)));
                }
            }
            Outcome::Skipped(why) => {
                let _ = writeln!(out, "| {name} | skipped: {} | | | | | | |", md(why));
            }
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}
