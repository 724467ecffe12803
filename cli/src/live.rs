//! `xdpqual live PROG.o CAPTURE... [--isolate | --iface IF [--peer IF]] --mode drv|skb|hw [--replace]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use xdpqual::backends::live::{self, Endpoint, LiveOptions, LiveReport, XdpMode};
use xdpqual::loader::load_target;
use xdpqual::mapfile::MapInit;
use xdpqual::replay::split_target;

use crate::output::{Format, TextOrJsonReport};

/// Attach the program to a real interface, send the captures into it from
/// its peer, and compare where each frame went with the engine. Exit 0 when
/// all agree, 1 on any mismatch, 2 when the run could not be done.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual live prog.o capture.pcap                      (own netns and veth pair)
  xdpqual live prog.o capture.pcap --iface veth0 --peer veth1 --mode skb
  xdpqual live prog.o capture.pcap --format json --output live.json

Exit status:
  0  every frame went where the engine says and the maps agree
  1  a frame or a map disagrees with the engine
  2  the run could not be done (no privileges, no such interface, a
     program already attached without --replace), or a usage or input error")]
pub struct Args {
    /// PROG.o[:SECTION]
    pub program: String,
    #[command(flatten)]
    pub load: crate::load_args::LoadArgs,
    /// pcap or pcapng files whose frames are sent in from the peer.
    #[arg(required = true)]
    pub captures: Vec<PathBuf>,
    /// The interface the program is attached to. Without it, --isolate.
    #[arg(long)]
    pub iface: Option<String>,
    /// Build a network namespace and veth pair of our own for the run
    /// (`xdpqual-<pid>-<n>`, `xq<pid>_<n>a`/`b`; IPv6 on but without
    /// autoconfiguration) and remove them afterwards. The default when no
    /// --iface is given.
    #[arg(long, conflicts_with_all = ["iface", "peer", "netns", "peer_netns", "replace"])]
    pub isolate: bool,
    /// skb (generic), drv (native) or hw (offload).
    #[arg(long, default_value = "drv")]
    pub mode: XdpMode,
    /// The interface frames are sent from: the other end of a veth pair, or
    /// the link partner's port on this host. Default: --iface's veth peer.
    #[arg(long, requires = "iface")]
    pub peer: Option<String>,
    /// Network namespace of --iface (name under /run/netns, or a path).
    #[arg(long)]
    pub netns: Option<String>,
    /// Network namespace of --peer.
    #[arg(long)]
    pub peer_netns: Option<String>,
    /// Replace a program already attached; it is put back afterwards.
    #[arg(long)]
    pub replace: bool,
    /// Fill a map before the run, in the kernel and the engine:
    /// NAME=FILE.json (repeatable; format in docs/maps-json.md).
    #[arg(long = "map", value_name = "NAME=FILE")]
    pub maps: Vec<MapInit>,
    /// Microseconds to wait for a frame after the program ran on it.
    #[arg(long, default_value_t = 2000)]
    pub settle_us: u64,
    /// Send at most this many frames of each capture.
    #[arg(long)]
    pub max_packets: Option<u64>,
    /// Details are printed for at most this many mismatches.
    #[arg(long, default_value_t = 10)]
    pub max_reported: usize,
    /// `--format text|json` (the JSON's `schema` field: xdpqual.live/1), `--output`, `--quiet`.
    #[command(flatten)]
    pub report: TextOrJsonReport,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let format = args.report.start();
    let (path, section) = split_target(&args.program);
    let obj = load_target(&path, &args.load.options(section.as_deref()))?;
    let program = obj
        .program(section.as_deref())
        .with_context(|| format!("{}: no such XDP program", path.display()))?
        .clone();
    if args.iface.is_none() && (args.netns.is_some() || args.peer_netns.is_some()) {
        anyhow::bail!("--netns and --peer-netns name the namespaces of --iface and --peer; give --iface too, or neither for --isolate");
    }
    let isolate = args.iface.is_none();
    let (iface, peer) = match (&args.iface, &args.peer) {
        (Some(i), Some(p)) => {
            (Endpoint::new(i, args.netns.as_deref()), Endpoint::new(p, args.peer_netns.as_deref()))
        }
        (Some(i), None) => {
            let iface = Endpoint::new(i, args.netns.as_deref());
            let peer = live::veth_peer(&iface)?;
            (iface, peer)
        }
        // Replaced by run_isolated with the ends it builds.
        _ => (Endpoint::new("unset", None), Endpoint::new("unset", None)),
    };
    let opts = LiveOptions {
        iface,
        peer,
        mode: args.mode,
        replace: args.replace,
        maps: args.maps.clone(),
        settle: Duration::from_micros(args.settle_us),
        max_reported: args.max_reported,
        max_packets: args.max_packets,
    };
    let report = if isolate {
        live::run_isolated(&obj, &program, &args.captures, &opts)?
    } else {
        live::run(&obj, &program, &args.captures, &opts)?
    };
    args.report.output.emit(&match format {
        Format::Json => crate::output::json(&report)?,
        _ => xdpqual::util::escape::terminal_block(&render(&report)),
    })?;
    Ok(if report.agrees() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn render(r: &LiveReport) -> String {
    let mut s = format!(
        "live run of {} on {} ({} mode, driver {}, MTU {}, kernel {}), frames sent from {}\n  {}\n",
        r.program, r.iface, r.mode, r.driver[0], r.mtu, r.kernel, r.peer, r.observation
    );
    s.push_str(&format!(
        "  verdicts observed by: {}\n",
        match r.observation_method {
            live::observe::Method::Fexit => "fexit (exact)".to_string(),
            live::observe::Method::Tagging =>
                format!("tagging ({})", r.observation_fallback.as_deref().unwrap_or("")),
        }
    ));
    for (k, v) in &r.actions {
        s.push_str(&format!("  fexit {k:<26} {v}\n"));
    }
    for n in &r.notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    for m in &r.mismatches {
        s.push_str(&format!("MISMATCH {} packet {}", m.capture, m.index));
        if let Some(f) = &m.flow {
            s.push_str(&format!(" ({f})"));
        }
        s.push_str(&format!(
            "\n    engine: {}\n      live: {}\n    {}\n",
            m.engine.verdict,
            m.live.label(),
            m.detail.trim_end()
        ));
    }
    for mm in &r.map_mismatches {
        s.push_str(&format!("MAP MISMATCH {mm}\n"));
    }
    if let Some(why) = &r.maps_inexact {
        s.push_str(&format!("{why}\n"));
        for d in &r.map_differences_inexact {
            s.push_str(&format!("  map differs (not called a mismatch): {d}\n"));
        }
    }
    for mm in &r.map_nondeterministic {
        s.push_str(&format!(
            "map differs (nondeterministic: the program reads time or random numbers): {mm}\n"
        ));
    }
    for u in &r.unattributed_examples {
        s.push_str(&format!(
            "unattributed: {} seen at {}{}\n",
            u.protocol,
            u.seen.label(),
            u.turn_of.map(|i| format!(" in the turn of packet {i}")).unwrap_or_default()
        ));
    }
    for n in &r.not_sent_examples {
        s.push_str(&format!("not sent: {} packet {}: {}\n", n.capture, n.index, n.reason));
    }
    for e in &r.capture_errors {
        s.push_str(&format!("capture error: {e}\n"));
    }
    s.push_str(&format!("{} packets read, {} sent, {} not sent\n", r.packets, r.sent, r.not_sent));
    for (k, v) in &r.counts {
        s.push_str(&format!("  {k:<32} {v}\n"));
    }
    s.push_str(&format!(
        "{} agree, {} mismatch, {} nondeterministic; {} late, {} unattributed; {} foreign frames in, {} out, {} foreign runs, {} unexplained runs; {:.0} packets/s (one frame in flight)\n",
        r.tally.agreed, r.tally.mismatch_count, r.tally.nondeterministic, r.late_arrivals, r.unattributed, r.foreign.into_iface, r.foreign.from_iface, r.foreign_runs, r.foreign.unexplained_runs, r.packets_per_s
    ));
    s
}
