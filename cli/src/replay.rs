//! `xdpqual replay PROG.o[:SECTION] CAPTURE...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use xdpqual::engine::{Engine, EngineConfig, ExecMode};
use xdpqual::loader::load_target;
use xdpqual::mapfile::{self, MapInit};
use xdpqual::replay::parallel::{plan, replay_parallel, ParallelOptions};
use xdpqual::replay::{split_target, ReplayOptions};

use crate::output::{Format, OutputFile};

/// Exit statuses, shown by `xdpqual replay --help` and in the README.
pub(crate) const EXIT_CODES: &str = "\
Examples:
  xdpqual replay corpus/build/firewall.v3.o pcaps/firewall-2k.pcap
  xdpqual replay prog.o:xdp_main a.pcap b.pcapng --format json --output summary.json
  xdpqual replay prog.o a.pcap --trace a.pcap:12 --write-pcap TX=tx.pcap

Exit status:
  0  every packet ran to a verdict (PASS, DROP, TX, REDIRECT, ABORTED or NOT_RUN)
  1  a packet faulted in the engine's sandbox or the backend failed on one
     (the table lists the reasons with counts); --allow-faults makes this 0
  2  usage error, unreadable program or map file, or a capture that could
     not be read to the end";

/// Run every packet of the captures through the program in the engine and
/// report what it did with each.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// The object, optionally with the program's section or name: PROG.o[:SECTION].
    pub program: String,
    #[command(flatten)]
    pub load: crate::load_args::LoadArgs,
    /// pcap or pcapng files.
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
    /// Write one JSON line per packet (schema xdpqual.replay.packet/1) to
    /// this file, `-` for stdout (the summary is then not printed).
    #[arg(long, value_name = "FILE")]
    pub packets_json: Option<PathBuf>,
    /// Deprecated: use --packets-json FILE.
    #[arg(long, value_name = "FILE", hide = true, conflicts_with = "packets_json")]
    pub json: Option<PathBuf>,
    /// Write the output packets of one verdict to a pcap: VERDICT=FILE (repeatable), e.g. TX=tx.pcap.
    #[arg(long = "write-pcap", value_parser = parse_write_pcap)]
    pub write_pcap: Vec<(String, PathBuf)>,
    /// `ingress_ifindex` the program sees.
    #[arg(long, default_value_t = 1)]
    pub ingress_ifindex: u32,
    /// `rx_queue_index` the program sees.
    #[arg(long, default_value_t = 0)]
    pub rx_queue: u32,
    /// Fill a map before the run: NAME=FILE.json (repeatable; format in docs/maps-json.md).
    #[arg(long = "map", value_name = "NAME=FILE")]
    pub maps: Vec<MapInit>,
    /// Write every map's contents after the run to this JSON file: keys and
    /// values typed from the object's BTF (the form `--map` files take), or
    /// hex with `--raw`.
    #[arg(long)]
    pub dump_maps: Option<PathBuf>,
    /// Write `--dump-maps` in hex (schema xdpqual.maps/1), not typed.
    #[arg(long, requires = "dump_maps")]
    pub raw: bool,
    /// The forwarding table bpf_fib_lookup consults: interfaces, routes and
    /// neighbours as JSON (format in the README). Without it a program that
    /// calls bpf_fib_lookup faults.
    #[arg(long, value_name = "FILE")]
    pub fib: Option<PathBuf>,
    /// Take the forwarding table from an existing network namespace
    /// (`ip netns` name): its Ethernet interfaces, routes of every table and
    /// valid neighbours, as a snapshot (what the model cannot hold is left
    /// out with a note, or refused).
    #[arg(long, value_name = "NAME")]
    pub fib_from_netns: Option<String>,
    /// Connections the conntrack kfuncs' table holds before the first
    /// packet (JSON, format in the README); without it the table starts
    /// empty. The table persists across the run's packets, as the kernel's.
    #[arg(long, value_name = "FILE")]
    pub conntrack: Option<PathBuf>,
    /// Print the instruction trace of one packet: N (0-based over all
    /// captures in order) or CAPTURE:N (0-based within that capture, named
    /// as on the command line, by file name, or by its 0-based position).
    #[arg(long, value_name = "[CAPTURE:]N")]
    pub trace: Option<String>,
    /// Reset maps to their initial contents before each packet.
    #[arg(long)]
    pub fresh_maps: bool,
    /// Per-packet instruction budget.
    #[arg(long, default_value_t = 1_000_000)]
    pub insn_budget: u64,
    /// Summary format: text (a table per capture), or json (schema
    /// xdpqual.replay.summary/1).
    #[arg(long, default_value = "text", value_parser = Format::parser(&[Format::Text, Format::Json]))]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputFile,
    /// Deprecated: use --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    pub summary_json: bool,
    /// Executor: compiled code (falls back to the interpreter when the
    /// program cannot be compiled) or the interpreter. Traces always interpret.
    #[arg(long, value_enum, default_value_t = EngineKind::Jit)]
    pub engine: EngineKind,
    /// Worker threads; packets are spread over them by RSS flow hash and
    /// results are reported in capture order (0: one per available core).
    /// Default 1: per-CPU map contents then match a one-CPU run.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Split across threads even when the program writes maps shared by
    /// all flows (results may then differ from a one-thread run).
    #[arg(long)]
    pub parallel_unsafe: bool,
    /// Exit 0 even when packets faulted or the backend failed on some
    /// (they are still counted and listed).
    #[arg(long)]
    pub allow_faults: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Interp,
    Jit,
}

