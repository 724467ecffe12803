//! The `xdpqual` binary: everything is in the `xdpqual_cli` library (the
//! command line) and the `xdpqual` library (what the commands do).

fn main() -> std::process::ExitCode {
    xdpqual_cli::main()
}
