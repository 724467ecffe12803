//! `xdpqual completions SHELL` and `xdpqual man`: shell completion scripts
//! and roff man pages, generated from the same clap definition the parser
//! uses, so they cannot drift from the real options.

use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  xdpqual completions bash > ~/.local/share/bash-completion/completions/xdpqual
  xdpqual completions zsh > ~/.zfunc/_xdpqual
  xdpqual completions fish > ~/.config/fish/completions/xdpqual.fish

Exit status: 0 on success, 2 on a usage error.")]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  xdpqual man --out-dir /usr/local/share/man/man1   (xdpqual.1, xdpqual-replay.1, ...)
  xdpqual man | man -l -                           (read the main page now)

Exit status: 0 on success, 2 if a page cannot be written.")]
pub struct ManArgs {
    /// Write one page per command (xdpqual.1, xdpqual-replay.1, ...) into
    /// this directory instead of printing xdpqual.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub(crate) fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = crate::Cli::command();
    // Into memory first: clap_complete panics when its writer fails (a
    // closed pipe), and a failed write here is an ordinary error.
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "xdpqual", &mut out);
    write_stdout(&out)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

pub(crate) fn man(args: &ManArgs) -> Result<()> {
    let cmd = crate::Cli::command();
    let Some(dir) = &args.out_dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return write_stdout(&out);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("xdpqual".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("xdpqual-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        let path = dir.join(format!("{name}.1"));
        xdpqual::util::write_atomic(&path, &out)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