fn parse_write_pcap(s: &str) -> Result<(String, PathBuf), String> {
    let (v, f) = s.split_once('=').ok_or_else(|| format!("'{s}' is not VERDICT=FILE"))?;
    let v = v.to_ascii_uppercase();
    const KNOWN: [&str; 8] =
        ["PASS", "DROP", "TX", "REDIRECT", "ABORTED", "FAULT", "NOT_RUN", "ERROR"];
    if !KNOWN.contains(&v.as_str()) {
        return Err(format!("unknown verdict '{v}' (one of {})", KNOWN.join(", ")));
    }
    Ok((v, PathBuf::from(f)))
}

/// The global packet number (0-based over all captures) that `--trace`
/// names. `CAPTURE:N` is resolved by counting the packets of the captures
/// before CAPTURE, and N is checked against CAPTURE's own count.
fn trace_index(spec: &str, captures: &[PathBuf]) -> Result<u64> {
    let number = |n: &str| {
        n.parse::<u64>().with_context(|| {
            format!(
                "--trace {}: expected N or CAPTURE:N with N a packet number",
                xdpqual::util::escape::terminal(spec)
            )
        })
    };
    let Some((cap, n)) = spec.rsplit_once(':') else { return number(spec) };
    let n = number(n)?;
    let position = captures
        .iter()
        .position(|c| c.as_os_str() == cap || c.file_name().is_some_and(|f| f == cap))
        .or_else(|| cap.parse::<usize>().ok().filter(|&i| i < captures.len()))
        .with_context(|| {
            let names: Vec<String> = captures.iter().map(|c| c.display().to_string()).collect();
            format!(
                "--trace {}: no capture named {} (captures: {})",
                xdpqual::util::escape::terminal(spec),
                xdpqual::util::escape::terminal(cap),
                xdpqual::util::escape::terminal(&names.join(", "))
            )
        })?;
    let count = |path: &PathBuf| -> Result<u64> {
        let reader = xdpqual::capture::CaptureReader::open(path)
            .with_context(|| format!("--trace: reading {}", path.display()))?;
        let mut n = 0u64;
        for item in reader {
            item.with_context(|| format!("--trace: reading {}", path.display()))?;
            n += 1;
        }
        Ok(n)
    };
    let mut before = 0u64;
    for c in &captures[..position] {
        before += count(c)?;
    }
    let own = count(&captures[position])?;
    if n >= own {
        bail!(
            "--trace {}: {} holds {own} packets (0..{})",
            xdpqual::util::escape::terminal(spec),
            captures[position].display(),
            own.saturating_sub(1)
        );
    }
    Ok(before + n)
}

