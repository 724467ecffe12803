//! `xdpqual merge`: shard results into one report and one history entry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use xdpqual::history::DEFAULT_PATH;
use xdpqual::qualify::{self, merge};

/// Combine the reports of `qualify --shard I/N` runs (folders searched for
/// report.json) into one report, as an unsharded run would have written it.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual merge results/shard1 results/shard2 results/shard3
  xdpqual merge shards/ --out results --history ci/history.sqlite
  xdpqual merge shards/ --no-history

Exit status:
  0  every check of every shard passed
  1  a check failed
  2  usage error, no report.json found, a report that cannot be read or
     merged, or the merged report could not be written")]
pub struct Args {
    /// Folders holding the shards' report.json files (searched recursively).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where `<run-id>/` with the merged reports is written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// History database the merged run is recorded in.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub history: PathBuf,
    /// Do not record the merged run in the history.
    #[arg(long)]
    pub no_history: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let files = merge::find_reports(&args.dirs);
    if files.is_empty() {
        return Err(merge::MergeError::NoReports {
            dirs: args.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
        }
        .into());
    }
    let mut shards = Vec::new();
    for f in files {
        let r = merge::read(&f)?;
        shards.push((f, r));
    }
    let n = shards.len();
    let run_id = qualify::new_run_id();
    let report = merge::merge(shards, &run_id)?;
    let dir = args.out.join(&run_id);
    let history = (!args.no_history).then_some(args.history.as_path());
    if let Some(line) = qualify::clean_stray(&args.out, history)? {
        eprintln!("xdpqual: {}", xdpqual::util::escape::terminal(&line));
    }
    qualify::publish(&report, &dir, history)?;
    // As an unsharded qualify: the first recorded run becomes the baseline
    // (the shards' regression gates passed as that reference).
    let first_baseline = match history {
        Some(h) => qualify::adopt_first_baseline(h, xdpqual::history::DEFAULT_BASELINE, &run_id)?,
        None => None,
    };
    let (p, f, s) = report.count();
    println!(
        "xdpqual merge: {n} shards, {p} passed, {f} failed, {s} skipped; reports in {}",
        dir.display()
    );
    if let Some(line) = first_baseline {
        println!("{}", xdpqual::util::escape::terminal(&line));
    }
    for c in report.failures() {
        println!("  {}", c.line());
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
