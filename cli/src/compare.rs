//! `xdpqual compare RUN [BASELINE]`: what changed between two stored runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use xdpqual::history::compare::{compare, DEFAULT_THRESHOLD_PCT};
use xdpqual::history::{History, DEFAULT_BASELINE, DEFAULT_PATH};

/// Exit 0 when nothing got worse, 1 on a new failure or a performance
/// regression (see docs/history.md for the rule).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual compare latest
  xdpqual compare latest release-1.4 --max-regression 10
  xdpqual compare 17650152 --history ci/history.sqlite   (a unique id prefix)

Exit status:
  0  nothing got worse than the baseline
  1  a new failure, or a performance regression beyond --max-regression
  2  usage error, an unreadable history, or no such run or baseline")]
pub struct Args {
    /// A run id, a unique prefix of one, `latest`, or a baseline name.
    pub run: String,
    /// What to compare against (default: the baseline named `default`).
    pub baseline: Option<String>,
    /// History database.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub history: PathBuf,
    /// Slowdown, in percent of the normalised cost, that counts as a regression.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD_PCT)]
    pub max_regression: f64,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let h = History::open(&args.history)?;
    let run = h.resolve(&args.run)?;
    let base = h.resolve(args.baseline.as_deref().unwrap_or(DEFAULT_BASELINE))?;
    let c = compare(&h.report(&run)?, &h.report(&base)?, args.max_regression);
    print!("{}", xdpqual::util::escape::terminal_block(&c.markdown()));
    Ok(if c.worse() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