pub(crate) fn run(mut args: Args) -> Result<ExitCode> {
    if let Some(p) = args.json.take() {
        crate::output::deprecated("--json FILE", "--packets-json FILE");
        args.packets_json = Some(p);
    }
    let format = if args.summary_json {
        crate::output::deprecated("--summary-json", "--format json");
        Format::Json
    } else {
        args.format
    };
    let (path, section) = split_target(&args.program);
    let obj = load_target(&path, &args.load.options(section.as_deref()))?;
    let program = match &section {
        Some(s) => obj.program(Some(s)).with_context(|| {
            format!("{}: no XDP program or section named '{s}'", path.display())
        })?,
        None => obj.program(None).context("the object has no XDP program")?,
    };
    let name = program.name.clone();
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let conntrack = xdpqual::conntrackfile::setup_for(
        &obj,
        args.load.btf.as_deref(),
        args.conntrack.as_deref(),
    )?;
    // The kernel's conntrack table is one for all CPUs; workers would each
    // hold their own.
    let threads = if conntrack.is_some() && threads > 1 {
        eprintln!(
            "xdpqual: note: running 1 worker, not {threads}: the program uses the conntrack \
             table, which all packets share"
        );
        1
    } else {
        threads
    };
    let plan = plan(&obj, &ParallelOptions { threads, allow_shared_state: args.parallel_unsafe });
    if let Some(why) = &plan.downgraded {
        eprintln!("xdpqual: note: {}", xdpqual::util::escape::terminal(why));
    }
    let jit = args.engine == EngineKind::Jit;
    let fib = xdpqual::fibfile::from_args(args.fib.as_deref(), args.fib_from_netns.as_deref())?;
    let fallback_reported = std::sync::Once::new();
    let build = |cpu: usize, ncpus: usize| -> Result<Engine> {
        let cfg = EngineConfig {
            insn_budget: args.insn_budget,
            cpu,
            ncpus,
            jit,
            fib: fib.clone(),
            conntrack: conntrack.clone(),
            kernel: xdpqual::backends::engine::host_kernel_release(),
            ..Default::default()
        };
        let mut engine = Engine::new(&obj, Some(&name), cfg)
            .with_context(|| format!("{}: the engine cannot run '{name}'", path.display()))?;
        mapfile::apply(&mut engine, &obj, &args.maps)?;
        engine.snapshot_maps();
        if let ExecMode::Fallback { reason } = engine.exec_mode() {
            fallback_reported.call_once(|| {
                eprintln!(
                    "xdpqual: '{}' runs in the interpreter: the JIT cannot compile it ({})",
                    xdpqual::util::escape::terminal(&name),
                    xdpqual::util::escape::terminal(&reason.to_string())
                )
            });
        }
        Ok(engine)
    };
    let json_stdout = args.packets_json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let opts = ReplayOptions {
        ingress_ifindex: args.ingress_ifindex,
        rx_queue_index: args.rx_queue,
        fresh_maps: args.fresh_maps,
        json: args.packets_json.clone().map(|p| {
            if json_stdout {
                PathBuf::from("/dev/stdout")
            } else {
                p
            }
        }),
        write_pcap: args.write_pcap.clone(),
        trace: args.trace.as_deref().map(|t| trace_index(t, &args.captures)).transpose()?,
        progress: true,
    };
    let report = replay_parallel(&obj, &name, &build, &args.captures, &opts, plan)?;
    if let Some(t) = &report.trace {
        eprintln!("{}", xdpqual::util::escape::terminal_block(t));
    } else if let Some(t) = &args.trace {
        bail!(
            "--trace {}: the captures hold no such packet (they were read to the end)",
            xdpqual::util::escape::terminal(t)
        );
    }
    let summary = report.summary.clone();
    if let Some(p) = &args.dump_maps {
        let form = if args.raw { mapfile::DumpForm::Raw } else { mapfile::DumpForm::Typed };
        mapfile::write_dump(&report.merged_engine()?, &obj, form, p)?;
    }
    // With the packets on stdout, the summary is printed only where
    // --output sends it.
    if !json_stdout || !args.output.is_stdout() {
        args.output.emit(&match format {
            Format::Json => crate::output::json(&summary)?,
            _ => xdpqual::util::escape::terminal_block(&summary.render()),
        })?;
    }
    let failed_files = summary.captures.iter().filter(|c| c.error.is_some()).count();
    if failed_files > 0 {
        eprintln!(
            "xdpqual: {failed_files} capture(s) could not be read to the end; see the summary"
        );
        return Ok(ExitCode::from(2));
    }
    let faults: u64 = summary.captures.iter().flat_map(|c| c.faults.values()).sum();
    let errors: u64 = summary.captures.iter().flat_map(|c| c.errors.values()).sum();
    if faults + errors > 0 {
        let allowed = if args.allow_faults { " (allowed by --allow-faults)" } else { "" };
        eprintln!(
            "xdpqual: {faults} packet(s) faulted and the backend failed on {errors}{allowed}; the reasons are listed above"
        );
        if !args.allow_faults {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
