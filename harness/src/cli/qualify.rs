//! `xdpqual qualify`: the main job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::qualify;

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
    /// Only print the final summary line.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = qualify::config::load(&args.config)?;
    let report = qualify::run(&cfg, args.quiet)?;
    let run_id = format!(
        "{}-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        std::process::id()
    );
    let dir = args.out.join(&run_id);
    qualify::write(&report, &dir)?;
    let (p, f, s) = report.count();
    println!("xdpqual qualify: {p} passed, {f} failed, {s} skipped; reports in {}", dir.display());
    if f > 0 {
        for c in report.failures() {
            println!("  {}", c.line());
        }
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
