//! `xdpqual matrix PROG.o CAPTURE... [--cells ...]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use xdpqual::loader::load_target;
use xdpqual::mapfile::MapInit;
use xdpqual::matrix::{self, run::AccelChoice, spec, Options};
use xdpqual::replay::split_target;

use crate::output::{Format, TextOrJsonReport};

/// Run the program and packets in every kernel of the matrix (QEMU) and
/// compare each with the engine. Exit 0 when every required cell loads the
/// program and agrees, 1 otherwise.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual matrix prog.o capture.pcap --cells 6.1-x86_64
  xdpqual matrix prog.o capture.pcap --format json --output matrix.json
  xdpqual matrix --prepare      (once, from a checkout: cache the guest agents
                                 so an installed xdpqual runs the matrix anywhere)

Exit status:
  0  every cell loads the program and agrees with the engine
  1  a cell failed to load or run the program, or disagrees
  2  usage or configuration error (a kernel could not be fetched, no QEMU)")]
pub struct Args {
    /// PROG.o[:SECTION]
    #[arg(required_unless_present = "prepare")]
    pub program: Option<String>,
    #[command(flatten)]
    pub load: crate::load_args::LoadArgs,
    /// Captures whose packets run in every cell.
    #[arg(required_unless_present = "prepare")]
    pub captures: Vec<PathBuf>,
    /// Build the guest agents of the selected cells' architectures from this
    /// checkout into the cache, and exit. An installed xdpqual (no source
    /// tree) then runs the matrix from any directory.
    #[arg(long, conflicts_with_all = ["program", "captures"])]
    pub prepare: bool,
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
    #[arg(long, default_value_t = Options::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
    /// Prebuilt agents: DIR/<arch>/xdpqual-agent.
    #[arg(long)]
    pub agent_dir: Option<PathBuf>,
    /// Never try KVM.
    #[arg(long)]
    pub tcg: bool,
    /// Fill a map before the run, in every cell and the engine:
    /// NAME=FILE.json (repeatable; format in docs/maps-json.md).
    #[arg(long = "map", value_name = "NAME=FILE")]
    pub maps: Vec<MapInit>,
    /// `rx_queue_index` the program sees.
    #[arg(long, default_value_t = 0)]
    pub rx_queue: u32,
    /// Use at most this many packets (over all captures).
    #[arg(long)]
    pub max_packets: Option<usize>,
    /// `--format text|json` (the JSON's `schema` field: xdpqual.matrix/1), `--output`, `--quiet`.
    #[command(flatten)]
    pub report: TextOrJsonReport,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let format = args.report.start();
    if args.prepare {
        return prepare(&args);
    }
    let target = args.program.as_deref().context("a program is required without --prepare")?;
    let (path, section) = split_target(target);
    let obj = load_target(&path, &args.load.options(section.as_deref()))?;
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
        load: args.load.options(section.as_deref()),
    };
    let report = matrix::run(&obj, &program, &args.captures, &opts)?;
    args.report.output.emit(&match format {
        Format::Json => crate::output::json(&report)?,
        _ => xdpqual::util::escape::terminal_block(&matrix::run::render(&report)),
    })?;
    Ok(if report.passes() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `--prepare`: the guest agent of every architecture the selected cells
/// use, built and cached.
fn prepare(args: &Args) -> Result<ExitCode> {
    let cells = match &args.matrix {
        Some(m) => spec::load(m)?,
        None => spec::default_cells(),
    };
    let cells = spec::select(cells, &args.cells)?;
    let cache = matrix::cache_dir();
    let mut arches: Vec<spec::Arch> = cells.iter().map(|c| c.arch).collect();
    arches.sort_by_key(|a| a.name());
    arches.dedup();
    for arch in arches {
        let path = matrix::agent::prepare(arch, &cache)
            .with_context(|| format!("preparing the {} guest agent", arch.name()))?;
        println!("{} guest agent: {}", arch.name(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}
