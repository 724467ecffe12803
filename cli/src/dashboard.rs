//! `xdpqual dashboard`: a static HTML site from the history.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use xdpqual::history::{History, DEFAULT_PATH};

/// Writes OUT/index.html (every asset inline; open it from disk).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual dashboard
  xdpqual dashboard --history ci/history.sqlite --out public/

Exit status:
  0  OUT/index.html was written
  2  usage error, an unreadable history, or the page could not be written")]
pub struct Args {
    /// History database the charts are drawn from.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub history: PathBuf,
    /// Directory for index.html.
    #[arg(long, default_value = "results/dashboard")]
    pub out: PathBuf,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let h = History::open(&args.history)?;
    let page = xdpqual::dashboard::render(&h)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let index = args.out.join("index.html");
    xdpqual::util::write_atomic(&index, page.as_bytes())
        .with_context(|| format!("writing {}", index.display()))?;
    println!("xdpqual dashboard: {}", index.display());
    Ok(ExitCode::SUCCESS)
}
