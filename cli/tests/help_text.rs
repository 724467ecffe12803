//! Issue 18 item 2: every subcommand's `--help` has a line for each
//! argument, an "Examples:" section and its exit statuses. Walked from the
//! parser's own definition, so a new option without help, or a new
//! command without examples, fails here instead of rotting.

use clap::CommandFactory;

/// Every command below the top (recursively), with its path for messages.
fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let p = format!("{path} {}", sub.get_name());
        out.push((p.clone(), sub.clone()));
        walk(sub, &p, out);
    }
}

fn all() -> Vec<(String, clap::Command)> {
    let mut v = Vec::new();
    walk(&xdpqual_cli::Cli::command(), "xdpqual", &mut v);
    v
}

#[test]
fn every_argument_has_help() {
    let mut missing = Vec::new();
    for (path, cmd) in all() {
        for a in cmd.get_arguments() {
            // clap's own --help/--version carry their text.
            let id = a.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let text = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            if text.trim().is_empty() {
                missing.push(format!("{path}: {id}"));
            }
        }
    }
    assert!(missing.is_empty(), "arguments without help text:\n  {}", missing.join("\n  "));
}

#[test]
fn every_subcommand_has_examples_and_exit_statuses() {
    let mut missing = Vec::new();
    let top = xdpqual_cli::Cli::command();
    for sub in top.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        let after = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        let Some(ex) = after.find("Examples:") else {
            missing.push(format!("{name}: no \"Examples:\" section"));
            continue;
        };
        // At least two example lines, each running this very command.
        let examples = after[ex..]
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter(|l| l.trim_start().starts_with(&format!("xdpqual {name}")))
            .count();
        if examples < 2 {
            missing
                .push(format!("{name}: {examples} example(s) of `xdpqual {name}`, want 2 or more"));
        }
        if !after.contains("Exit status:") || !after.contains("0") {
            missing.push(format!("{name}: no \"Exit status:\" list"));
        }
    }
    assert!(missing.is_empty(), "--help sections missing:\n  {}", missing.join("\n  "));
}

/// The same check through the real binary's `--help` output, so the text is
/// what a user sees (clap may drop `after_help` under `-h`; `--help` is the
/// documented form).
#[test]
fn help_output_shows_examples_and_exit_statuses() {
    for (path, _) in all().into_iter().filter(|(p, _)| p.matches(' ').count() == 1) {
        let sub = path.trim_start_matches("xdpqual ");
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_xdpqual"))
            .args([sub, "--help"])
            .output()
            .expect("run xdpqual");
        assert_eq!(o.status.code(), Some(0), "{sub} --help");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("Examples:") && text.contains("Exit status:"),
            "{sub} --help:\n{text}"
        );
    }
}
