//! `xdpqual qualify`: the CI gate. Runs the configuration's checks on every
//! backend available here and writes `report.json`, `junit.xml` and
//! `summary.md` under `results/<run-id>/`.

pub mod config;
pub mod report;

use std::path::Path;

use anyhow::Result;

use crate::diff::{self, BackendKind, DiffOptions};
use crate::loader::load_object;
use crate::replay::mapfile::MapInit;
use report::{Check, Outcome, Report};

/// Runs every check; never stops at the first failure.
pub fn run(cfg: &config::Config, quiet: bool) -> Result<Report> {
    let mut report = Report::new();
    for p in &cfg.programs {
        let label = p.label();
        let obj = match load_object(&p.object) {
            Ok(o) => o,
            Err(e) => {
                report.checks.push(Check::new(&label, "-", "load", Outcome::Fail { reason: e.to_string() }));
                continue;
            }
        };
        let Some(prog) = obj.program(p.section.as_deref()).cloned() else {
            report.checks.push(Check::new(&label, "-", "load", Outcome::Fail { reason: "no such XDP program in the object".into() }));
            continue;
        };
        let maps: Vec<MapInit> = p.maps.iter().map(|(m, f)| MapInit { map: m.clone(), file: f.clone() }).collect();
        for cap in &cfg.captures {
            let cap_label = cap.display().to_string();
            let opts = DiffOptions { backends: vec![BackendKind::Vm, BackendKind::Host], maps: maps.clone(), rx_queue_index: 0, max_reported: 5 };
            let check = match diff::run(&obj, &prog, std::slice::from_ref(cap), &opts) {
                Err(e) => Check::new(&label, &cap_label, "engine agrees with host kernel", Outcome::Fail { reason: format!("{e:#}") }),
                Ok(d) if !d.backends.contains(&BackendKind::Host) => {
                    let why = d.skipped.iter().find(|s| s.backend == BackendKind::Host).map(|s| s.reason.clone()).unwrap_or_default();
                    // A verifier rejection is a failure; an unavailable kernel is a skip.
                    if why.starts_with("rejected") {
                        Check::new(&label, &cap_label, "engine agrees with host kernel", Outcome::Fail { reason: why })
                    } else {
                        Check::new(&label, &cap_label, "engine agrees with host kernel", Outcome::Skipped { reason: why })
                    }
                }
                Ok(d) if d.agrees() => Check::new(
                    &label,
                    &cap_label,
                    "engine agrees with host kernel",
                    Outcome::Pass {
                        detail: format!("{} packets agree, {} nondeterministic (kernel {})", d.agreed, d.nondeterministic, d.kernel.clone().unwrap_or_default()),
                    },
                ),
                Ok(d) => {
                    let mut reason = format!("{} of {} packets differ", d.mismatch_count, d.packets);
                    if let Some(m) = d.mismatches.first() {
                        reason.push_str(&format!("; first: packet {}: {}", m.index, m.detail.lines().next().unwrap_or("")));
                    }
                    for mm in &d.map_mismatches {
                        reason.push_str(&format!("; {mm}"));
                    }
                    Check::new(&label, &cap_label, "engine agrees with host kernel", Outcome::Fail { reason })
                }
            };
            if !quiet {
                eprintln!("{}", check.line());
            }
            report.checks.push(check);
        }
        for (profile, expect_ok) in &p.offload {
            let prof = nic_model::Profile::load(profile)?;
            let r = nic_model::check(&crate::cli::offload_spec(&obj, &prog), &prof);
            let ok = r.verdict == nic_model::Verdict::Compatible;
            let name = format!("offload {profile}: expected {}", if *expect_ok { "compatible" } else { "not compatible" });
            let outcome = if ok == *expect_ok {
                Outcome::Pass { detail: format!("{} findings", r.findings.len()) }
            } else {
                let first = r.findings.first().map(|f| format!("{:?}", f.rule)).unwrap_or_default();
                Outcome::Fail { reason: format!("the checker says {} (first finding {first})", if ok { "compatible" } else { "not compatible" }) }
            };
            let check = Check::new(&label, "-", &name, outcome);
            if !quiet {
                eprintln!("{}", check.line());
            }
            report.checks.push(check);
        }
    }
    Ok(report)
}

/// Writes the three report files atomically into `dir`.
pub fn write(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::util::write_atomic(&dir.join("report.json"), &serde_json::to_vec_pretty(report)?)?;
    crate::util::write_atomic(&dir.join("junit.xml"), report.junit().as_bytes())?;
    crate::util::write_atomic(&dir.join("summary.md"), report.markdown().as_bytes())?;
    Ok(())
}
