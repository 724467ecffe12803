fn main() -> std::process::ExitCode {
    xdpqual::cli::main()
}
