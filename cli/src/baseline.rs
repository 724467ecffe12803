//! `xdpqual baseline`: name a stored run as the reference for `compare`
//! and for the regression budget.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use xdpqual::history::{History, DEFAULT_BASELINE, DEFAULT_PATH};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual baseline set latest
  xdpqual baseline set 1765015200-4242 --name release-1.4
  xdpqual baseline list --history ci/history.sqlite

Exit status:
  0  done
  2  usage error, an unreadable history, or no run matching RUN")]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// History database.
    #[arg(long, global = true, default_value = DEFAULT_PATH)]
    pub history: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Make RUN (an id, a unique prefix, or `latest`) the baseline.
    Set {
        /// The run: its id, a unique prefix of one, or `latest`.
        run: String,
        /// The baseline's name (`qualify --baseline` and `compare` use `default`).
        #[arg(long, default_value = DEFAULT_BASELINE)]
        name: String,
    },
    /// List the baselines and the stored runs.
    List,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let mut h = History::open(&args.history)?;
    match args.action {
        Action::Set { run, name } => {
            let id = h.set_baseline(&name, &run)?;
            println!("baseline '{}' is now run {id}", xdpqual::util::escape::terminal(&name));
        }
        Action::List => {
            for (name, id) in h.baselines()? {
                println!("baseline {}: {id}", xdpqual::util::escape::terminal(&name));
            }
            for r in h.runs()? {
                println!(
                    "run {} {} {} {}",
                    r.id,
                    r.arch,
                    r.kernel.as_deref().unwrap_or("-"),
                    if r.passed { "passed".to_string() } else { format!("{} failed", r.failed) }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
