//! `xdpqual baseline`: name a stored run as the reference for `compare`
//! and for the regression budget.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use xdpqual::history::{History, DEFAULT_BASELINE, DEFAULT_PATH};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    #[arg(long, global = true, default_value = DEFAULT_PATH)]
    pub history: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Make RUN (an id, a unique prefix, or `latest`) the baseline.
    Set {
        run: String,
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
