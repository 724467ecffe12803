//! The one output convention of every command that prints a report:
//! `--format text|json|markdown` (the subset the command can write) and
//! `--output FILE` (the same bytes stdout would get, written atomically).
//! The flags each command used before (`--json`, `--summary-json`, ...)
//! stay for one release as hidden aliases that print a note on stderr.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// What a command's report is printed as. Every command names the subset
/// it writes with [`Format::parser`], so `--help` lists only those and an
/// unsupported one is a usage error (exit 2) from clap itself.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The human-readable table or listing (the default).
    Text,
    /// One JSON document whose `schema` field names its layout and version.
    Json,
    /// GitHub-flavoured Markdown, for a PR comment or job summary; names
    /// from programs and files are escaped.
    #[value(alias = "md")]
    Markdown,
}

impl Format {
    /// The value parser of a command's `--format`: only `supported` are
    /// accepted (and listed in `--help`).
    pub(crate) fn parser(
        supported: &'static [Format],
    ) -> impl clap::builder::TypedValueParser<Value = Format> {
        use clap::builder::TypedValueParser as _;
        use clap::ValueEnum as _;
        clap::builder::PossibleValuesParser::new(
            supported.iter().filter_map(|f| f.to_possible_value()),
        )
        .map(|s| Format::from_str(&s, false).expect("PossibleValuesParser accepted it"))
    }
}

/// `--output FILE`, shared by every command that prints a report.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputFile {
    /// Write the report to FILE instead of stdout: the same bytes, replaced
    /// atomically (a crash leaves the old file or the new one).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl OutputFile {
    /// Prints `text` on stdout, or writes it to `--output`.
    pub(crate) fn emit(&self, text: &str) -> Result<()> {
        match &self.output {
            None => {
                print!("{text}");
                Ok(())
            }
            Some(path) => xdpqual::util::write_atomic(path, text.as_bytes())
                .with_context(|| format!("--output: writing {}", path.display())),
        }
    }

    /// Whether the report goes to stdout (so nothing else may).
    pub(crate) fn is_stdout(&self) -> bool {
        self.output.is_none()
    }
}

/// A JSON document as every command prints it: pretty, with a final newline.
pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// The one-line note an old flag prints on stderr while it still works.
pub(crate) fn deprecated(old: &str, new: &str) {
    eprintln!(
        "xdpqual: note: {old} is deprecated and will be removed in the next release; use {new}"
    );
}

/// `--format`, with a deprecated boolean alias (`--json`) folded in.
pub(crate) fn with_json_alias(format: Format, json_flag: bool) -> Format {
    if json_flag {
        deprecated("--json", "--format json");
        Format::Json
    } else {
        format
    }
}
