//! `xdpqual qualify`: the main job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use xdpqual::history::{DEFAULT_BASELINE, DEFAULT_PATH};
use xdpqual::qualify::{self, plan::Shard, RunOptions};

/// Exit statuses, shown by `xdpqual qualify --help` and in the README.
pub(crate) const EXIT_CODES: &str = "\
Examples:
  xdpqual qualify
  xdpqual qualify --config my.toml --quiet
  xdpqual qualify --shard 2/4 --out results/shard2     (then: xdpqual merge results/shard*)

Exit status:
  0  every check ran and passed (a cell listed in the configuration's
     `optional` may have been skipped, with its reason)
  1  a check failed, or a configured cell could not run here (no privileges
     for the host kernel, no QEMU, ...) and is not listed as `optional`
  2  usage or configuration error, or the reports could not be written";

/// Qualify the programs of a configuration (default ./xdpqual.toml) on every
/// backend available here.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// The configuration: programs, captures, backends, gates (docs/qualify.md).
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

pub(crate) fn history_path(
    flag: Option<PathBuf>,
    cfg: Option<&qualify::config::Config>,
) -> PathBuf {
    flag.or_else(|| cfg.and_then(|c| c.history.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let cfg = qualify::config::load(&args.config)?;
    let history = history_path(args.history, Some(&cfg));
    // A shard is one part of a run: only the merge records it.
    let record = !(args.no_history || args.shard.is_some());
    if let Some(line) = qualify::clean_stray(&args.out, Some(&history))? {
        eprintln!("xdpqual: {}", xdpqual::util::escape::terminal(&line));
    }
    let run_id = qualify::new_run_id();
    let opts = RunOptions {
        quiet: args.quiet,
        shard: args.shard,
        history: Some(history.clone()),
        baseline: args.baseline,
        build_dir: args.out.join("build"),
        run_id: run_id.clone(),
        // A shard's run is recorded by `merge`, which then adopts the first
        // baseline the same way (cli/src/merge.rs).
        becomes_baseline_if_none: record || (args.shard.is_some() && !args.no_history),
    };
    let baseline_name = opts.baseline.clone();
    let report = qualify::run(&cfg, &opts)?;
    let dir = args.out.join(match args.shard {
        Some(s) => format!("{run_id}-shard{}of{}", s.index, s.count),
        None => run_id.clone(),
    });
    qualify::publish(&report, &dir, record.then_some(history.as_path()))?;
    let first_baseline = if record {
        qualify::adopt_first_baseline(&history, &baseline_name, &run_id)?
    } else {
        None
    };
    let recorded = if record {
        format!("; recorded as run {run_id} in {}", history.display())
    } else {
        String::new()
    };
    let (p, f, s) = report.count();
    println!(
        "{}",
        xdpqual::util::escape::terminal(&format!(
            "xdpqual qualify: {p} passed, {f} failed, {s} skipped; reports in {}{recorded}",
            dir.display()
        ))
    );
    if let Some(line) = first_baseline {
        println!("{}", xdpqual::util::escape::terminal(&line));
    }
    for c in report.failures() {
        println!("  {}", c.line());
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
