//! `xdpqual diff PROG.o CAPTURE... --backends vm,rbpf,host`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use xdpqual::diff::{self, BackendKind, DiffOptions};
use xdpqual::loader::load_target;
use xdpqual::mapfile::MapInit;
use xdpqual::replay::split_target;
use xdpqual::util::escape::terminal;

use crate::output::{Format, TextOrJsonReport};

/// Exit statuses, shown by `xdpqual diff --help` and in the README.
pub(crate) const EXIT_CODES: &str = "\
Examples:
  xdpqual diff prog.o capture.pcap
  xdpqual diff prog.o capture.pcap --backends vm,host,nic:nfp-corenic --format json --output diff.json
  xdpqual diff prog.o capture.pcap --map blocklist=block.json --backends vm,rbpf

Exit status:
  0    at least two backends ran, every capture was read to the end, and
       all backends agree on every packet and on the maps
  1    a backend disagrees with the engine (a packet or a map)
  2    the comparison is incomplete or could not start: a capture could not
       be read (at all or part-way), a backend named in --backends could not
       run (the default set may skip a backend; it is listed), fewer than two
       backends ran (e.g. the host verifier rejected the program), or a usage
       or input error
  130  interrupted by SIGINT or SIGTERM (the partial counts are printed,
       marked as partial)";

/// Run the same packets through several backends and show every place they
/// disagree.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// PROG.o[:SECTION]
    pub program: String,
    #[command(flatten)]
    pub load: crate::load_args::LoadArgs,
    /// pcap or pcapng files, replayed in order; packet numbers in the report
    /// count within each capture.
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
    /// Comma-separated backends; the engine (vm) always takes part.
    /// Default vm,rbpf,host, of which an unavailable one is skipped; a
    /// backend named here that cannot run makes the exit status 2.
    #[arg(long, value_delimiter = ',')]
    pub backends: Option<Vec<BackendKind>>,
    /// Fill a map before the run, on every backend: NAME=FILE.json
    /// (repeatable; format in docs/maps-json.md).
    #[arg(long = "map", value_name = "NAME=FILE")]
    pub maps: Vec<MapInit>,
    /// The forwarding table bpf_fib_lookup consults (JSON, format in the
    /// README). The engine models it, and the host backend runs inside a
    /// network namespace built from it (and removed afterwards).
    #[arg(long, value_name = "FILE")]
    pub fib: Option<PathBuf>,
    /// Take the forwarding table from an existing network namespace
    /// (`ip netns` name): its Ethernet interfaces, routes of every table and
    /// valid neighbours, as a snapshot (what the model cannot hold is left
    /// out with a note, or refused).
    #[arg(long, value_name = "NAME")]
    pub fib_from_netns: Option<String>,
    /// Connections the engine's conntrack table holds before the first
    /// packet (JSON, format in the README); without it the table starts
    /// empty. The host kernel's table is its network namespace's, which
    /// xdpqual does not fill: run the diff in a fresh namespace (e.g.
    /// `unshare -n`) so that both start empty.
    #[arg(long, value_name = "FILE")]
    pub conntrack: Option<PathBuf>,
    /// `rx_queue_index` the program sees.
    #[arg(long, default_value_t = 0)]
    pub rx_queue: u32,
    /// `--format text|json` (the JSON's `schema` field: xdpqual.diff/1), `--output`, `--quiet`.
    #[command(flatten)]
    pub report: TextOrJsonReport,
    /// Details are printed for at most this many mismatches.
    #[arg(long, default_value_t = 10)]
    pub max_reported: usize,
}

