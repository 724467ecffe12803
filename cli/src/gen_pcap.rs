//! `xdpqual gen-pcap`: write a deterministic capture from a generator profile.

use std::path::PathBuf;
use std::process::ExitCode;

use xdpqual::capture::TsPrecision;
use xdpqual::pcapgen::{self, Profile};

/// Generate a deterministic pcap (same arguments, same bytes, on any machine).
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  xdpqual gen-pcap --profile mixed --packets 2000 --seed 1 -o mixed.pcap
  xdpqual gen-pcap --profile firewall --packets 2000 -o firewall-2k.pcap
  xdpqual gen-pcap --profile tiny --packets 100000 --nanosecond -o tiny.pcap

Exit status:
  0  the capture was written
  2  usage error, or the file could not be written")]
pub struct Args {
    /// Traffic profile: mixed (all protocol classes and hard cases), firewall
    /// (TCP/UDP/ICMP partly matching a blocklist), tiny (64-byte UDP).
    #[arg(long, default_value = "mixed")]
    pub profile: Profile,
    /// Number of packets.
    #[arg(long, default_value_t = 2000)]
    pub packets: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output pcap file (replaced atomically).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Write nanosecond timestamps (pcap magic a1b23c4d) instead of microseconds.
    #[arg(long)]
    pub nanosecond: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let precision =
        if args.nanosecond { TsPrecision::Nanosecond } else { TsPrecision::Microsecond };
    let n = pcapgen::write_profile_pcap(
        &args.output,
        args.profile,
        args.packets,
        args.seed,
        precision,
    )?;
    eprintln!(
        "wrote {n} packets (profile {}, seed {}) to {}",
        args.profile,
        args.seed,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
