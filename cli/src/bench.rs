//! `xdpqual bench PROG.o[:SECTION] CAPTURE`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use xdpqual::bench::{self, BackendId, BenchOptions, Selection};
use xdpqual::loader::load_target;
use xdpqual::replay::split_target;
use xdpqual::util::escape::{terminal, terminal_block};

use crate::output::{Format, OutputFile};

/// Measure what a packet costs on each backend, side by side: the engine,
/// rbpf, the host kernel (per call, in-kernel, live frames) and the NIC
/// model. Prints a table and writes results/bench-<timestamp>-<program>.json.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual bench corpus/build/firewall.v3.o pcaps/firewall-2k.pcap
  xdpqual bench builtin:parse pcaps/firewall-2k.pcap --backends engine,rbpf,host
  xdpqual bench prog.o capture.pcap --rounds 5 --format markdown --output bench.md

Exit status:
  0  the table was printed and the result file written (a row that cannot
     run here is listed as skipped, with its reason)
  2  usage error, an unreadable program or capture, or the result could
     not be written")]
pub struct Args {
    /// The object, optionally with the program's section or name: PROG.o[:SECTION];
    /// or a built-in program: builtin:parse (map-free parser), builtin:floor.
    pub program: String,
    #[command(flatten)]
    pub load: crate::load_args::LoadArgs,
    /// pcap or pcapng file whose first --packets packets are measured.
    pub capture: PathBuf,
    /// Rows to run, comma-separated: row names, groups (engine, rbpf, kernel, nic), or the
    /// backend specs diff takes (vm, host, rbpf, nic:PROFILE for the NIC row's profile,
    /// default nfp-corenic); default all rows.
    #[arg(long)]
    pub backends: Option<String>,
    /// Measured rounds per backend (after one warm-up round).
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Runs per BPF_PROG_TEST_RUN call for the in-kernel and live-frames rows.
    #[arg(long, default_value_t = 10_000)]
    pub repeat: u32,
    /// Packets (an even stride) for the in-kernel and live rows, whose calls
    /// each wait for two RCU grace periods.
    #[arg(long, default_value_t = 32)]
    pub kernel_sample: usize,
    /// Packets taken from the start of the capture.
    #[arg(long, default_value_t = 10_000)]
    pub packets: usize,
    /// Directory for the JSON result.
    #[arg(long, default_value = "results")]
    pub out_dir: PathBuf,
    /// Report format: text (a table, then the result file's path), json
    /// (schema xdpqual.bench/2, the result file's contents) or markdown (`md`).
    #[arg(long, default_value = "text", value_parser = Format::parser(&[Format::Text, Format::Json, Format::Markdown]))]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputFile,
    /// No progress bar (one is drawn on stderr only while stdout and
    /// stderr are both terminals).
    #[arg(long)]
    pub quiet: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    xdpqual::util::progress::enable(!args.quiet);
    let (obj, section) = match args.program.strip_prefix(bench::builtin::PREFIX) {
        Some(name) => (bench::builtin::object(name).map_err(|e| anyhow::anyhow!(e))?, None),
        None => {
            let (path, section) = split_target(&args.program);
            (load_target(&path, &args.load.options(section.as_deref()))?, section)
        }
    };
    let path = obj.path.clone();
    let program = match &section {
        Some(s) => obj.program(Some(s)).with_context(|| {
            format!("{}: no XDP program or section named '{s}'", path.display())
        })?,
        None => obj.program(None).context("the object has no XDP program")?,
    };
    let selection = match &args.backends {
        Some(list) => Selection::parse(list).map_err(|e| anyhow::anyhow!("--backends: {e}"))?,
        None => Selection { rows: BackendId::ALL.to_vec(), nic_profile: None },
    };
    let opts = BenchOptions {
        backends: selection.rows,
        nic_profile: selection
            .nic_profile
            .unwrap_or_else(|| bench::DEFAULT_NIC_PROFILE.to_string()),
        rounds: args.rounds.max(1),
        repeat: args.repeat.max(1),
        packets: args.packets.max(1),
        kernel_sample: args.kernel_sample.max(1),
    };
    let packets = bench::load_packets(&args.capture, opts.packets)?;
    let report = bench::run(&obj, program, &args.capture, &packets, &opts)?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let out = bench::result_path(&args.out_dir, std::time::SystemTime::now(), &program.name);
    xdpqual::util::write_atomic(&out, &serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", out.display()))?;
    let results_line = format!("results: {}\n", terminal(&out.display().to_string()));
    // Names in the table (program, capture) come from the user's files.
    let text = match args.format {
        Format::Text => terminal_block(&bench::render::table(&report)) + &results_line,
        Format::Json => crate::output::json(&report)?,
        Format::Markdown => terminal_block(&bench::render::markdown(&report)),
    };
    if args.format != Format::Text {
        // Only the document goes to stdout; the path to stderr.
        eprint!("{results_line}");
    }
    args.output.emit(&text)?;
    Ok(ExitCode::SUCCESS)
}
