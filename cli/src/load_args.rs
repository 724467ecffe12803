//! The options every command that loads a program shares: what type an
//! untyped section is, and which kernel's BTF CO-RE relocations use.

use std::path::PathBuf;
use xdpqual::loader::{LoadOptions, ProgType, TargetBtf};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct LoadArgs {
    /// Load code sections whose name declares no program type (`xdp1`, `xdp_prog`, ...) as
    /// this type, as `bpftool prog load ... type xdp` does. `PROG.o:SECTION` does the same for
    /// the section it names.
    #[arg(long = "type", value_name = "TYPE", value_parser = prog_type_parser())]
    pub prog_type: Option<ProgType>,
    /// Resolve CO-RE relocations against this kernel BTF file (a copy of a fleet kernel's
    /// /sys/kernel/btf/vmlinux) instead of the running kernel's.
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
}

/// `--type`'s values, listed in `--help` and checked by the loader's own parser.
fn prog_type_parser() -> impl clap::builder::TypedValueParser<Value = ProgType> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(ProgType::NAMES).try_map(|s| s.parse::<ProgType>())
}

impl LoadArgs {
    /// Loader options for a command that runs the program `select` names
    /// (the `SECTION` of `PROG.o:SECTION`).
    pub fn options(&self, select: Option<&str>) -> LoadOptions {
        LoadOptions {
            prog_type: self.prog_type,
            select: select.map(str::to_string),
            list_unknown: false,
            target_btf: self.btf.clone().map_or(TargetBtf::Host, TargetBtf::File),
        }
    }
}
