//! `xdpqual completions SHELL` and `xdpqual man` (issue 18 item 2): the
//! scripts and pages come from the parser's own definition, so every
//! subcommand and option the parser accepts must appear in them.

use clap::CommandFactory;
use std::process::{Command, Stdio};

fn xdpqual(args: &[&str]) -> (i32, Vec<u8>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run xdpqual");
    (o.status.code().unwrap_or(-1), o.stdout, String::from_utf8_lossy(&o.stderr).into())
}

/// Every subcommand (but `help`) with its long options, but the hidden
/// ones (deprecated aliases, which completions and pages leave out).
fn commands() -> Vec<(String, Vec<String>)> {
    xdpqual_cli::Cli::command()
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .map(|s| {
            let longs = s
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long())
                .map(|l| format!("--{l}"));
            (s.get_name().to_string(), longs.collect())
        })
        .collect()
}

#[test]
fn completions_cover_every_command_and_option() {
    let cmds = commands();
    assert!(cmds.len() >= 15, "{cmds:?}");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = xdpqual(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        let text = String::from_utf8(out).unwrap();
        for (name, longs) in &cmds {
            assert!(text.contains(name.as_str()), "{shell}: no `{name}`");
            for l in longs {
                // fish names long options as `-l name`.
                let want = if shell == "fish" { format!("-l {}", &l[2..]) } else { l.clone() };
                assert!(text.contains(&want), "{shell}: no `{want}` of `{name}`");
            }
        }
        if shell == "bash" {
            // The script must at least parse.
            let dir = std::env::temp_dir().join(format!("xdpqual-compl-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let f = dir.join("xdpqual.bash");
            std::fs::write(&f, &text).unwrap();
            let ok = Command::new("bash").arg("-n").arg(&f).status().unwrap().success();
            assert!(ok, "bash -n rejects the completion script");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let (code, _, err) = xdpqual(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");
}

#[test]
fn man_pages_cover_every_command() {
    let (code, out, err) = xdpqual(&["man"]);
    assert_eq!(code, 0, "{err}");
    let main = String::from_utf8(out).unwrap();
    assert!(main.contains(".TH xdpqual 1"), "{main}");
    let dir = std::env::temp_dir().join(format!("xdpqual-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, _, err) = xdpqual(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for (name, longs) in commands() {
        let page = dir.join(format!("xdpqual-{name}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.contains(&format!(".TH xdpqual-{name} 1")), "{name}: {text}");
        // roff escapes '-' as '\-' in option names.
        for l in longs {
            let roff = l.replace('-', "\\-");
            assert!(text.contains(&roff), "{name}: no {l} in its page");
        }
    }
    assert!(dir.join("xdpqual.1").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
