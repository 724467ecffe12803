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
    /// Set a map's max_entries before anything is created from the object, NAME=N
    /// (repeatable): what the project's own loader does at run time with
    /// bpf_map__set_max_entries (xdp-tools builds its maps with max_entries 0).
    #[arg(long = "map-size", value_name = "NAME=N", value_parser = parse_map_size)]
    pub map_size: Vec<(String, u32)>,
}

/// `--map-size NAME=N`.
pub(crate) fn parse_map_size(s: &str) -> Result<(String, u32), String> {
    let (name, n) =
        s.split_once('=').ok_or_else(|| format!("`{s}`: expected NAME=N, e.g. tx_port=64"))?;
    let n = n.trim().parse::<u32>().map_err(|e| format!("`{s}`: N is not a count: {e}"))?;
    if name.is_empty() {
        return Err(format!("`{s}`: the map name is empty"));
    }
    Ok((name.to_string(), n))
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
            map_sizes: self.map_size.clone(),
            kconfig: xdpqual::kconfig::host_kernel_config(),
        }
    }
}