/// Why a finished diff is not a complete comparison, one line each (empty
/// when it is one). `explicit`: the user named the backends.
pub(crate) fn incomplete(r: &diff::DiffReport, explicit: bool) -> Vec<String> {
    let mut why = Vec::new();
    for e in &r.capture_errors {
        why.push(format!("capture error: {e}"));
    }
    if explicit {
        for s in &r.skipped {
            why.push(format!(
                "backend {} was named but could not run: {}",
                s.backend.label(),
                s.reason
            ));
        }
    }
    if r.backends.len() < 2 {
        let ran: Vec<String> = r.backends.iter().map(|b| b.label()).collect();
        why.push(format!(
            "only {} ran: there is nothing to compare the engine with",
            if ran.is_empty() { "no backend".to_string() } else { ran.join(", ") }
        ));
    }
    why
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let format = args.report.start();
    let (path, section) = split_target(&args.program);
    let obj = load_target(&path, &args.load.options(section.as_deref()))?;
    let program = obj
        .program(section.as_deref())
        .with_context(|| format!("{}: no such XDP program", path.display()))?
        .clone();
    let explicit = args.backends.is_some();
    let backends = args
        .backends
        .clone()
        .unwrap_or_else(|| vec![BackendKind::Vm, BackendKind::Rbpf, BackendKind::Host]);
    let fib = xdpqual::fibfile::from_args(args.fib.as_deref(), args.fib_from_netns.as_deref())?;
    if fib.is_some() {
        if let Some(l) = backends.iter().find(|b| matches!(b, BackendKind::Live(_))) {
            anyhow::bail!(
                "a FIB (--fib / --fib-from-netns) cannot be used with {}: a live interface looks \
                 routes up in its own namespace, not in one built from the FIB, so the comparison \
                 would not be like for like",
                l.label()
            );
        }
    }
    let conntrack = xdpqual::conntrackfile::setup_for(
        &obj,
        args.load.btf.as_deref(),
        args.conntrack.as_deref(),
    )?;
    if conntrack.as_ref().is_some_and(|c| !c.seeds.is_empty())
        && backends.iter().any(|b| !matches!(b, BackendKind::Vm))
    {
        anyhow::bail!(
            "a --conntrack file with connections can only be used with --backends vm: xdpqual \
             fills the engine's table from it but not the kernel's, so another backend would \
             start from a different table"
        );
    }
    let opts = DiffOptions {
        backends,
        maps: args.maps.clone(),
        rx_queue_index: args.rx_queue,
        max_reported: args.max_reported,
        fib,
        conntrack,
    };
    // From here SIGINT/SIGTERM stop the run between packets; the partial
    // report is still printed (marked as partial) and the exit status is
    // 130. A second signal ends the process.
    let _interrupt = xdpqual_kernel::signal::InterruptGuard::install(
        xdpqual_kernel::signal::SecondSignal::EndsProcess,
    );
    eprintln!(
        "xdpqual diff: running {} on {} capture(s)",
        xdpqual::util::escape::terminal(&program.name),
        args.captures.len()
    );
    let report = diff::run(&obj, &program, &args.captures, &opts)?;
    let problems = incomplete(&report, explicit);
    args.report.output.emit(&match format {
        Format::Json => crate::output::json(&report)?,
        _ => xdpqual::util::escape::terminal_block(&render(&report)),
    })?;
    if report.interrupted {
        eprintln!(
            "xdpqual: diff interrupted; the counts above cover only the packets before the signal"
        );
        return Ok(ExitCode::from(crate::EXIT_INTERRUPTED));
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("xdpqual: incomplete diff: {}", xdpqual::util::escape::terminal(p));
        }
        return Ok(ExitCode::from(2));
    }
    Ok(if report.agrees() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn render(r: &diff::DiffReport) -> String {
    let mut s = String::new();
    let names: Vec<String> = r.backends.iter().map(|b| b.label()).collect();
    s.push_str(&format!("diff of {} on {}", terminal(&r.program), names.join(", ")));
    if let Some(k) = &r.kernel {
        s.push_str(&format!(" (host kernel {k})"));
    }
    s.push('\n');
    for d in &r.kernel_defects {
        s.push_str(&format!(
            "  kernel note: possible known defect at the kernel's rewritten insn {}: {}\n",
            d.xlated_insn, d.what
        ));
    }
    for sk in &r.skipped {
        s.push_str(&format!("  skipped {}: {}\n", sk.backend.label(), sk.reason));
    }
    for l in &r.left_out {
        s.push_str(&format!(
            "  left out: program {} of the object, which the engine cannot prepare ({}); a tail call into it fails\n",
            terminal(&l.program),
            terminal(&l.reason)
        ));
    }
    for l in &r.live {
        let how = match (&l.observation_method, &l.observation_fallback) {
            (xdpqual::backends::live::observe::Method::Fexit, _) => {
                "fexit (exact verdicts)".to_string()
            }
            (_, why) => format!("tagging ({})", why.as_deref().unwrap_or("")),
        };
        s.push_str(&format!(
            "  {}: frames sent from {}, {} sent, {} not sent; verdicts observed by {how}\n",
            l.backend, l.peer, l.sent, l.not_sent
        ));
    }
    for m in &r.mismatches {
        s.push_str(&format!("MISMATCH {} packet {}", terminal(&m.capture), m.index));
        if let Some(f) = &m.flow {
            s.push_str(&format!(" ({f})"));
        }
        s.push('\n');
        for (name, res) in &m.results {
            s.push_str(&format!("    {name:>6}: {}\n", res.verdict));
        }
        s.push_str(&format!("    {}\n", m.detail.trim_end()));
    }
    for mm in &r.map_mismatches {
        s.push_str(&format!("MAP MISMATCH {mm}\n"));
    }
    if let Some(entries) = &r.conntrack {
        s.push_str(&format!("engine conntrack table: {} connection(s)\n", entries.len()));
        for e in entries {
            s.push_str(&format!(
                "    proto {} {}:{} -> {}:{} zone {} status {:#x} mark {} timeout {}\n",
                e.proto,
                e.src,
                e.sport,
                e.dst,
                e.dport,
                e.zone,
                e.status,
                e.mark,
                e.timeout_jiffies
            ));
        }
    }
    if let Some(n) = &r.conntrack_note {
        s.push_str(&format!("{n}\n"));
    }
    for mm in &r.map_nondeterministic {
        s.push_str(&format!(
            "map differs (nondeterministic: the program reads time or random numbers): {mm}\n"
        ));
    }
    for m in &r.explained_examples {
        s.push_str(&format!(
            "explained {} packet {}: {}\n",
            terminal(&m.capture),
            m.index,
            m.detail.trim_end()
        ));
    }
    if r.explained_packets.len() > r.explained_examples.len() {
        // Every explained packet, one line per rule set (the JSON report
        // lists them one by one in `explained_packets`).
        let mut by_rules: std::collections::BTreeMap<String, Vec<String>> =
            std::collections::BTreeMap::new();
        for p in &r.explained_packets {
            by_rules
                .entry(p.rules.join("+"))
                .or_default()
                .push(format!("{}#{}", p.capture, p.index));
        }
        for (rules, pkts) in by_rules {
            s.push_str(&format!(
                "explained by {rules} ({} packets): {}\n",
                pkts.len(),
                pkts.join(" ")
            ));
        }
    }
    for (label, queues) in &r.nic_counters {
        s.push_str(&format!("{label} counters:\n"));
        for (i, c) in queues.iter().enumerate() {
            s.push_str(&format!(
                "  rxq{i}: rx {} pass {} drop {} tx {} abort {} oversize {} fault {}\n",
                c.rx, c.pass, c.drop, c.tx, c.abort, c.oversize, c.fault
            ));
        }
    }
    for e in &r.capture_errors {
        s.push_str(&format!("capture error: {e}\n"));
    }
    if r.interrupted {
        s.push_str(&format!(
            "INTERRUPTED after {} packets; partial counts, not a result: {} the same, {} mismatch, {} nondeterministic",
            r.packets, r.tally.agreed, r.tally.mismatch_count, r.tally.nondeterministic
        ));
    } else {
        s.push_str(&format!(
            "{} packets: {} agree, {} mismatch, {} nondeterministic (depend on time or random helpers, kernel variables (__ksym), or on what such runs left in maps)",
            r.packets, r.tally.agreed, r.tally.mismatch_count, r.tally.nondeterministic
        ));
    }
    if r.explained > 0 || !r.nic_counters.is_empty() {
        let by: Vec<String> = r.explained_by.iter().map(|(k, v)| format!("{k} {v}")).collect();
        s.push_str(&format!(
            ", {} differ as offload rules say ({}), {} NIC differences no rule explains",
            r.explained,
            if by.is_empty() { "none".into() } else { by.join(", ") },
            r.unexplained
        ));
    }
    s.push('\n');
    s
}
