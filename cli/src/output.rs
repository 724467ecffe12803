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

/// The report flags of the commands that print text or one JSON document
/// and draw a progress bar while they run (`diff`, `live`, `matrix`): one
/// definition, flattened into each, so the flags cannot drift apart.
#[derive(clap::Args, Debug, Clone)]
pub struct TextOrJsonReport {
    /// Report format: text, or json (the document's `schema` field names
    /// its layout and version, e.g. xdpqual.diff/1).
    #[arg(long, default_value = "text", value_parser = Format::parser(&[Format::Text, Format::Json]))]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputFile,
    /// No progress bar (one is drawn on stderr only while stdout and
    /// stderr are both terminals).
    #[arg(long)]
    pub quiet: bool,
    /// Deprecated: use --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    pub json: bool,
}

impl TextOrJsonReport {
    /// Sets up the progress bar as `--quiet` asks and returns the format,
    /// with the deprecated `--json` folded in (and its note printed).
    pub(crate) fn start(&self) -> Format {
        xdpqual::util::progress::enable(!self.quiet);
        with_json_alias(self.format, self.json)
    }
}
