//! `xdpqual init`: a first xdpqual.toml for the objects and captures under
//! a directory (harness/src/qualify/init.rs does the work).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use xdpqual::qualify::init;

const AFTER_HELP: &str = "\
Examples:
  xdpqual init                      # objects and captures under .; writes ./xdpqual.toml
  xdpqual init my-prog/ --force     # rewrite my-prog/xdpqual.toml
  xdpqual init --no-kernel          # no verdicts recorded from the host kernel

Exit status:
  0  the file was written
  2  nothing to write it from (no BPF object with an XDP program, or no capture),
     an object that cannot be read, or xdpqual.toml exists and --force was not given";

/// Write an xdpqual.toml for the BPF objects and captures found under DIR,
/// with comments, the offload profiles and, where the host kernel can run
/// them, expected verdicts recorded from it (marked as recorded).
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Directory searched (below it too, skipping target/, results/ and
    /// hidden directories); the file is written there.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Replace an existing DIR/xdpqual.toml.
    #[arg(long)]
    pub force: bool,
    /// Do not record expected verdicts from the host kernel.
    #[arg(long)]
    pub no_kernel: bool,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let path = args.dir.join("xdpqual.toml");
    // symlink_metadata: a dangling symlink named xdpqual.toml is still
    // something not to overwrite.
    if path.symlink_metadata().is_ok() && !args.force {
        bail!("{} already exists; not overwriting it (pass --force to replace it)", path.display());
    }
    let found = init::discover(&args.dir)?;
    if found.objects.is_empty() {
        bail!(
            "no BPF object (an ELF `.o` file for the BPF machine) under {}; build one first, e.g. `clang -O2 -g -target bpf -c prog.c -o prog.o`, then run `xdpqual init` again",
            args.dir.display()
        );
    }
    if found.captures.is_empty() {
        bail!(
            "no capture (`.pcap`, `.pcapng`) under {}; record one, or generate one with `xdpqual gen-pcap --profile mixed --packets 2000 --seed 1 -o {}`, then run `xdpqual init` again",
            args.dir.display(),
            args.dir.join("mixed.pcap").display()
        );
    }
    let plan = init::plan(&args.dir, &found, !args.no_kernel, xdpqual::qualify::now_unix())?;
    let text = init::render(&plan);
    // The file must be one `qualify` reads: checked under a temporary name
    // in the same directory (paths in it are relative to that directory)
    // before it replaces anything.
    let tmp = args.dir.join(format!(".xdpqual.toml.init-{}", std::process::id()));
    xdpqual::util::write_atomic(&tmp, text.as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    if let Err(e) = xdpqual::qualify::config::load(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        bail!("internal: the configuration written does not load ({e}); nothing was changed");
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    for line in init::describe(&plan, &path) {
        println!("{}", xdpqual::util::escape::terminal(&line));
    }
    Ok(ExitCode::SUCCESS)
}
