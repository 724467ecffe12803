//! `xdpqual merge`: shard reports back into one report, in plan order, as
//! if one machine had run every unit.

use std::path::{Path, PathBuf};

use crate::report::{Report, RunInfo};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no report.json found under {dirs}")]
    NoReports { dirs: String },
    #[error("reading shard report {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{} is not a shard report (it was made without --shard)", path.display())]
    NotShard { path: PathBuf },
    #[error("shards come from different plans: {} has plan {b}, {} has {a}; every shard must run the same configuration, xdpqual and history", path_b.display(), path_a.display())]
    PlanMismatch { path_a: PathBuf, a: String, path_b: PathBuf, b: String },
    #[error("shard {index}/{count} appears twice: {} and {}", first.display(), second.display())]
    Duplicate { index: u32, count: u32, first: PathBuf, second: PathBuf },
    #[error(
        "shards missing: {missing} of {count}; each of 1..={count} must be given exactly once"
    )]
    Missing { missing: String, count: u32 },
    #[error("units not covered by any shard: {units}")]
    Uncovered { units: String },
}

/// Every `report.json` in or below the given folders (or the files
/// themselves), sorted.
pub fn find_reports(dirs: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>, depth: u32) {
        if p.is_file() && p.file_name().is_some_and(|n| n == "report.json") {
            out.push(p.to_path_buf());
        } else if p.is_dir() && depth < 6 {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    // A run directory still being written (or left by a
                    // killed run) is not a report to merge.
                    if e.file_name().to_string_lossy().starts_with(super::TMP_PREFIX) {
                        continue;
                    }
                    walk(&e.path(), out, depth + 1);
                }
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(d, &mut out, 0);
    }
    out.sort();
    out.dedup();
    out
}

pub fn read(path: &Path) -> Result<Report, MergeError> {
    let bytes =
        crate::util::input::read_limited(path, "report", crate::util::input::MAX_DATA_BYTES)
            .map_err(|e| MergeError::Read { path: path.into(), message: e.to_string() })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| MergeError::Read { path: path.into(), message: e.to_string() })
}

/// Combines shard reports. Refuses mixed plans, duplicates and gaps, so a
/// merged report always covers the whole plan exactly once.
pub fn merge(shards: Vec<(PathBuf, Report)>, run_id: &str) -> Result<Report, MergeError> {
    let Some((first_path, first)) = shards.first() else {
        return Err(MergeError::NoReports { dirs: String::new() });
    };
    let info =
        first.run.shard.clone().ok_or_else(|| MergeError::NotShard { path: first_path.clone() })?;
    let mut seen: Vec<Option<PathBuf>> = vec![None; info.count as usize];
    let mut covered = vec![false; info.total_units];
    for (path, r) in &shards {
        let s = r.run.shard.as_ref().ok_or_else(|| MergeError::NotShard { path: path.clone() })?;
        if s.plan != info.plan {
            return Err(MergeError::PlanMismatch {
                path_a: first_path.clone(),
                a: info.plan.clone(),
                path_b: path.clone(),
                b: s.plan.clone(),
            });
        }
        let slot = &mut seen[(s.index - 1) as usize];
        if let Some(prev) = slot {
            return Err(MergeError::Duplicate {
                index: s.index,
                count: s.count,
                first: prev.clone(),
                second: path.clone(),
            });
        }
        *slot = Some(path.clone());
        for u in &s.units {
            if let Some(c) = covered.get_mut(*u) {
                *c = true;
            }
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing: missing.join(", "), count: info.count });
    }
    let uncovered: Vec<String> =
        covered.iter().enumerate().filter(|(_, c)| !**c).map(|(i, _)| i.to_string()).collect();
    if !uncovered.is_empty() {
        return Err(MergeError::Uncovered { units: uncovered.join(", ") });
    }
    let mut out = Report::new();
    out.run = RunInfo {
        id: run_id.into(),
        created_unix: shards.iter().map(|(_, r)| r.run.created_unix).max().unwrap_or(0),
        arch: first.run.arch.clone(),
        kernel: first.run.kernel.clone(),
        config: first.run.config.clone(),
        shard: None,
        commit: first.run.commit.clone(),
    };
    for (_, r) in shards {
        out.checks.extend(r.checks);
        out.perf.extend(r.perf);
        out.packets.extend(r.packets);
        out.offload.extend(r.offload);
        out.units.extend(r.units);
    }
    // Stable sorts: within a unit, the order the shard produced.
    out.checks.sort_by_key(|c| c.unit);
    out.perf.sort_by_key(|p| p.unit);
    out.packets.sort_by_key(|p| p.unit);
    out.offload.sort_by_key(|o| o.unit);
    out.units.sort_by_key(|u| u.unit);
    Ok(out)
}
