//! `xdpqual matrix PROG.o CAPTURE... [--cells ...]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::loader::load_object;
use crate::matrix::{self, run::AccelChoice, spec, Options};
use crate::replay::mapfile::MapInit;
use crate::replay::split_target;

/// Run the program and packets in every kernel of the matrix (QEMU) and
/// compare each with the engine. Exit 0 when every required cell loads the
/// program and agrees, 1 otherwise.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// PROG.o[:SECTION]
    pub program: String,
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
    /// Comma-separated cell names (default: every cell of the matrix).
    #[arg(long, value_delimiter = ',')]
    pub cells: Vec<String>,
    /// Matrix file (default: the built-in vm-images/matrix.toml).
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Debian mirror URI (default: the one in this machine's apt sources).
    #[arg(long)]
    pub mirror: Option<String>,
    /// Re-fetch the package lists and re-resolve the kernels.
    #[arg(long)]
    pub refresh: bool,
    /// Guests booted at once (default: cores, bounded by memory).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Seconds one cell may take, boot to power-off.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Prebuilt agents: DIR/<arch>/xdpqual-agent.
    #[arg(long)]
    pub agent_dir: Option<PathBuf>,
    /// Never try KVM.
    #[arg(long)]
    pub tcg: bool,
    #[arg(long = "map")]
    pub maps: Vec<MapInit>,
    #[arg(long, default_value_t = 0)]
    pub rx_queue: u32,
    /// Use at most this many packets (over all captures).
    #[arg(long)]
    pub max_packets: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (path, section) = split_target(&args.program);
    let obj = load_object(&path)?;
    let program = obj
        .program(section.as_deref())
        .with_context(|| format!("{}: no such XDP program", path.display()))?
        .clone();
    let cells = match &args.matrix {
        Some(m) => spec::load(m)?,
        None => spec::default_cells(),
    };
    let opts = Options {
        cells: spec::select(cells, &args.cells)?,
        cache: matrix::cache_dir(),
        mirror: args.mirror.clone(),
        refresh: args.refresh,
        jobs: args.jobs,
        timeout: Duration::from_secs(args.timeout.max(1)),
        agent_dir: args.agent_dir.clone(),
        maps: args.maps.clone(),
        rx_queue_index: args.rx_queue,
        max_packets: args.max_packets,
        accel: if args.tcg { AccelChoice::Tcg } else { AccelChoice::Auto },
    };
    let report = matrix::run(&obj, &program, &args.captures, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::util::escape::terminal_block(&matrix::run::render(&report)));
    }
    Ok(if report.passes() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
