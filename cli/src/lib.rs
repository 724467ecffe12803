//! The `xdpqual` command line: one file per subcommand.

mod baseline;
mod bench;
mod compare;
mod dashboard;
mod diff;
mod gen_pcap;
mod init;
mod inspect;
mod live;
mod load_args;
mod matrix;
mod merge;
mod offload_check;
mod output;
mod qualify;
mod replay;
mod shell;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "xdpqual", version, about = "Qualifies XDP programs before they reach production")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List an object's programs and maps and disassemble its XDP programs.
    Inspect(inspect::Args),
    /// Write an xdpqual.toml for the BPF objects and captures under a directory.
    Init(init::Args),
    /// Run the checks of xdpqual.toml on every available backend (the CI gate).
    Qualify(qualify::Args),
    /// Replay captures through a program in the engine and summarise the verdicts.
    Replay(replay::Args),
    /// Compare what the engine, rbpf and the host kernel do with each packet.
    Diff(diff::Args),
    /// Attach to a real interface, send the captures in from its peer, compare with the engine.
    Live(live::Args),
    /// Check a program against a NIC offload profile.
    OffloadCheck(offload_check::Args),
    /// Run a program in every kernel x architecture of the QEMU matrix and compare with the engine.
    Matrix(matrix::Args),
    /// Write a deterministic capture from a generator profile.
    GenPcap(gen_pcap::Args),
    /// Name a stored run as a baseline, or list runs and baselines.
    Baseline(baseline::Args),
    /// Compare a stored run with a baseline: new failures and perf regressions.
    Compare(compare::Args),
    /// Combine `qualify --shard` results into one report and history entry.
    Merge(merge::Args),
    /// Write a static HTML dashboard from the history.
    Dashboard(dashboard::Args),
    /// Measure per-packet cost on every backend side by side.
    Bench(bench::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(shell::CompletionsArgs),
    /// Print the man page, or write one page per command into a directory.
    Man(shell::ManArgs),
}

/// The exit status of a command that was interrupted by SIGINT or SIGTERM
/// (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs the CLI. Any error prints one paragraph, `xdpqual: error: ...` with
/// its cause chain, and exits with status 2.
pub fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    // The process-wide cap on map memory (engine/maps/ledger.rs).
    if let Some(v) = std::env::var_os("XDPQUAL_MAP_MEMORY") {
        match v.to_str().and_then(xdpqual::engine::maps::ledger::parse_size) {
            Some(bytes) => xdpqual::engine::maps::ledger::set_cap(bytes),
            None => {
                eprintln!(
                    "xdpqual: error: XDPQUAL_MAP_MEMORY={} is not a size in bytes (e.g. 1073741824, 512M, 2G)",
                    xdpqual::util::escape::terminal(&v.to_string_lossy())
                );
                return ExitCode::from(2);
            }
        }
    }
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args).map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => replay::run(args),
        Command::Init(args) => init::run(args),
        Command::Qualify(args) => qualify::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Live(args) => live::run(args),
        Command::OffloadCheck(args) => offload_check::run(args),
        Command::GenPcap(args) => gen_pcap::run(&args),
        Command::Baseline(args) => baseline::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Completions(args) => shell::completions(&args).map(|()| ExitCode::SUCCESS),
        Command::Man(args) => shell::man(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Names in the message come from files and programs: no
            // control character of theirs reaches the terminal.
            eprintln!("xdpqual: error: {}", xdpqual::util::escape::terminal(&error_paragraph(&e)));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the
/// previous message already contains (thiserror messages often embed it).
fn error_paragraph(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Two panics are not bugs and print nothing:
/// - the loader catches panics from aya-obj on malformed objects and reports
///   them as errors (`LoadError::ParserPanic`), so the default hook's message
///   and backtrace for those would only be noise before the real error;
/// - `println!` into a closed pipe, which ends the process (see below).
///
/// Panics from anywhere else still print as usual.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let from_aya = info.location().is_some_and(|l| l.file().contains("aya-obj"));
        if stdout_closed(info.payload()) {
            // `xdpqual ... | head`: the reader has gone, so nothing more can
            // be shown. Exit as a Unix filter killed by SIGPIPE does (128 +
            // 13), without a panic message. SIGPIPE itself stays ignored
            // (Rust's default), so that a closed socket or QEMU pipe
            // elsewhere is an error the code handles, not a silent death.
            // Result files are written atomically, so none is left half-written.
            std::process::exit(141);
        }
        if !from_aya {
            default(info);
        }
    }));
}

/// Whether a panic is `println!` failing because stdout's reader has gone
/// (the standard library panics with "failed printing to stdout: Broken pipe").
fn stdout_closed(payload: &(dyn std::any::Any + Send)) -> bool {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    text.starts_with("failed printing to stdout") && text.contains("Broken pipe")
}
