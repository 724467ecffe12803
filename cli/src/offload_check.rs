//! `xdpqual offload-check PROG.o --profile P`

use std::process::ExitCode;

use anyhow::{Context, Result};

use xdpqual::loader::load_target;
use xdpqual::program::{Object, Program};
use xdpqual::replay::split_target;
use xdpqual::util::escape::{markdown, terminal, terminal_block};

use crate::output::{Format, OutputFile};

/// Check whether a program can be offloaded to a NIC profile, and if not,
/// which instruction breaks which rule. The verdict is one of: offloadable;
/// offloadable with run-time fallback (it loads, but a rule such as NFP-H4
/// makes a helper return -EINVAL on the NIC); not offloadable. Where this
/// machine can load BPF, the host kernel's verifier is asked first: a
/// program it rejects is not offloadable (KERNEL-VERIFIER).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xdpqual offload-check prog.o --profile nfp-corenic
  xdpqual offload-check prog.o --profile hxdp --schedule --no-estimate
  xdpqual offload-check prog.o --format markdown --output offload.md

Exit status:
  0  offloadable, or offloadable with run-time fallback (the rules are listed)
  1  not offloadable (the host verifier or a profile rule rejects it)
  2  usage error, an unreadable program, profile or capture")]
pub struct Args {
    /// PROG.o[:SECTION]
    pub program: String,
    #[command(flatten)]
    pub load: crate::load_args::LoadArgs,
    /// nfp-corenic, nfp-agilio-ebpf, netdevsim, hxdp, or a profile TOML file.
    #[arg(long, default_value = "nfp-corenic")]
    pub profile: String,
    /// Report format: text, json (schema xdpqual.offload-check/1) or markdown (`md`).
    #[arg(long, default_value = "text", value_parser = Format::parser(&[Format::Text, Format::Json, Format::Markdown]))]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputFile,
    /// Captures to replay for the throughput estimate; without one, 256
    /// synthetic 64-byte UDP frames are used.
    #[arg(long = "capture")]
    pub captures: Vec<std::path::PathBuf>,
    /// Skip the throughput estimate.
    #[arg(long)]
    pub no_estimate: bool,
    /// Print the VLIW schedule the profile's modelled compiler makes of the
    /// program (row by row, with what its passes removed); hXDP only.
    #[arg(long)]
    pub schedule: bool,
    /// Do not load the program into the host kernel to ask its verifier.
    #[arg(long)]
    pub no_host: bool,
}

/// The throughput estimate for a compatible program (None when the
/// profile has no perf model or the checker rejects the program).
fn throughput(obj: &Object, p: &Program, args: &Args) -> Result<Option<nic_model::Estimate>> {
    use xdpqual::backends::nic::{estimate_frames, synthetic_udp_frames, NicBackend, NicOpen};
    let NicOpen::Ready(mut nic) = NicBackend::open(obj, p, &args.profile, None)? else {
        return Ok(None);
    };
    if nic.profile.perf.is_none() {
        return Ok(None);
    }
    let frames: Vec<Vec<u8>> = if args.captures.is_empty() {
        synthetic_udp_frames(60, 256)
    } else {
        let mut v = Vec::new();
        for c in &args.captures {
            for pkt in xdpqual::capture::CaptureReader::open(c)
                .with_context(|| format!("opening capture {}", c.display()))?
            {
                v.push(pkt.with_context(|| format!("reading capture {}", c.display()))?.data);
            }
        }
        v
    };
    match estimate_frames(&mut nic, frames) {
        Ok(e) => Ok(Some(e)),
        Err(nic_model::perf::EstimateError::NoPackets) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let (path, section) = split_target(&args.program);
    let obj = load_target(&path, &args.load.options(section.as_deref()))?;
    let p = obj
        .program(section.as_deref())
        .with_context(|| format!("{}: no such XDP program", path.display()))?;
    let profile = nic_model::Profile::load(&args.profile)?;
    let spec = xdpqual::backends::nic::offload_spec(&obj, p);
    let host = if args.no_host {
        xdpqual::offload::HostVerdict::NotAsked { why: "--no-host".into() }
    } else {
        xdpqual::offload::host_verdict(&obj, p)
    };
    let report = xdpqual::offload::check(&obj, p, &profile, &host);
    let estimate = if args.no_estimate || !report.verdict.loads() {
        None
    } else {
        throughput(&obj, p, &args)?
    };
    let schedule = if args.schedule {
        let Some(o) = profile.vliw_options() else {
            anyhow::bail!(
                "--schedule needs a profile that models a VLIW compiler ([code.compiler], as `hxdp` has); `{}` has none",
                profile.profile.name
            );
        };
        Some(nic_model::vliw::schedule(&spec.insns, &o).to_text(&spec.insns, o.lanes))
    } else {
        None
    };
    let mut out = String::new();
    match args.format {
        Format::Json => {
            out = crate::output::json(&serde_json::json!({
                "schema": "xdpqual.offload-check/1",
                "check": report,
                "host_verifier": host.line(),
                "estimate": estimate,
                "schedule": schedule,
            }))?;
        }
        Format::Markdown => {
            out.push_str(&terminal_block(&report.to_markdown()));
            out.push_str(&format!("\nHost verifier: {}\n", terminal(&markdown(&host.line()))));
            if let Some(e) = &estimate {
                out.push_str(&format!("\n```\n{}```\n", terminal_block(&e.to_string())));
            }
            if let Some(t) = &schedule {
                out.push_str(&format!("\n```\n{}```\n", terminal_block(&t.to_string())));
            }
        }
        Format::Text => {
            out.push_str(&terminal_block(&report.to_text()));
            out.push_str(&format!("{}\n", terminal(&host.line())));
            if let Some(e) = &estimate {
                out.push_str(&terminal_block(&e.to_string()));
            }
            if let Some(t) = &schedule {
                out.push_str(&terminal_block(&t.to_string()));
            }
        }
    }
    args.output.emit(&out)?;
    Ok(ExitCode::from(report.verdict.exit_code() as u8))
}
