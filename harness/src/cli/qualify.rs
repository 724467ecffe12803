//! `xdpqual qualify`: the main job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::history::{History, DEFAULT_BASELINE, DEFAULT_PATH};
use crate::qualify::{self, plan::Shard, RunOptions};

/// Qualify the programs of a configuration (default ./xdpqual.toml) on every
/// backend available here. Exit 0 when everything passes, 1 when a gate
/// fails, 2 on a usage or configuration error.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "xdpqual.toml")]
    pub config: PathBuf,
    /// Where `<run-id>/` with the reports is written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// No progress bar or per-check lines; only the final summary.
    #[arg(long)]
    pub quiet: bool,
    /// Run only slice I of N (1-based) of the work units, balanced by the
    /// costs recorded in the history; combine the shards with `xdpqual merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// History database (default: the config's `history`, else results/history.sqlite).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Do not record this run in the history.
    #[arg(long)]
    pub no_history: bool,
    /// Baseline the regression budget compares against.
    #[arg(long, default_value = DEFAULT_BASELINE)]
    pub baseline: String,
}

pub fn history_path(flag: Option<PathBuf>, cfg: Option<&qualify::config::Config>) -> PathBuf {
    flag.or_else(|| cfg.and_then(|c| c.history.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = qualify::config::load(&args.config)?;
    let history = history_path(args.history, Some(&cfg));
    let run_id = qualify::new_run_id();
    let opts = RunOptions {
        quiet: args.quiet,
        shard: args.shard,
        history: Some(history.clone()),
        baseline: args.baseline,
        build_dir: args.out.join("build"),
        run_id: run_id.clone(),
    };
    let report = qualify::run(&cfg, &opts)?;
    let dir = args.out.join(match args.shard {
        Some(s) => format!("{run_id}-shard{}of{}", s.index, s.count),
        None => run_id.clone(),
    });
    qualify::write(&report, &dir)?;
    // A shard is one part of a run: only the merge records it.
    let recorded = if args.no_history || args.shard.is_some() {
        String::new()
    } else {
        History::open(&history)?
            .record(&report)
            .with_context(|| format!("recording run {run_id}"))?;
        format!("; recorded as run {run_id} in {}", history.display())
    };
    let (p, f, s) = report.count();
    println!(
        "xdpqual qualify: {p} passed, {f} failed, {s} skipped; reports in {}{recorded}",
        dir.display()
    );
    for c in report.failures() {
        println!("  {}", c.line());
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
