//! The matrix definition (`vm-images/matrix.toml`): which kernels, on which
//! architectures.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The shipped default matrix.
pub const DEFAULT_MATRIX: &str = include_str!("../../../vm-images/matrix.toml");

/// A guest architecture we can boot and build the agent for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
    /// IBM Z: the big-endian cell.
    S390x,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::Aarch64, Arch::S390x];

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::S390x => "s390x",
        }
    }
    /// Debian's architecture name.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::S390x => "s390x",
        }
    }
    /// Rust target the agent is built for: static musl where Rust has a
    /// musl target, else glibc linked statically (s390x has no musl target
    /// with a prebuilt standard library).
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
            Arch::S390x => "s390x-unknown-linux-gnu",
        }
    }
    /// The machine the engine models for this cell's kernel.
    pub fn machine(self) -> crate::engine::Arch {
        match self {
            Arch::X86_64 => crate::engine::Arch::X86_64,
            Arch::Aarch64 => crate::engine::Arch::Aarch64,
            Arch::S390x => crate::engine::Arch::S390x,
        }
    }
    /// Bytes of a frame BPF_PROG_TEST_RUN puts in the linear area
    /// (xdpqual-engine's `arch` module works it out from the cache line):
    /// 3520 on x86_64 and aarch64, 3328 on s390x.
    pub fn test_run_linear(self) -> usize {
        self.machine().max_linear()
    }
    /// The byte order of the guest's memory: the kernel runs every BPF
    /// program of this cell with it, whatever the object was built for.
    pub fn big_endian(self) -> bool {
        matches!(self, Arch::S390x)
    }
    /// The architecture this xdpqual runs on, where KVM can help.
    pub fn host() -> Option<Arch> {
        std::env::consts::ARCH.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{0}`: the matrix supports x86_64, aarch64 and s390x (Debian names amd64 and arm64 are accepted too); fix the cell's `arch`")]
pub struct UnknownArch(pub String);

impl std::str::FromStr for Arch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Arch, UnknownArch> {
        match s {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            "s390x" => Ok(Arch::S390x),
            other => Err(UnknownArch(other.to_string())),
        }
    }
}

/// Where a cell's kernel comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelSource {
    /// `linux-image-<flavour>-<arch>` from Debian `suite`; no flavour means
    /// the generic `linux-image-<arch>`.
    Debian { suite: String, flavour: Option<String> },
    /// A kernel image file on this machine.
    File(PathBuf),
    /// Built from Debian's `source` package (`linux-source-X.Y`) with the
    /// config fragment `config` over `tinyconfig` (see `build.rs`).
    Build { source: String, config: PathBuf },
}

impl KernelSource {
    pub fn describe(&self) -> String {
        match self {
            KernelSource::Debian { suite, flavour: Some(f) } => format!("debian {suite} {f}"),
            KernelSource::Debian { suite, flavour: None } => format!("debian {suite}"),
            KernelSource::File(p) => p.display().to_string(),
            KernelSource::Build { source, config } => {
                format!("built from {source} with {}", config.display())
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub name: String,
    pub arch: Arch,
    pub kernel: KernelSource,
    /// A required cell that refuses the program or disagrees fails the run.
    pub required: bool,
    /// An offload cell: the program is loaded for this simulated device
    /// and the kernel's verdict is compared with the NIC model's profile
    /// of the same name, instead of running packets.
    pub offload: Option<Offload>,
}

/// Devices an offload cell can create in its guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Offload {
    /// drivers/net/netdevsim: the kernel's software model of an offload NIC.
    Netdevsim,
}

impl Offload {
    /// The NIC model profile it is compared with.
    pub fn profile(self) -> &'static str {
        match self {
            Offload::Netdevsim => "netdevsim",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: cell `{cell}`: {message}")]
    Cell { file: String, cell: String, message: String },
    #[error("reading matrix file {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no cell named `{0}` in the matrix (known: {1})")]
    NoSuchCell(String, String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    cell: Vec<RawCell>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCell {
    name: String,
    arch: String,
    debian: Option<RawDebian>,
    kernel: Option<PathBuf>,
    build: Option<RawBuild>,
    offload: Option<String>,
    #[serde(default = "yes")]
    required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    source: String,
    config: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDebian {
    suite: String,
    flavour: Option<String>,
}

/// Parses a matrix; `file` names it in errors, relative kernel paths are
/// taken from `base`.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Vec<Cell>, SpecError> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| SpecError::Parse { file: file.to_string(), message: e.to_string() })?;
    let mut cells = Vec::new();
    for c in raw.cell {
        let err = |message: String| SpecError::Cell {
            file: file.to_string(),
            cell: c.name.clone(),
            message,
        };
        if cells.iter().any(|x: &Cell| x.name == c.name) {
            return Err(err("two cells have this name".into()));
        }
        let arch = c.arch.parse::<Arch>().map_err(|e| err(e.to_string()))?;
        let kernel = match (c.debian, c.kernel, c.build) {
            (None, None, Some(b)) => {
                if !b.source.starts_with("linux-source-") {
                    return Err(err(format!("build source {:?} must be a Debian kernel source package (linux-source-X.Y)", b.source)));
                }
                // Relative to the matrix file, as `kernel` paths are.
                let config = if b.config.is_absolute() { b.config } else { base.join(b.config) };
                KernelSource::Build { source: b.source, config }
            }
            (Some(d), None, None) => {
                let ok = |s: &str| !s.is_empty() && s.chars().all(|ch| ch.is_ascii_alphanumeric() || "-.+".contains(ch));
                if !ok(&d.suite) || !d.flavour.as_deref().is_none_or(ok) {
                    return Err(err(format!("suite {:?} / flavour {:?} must be plain names like `bookworm` / `cloud`", d.suite, d.flavour)));
                }
                KernelSource::Debian { suite: d.suite, flavour: d.flavour }
            }
            (None, Some(p), None) => KernelSource::File(if p.is_absolute() { p } else { base.join(p) }),
            _ => return Err(err("give exactly one of `debian = { suite = ..., flavour = ... }`, `kernel = \"/path/to/vmlinuz\"` or `build = { source = \"linux-source-X.Y\", config = \"fragment.config\" }`".into())),
        };
        let offload = match c.offload.as_deref() {
            None => None,
            Some("netdevsim") => Some(Offload::Netdevsim),
            Some(o) => {
                return Err(err(format!(
                    "unknown offload device `{o}`: the matrix knows `netdevsim`"
                )))
            }
        };
        cells.push(Cell { name: c.name, arch, kernel, required: c.required, offload });
    }
    if cells.is_empty() {
        return Err(SpecError::Parse {
            file: file.to_string(),
            message: "the matrix has no [[cell]]".into(),
        });
    }
    Ok(cells)
}

pub fn default_cells() -> Vec<Cell> {
    parse(DEFAULT_MATRIX, "vm-images/matrix.toml (built in)", Path::new("."))
        .expect("the shipped matrix parses")
}

pub fn load(path: &Path) -> Result<Vec<Cell>, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SpecError::Io { file: path.display().to_string(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, &path.display().to_string(), base)
}

/// Keeps the cells named in `wanted` (in the matrix's order).
pub fn select(cells: Vec<Cell>, wanted: &[String]) -> Result<Vec<Cell>, SpecError> {
    if wanted.is_empty() {
        return Ok(cells);
    }
    for w in wanted {
        if !cells.iter().any(|c| &c.name == w) {
            let known = cells.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(SpecError::NoSuchCell(w.clone(), known));
        }
    }
    Ok(cells.into_iter().filter(|c| wanted.contains(&c.name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_is_four_kernels_by_two_arches_a_big_endian_and_a_netdevsim_cell() {
        let all = default_cells();
        let built: Vec<&Cell> =
            all.iter().filter(|c| matches!(c.kernel, KernelSource::Build { .. })).collect();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0].name, "netdevsim-6.12");
        assert_eq!(built[0].offload, Some(Offload::Netdevsim));
        let cells: Vec<Cell> = all
            .iter()
            .filter(|c| matches!(c.kernel, KernelSource::Debian { .. }))
            .cloned()
            .collect();
        assert_eq!(cells.len(), 9);
        let suites: std::collections::BTreeSet<_> = cells
            .iter()
            .filter(|c| c.arch != Arch::S390x)
            .map(|c| match &c.kernel {
                KernelSource::Debian { suite, flavour } => {
                    assert_eq!(flavour.as_deref(), Some("cloud"));
                    suite.clone()
                }
                _ => unreachable!("filtered to Debian cells"),
            })
            .collect();
        assert_eq!(
            suites.into_iter().collect::<Vec<_>>(),
            ["bookworm", "bullseye", "sid", "trixie"]
        );
        for a in [Arch::X86_64, Arch::Aarch64] {
            assert_eq!(cells.iter().filter(|c| c.arch == a).count(), 4);
        }
        // Debian has no `cloud` flavour on s390x: the generic kernel.
        let s390: Vec<_> = cells.iter().filter(|c| c.arch == Arch::S390x).collect();
        assert_eq!(s390.len(), 1);
        assert_eq!(s390[0].name, "s390x-6.12");
        assert_eq!(s390[0].kernel, KernelSource::Debian { suite: "trixie".into(), flavour: None });
        assert!(Arch::S390x.big_endian() && !Arch::X86_64.big_endian());
    }

    #[test]
    fn unknown_arch_says_what_is_known() {
        let e =
            parse("[[cell]]\nname='z'\narch='riscv64'\nkernel='/k'\n", "m.toml", Path::new("/"))
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("m.toml")
                && e.contains("`z`")
                && e.contains("riscv64")
                && e.contains("x86_64, aarch64 and s390x"),
            "{e}"
        );
        let ok = parse("[[cell]]\nname='z'\narch='s390x'\nkernel='/k'\n", "m.toml", Path::new("/"))
            .unwrap();
        assert_eq!(ok[0].arch, Arch::S390x);
    }

    #[test]
    fn local_kernel_cells_resolve_relative_paths() {
        let cells = parse(
            "[[cell]]\nname='mine'\narch='arm64'\nkernel='k/Image'\nrequired=false\n",
            "m.toml",
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(cells[0].kernel, KernelSource::File("/base/k/Image".into()));
        assert_eq!(cells[0].arch, Arch::Aarch64);
        assert!(!cells[0].required);
    }

    #[test]
    fn a_cell_needs_exactly_one_kernel_source() {
        let e = parse("[[cell]]\nname='x'\narch='x86_64'\n", "m.toml", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one"), "{e}");
        let e = parse(
            "[[cell]]\nname='x'\narch='x86_64'\ndebian={suite='a b'}\n",
            "m.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("plain names"), "{e}");
    }

    #[test]
    fn build_cells_take_a_source_package_and_a_fragment() {
        let cells = parse(
            "[[cell]]\nname='b'\narch='x86_64'\nbuild={source='linux-source-6.12', config='configs/n.config'}\noffload='netdevsim'\n",
            "m.toml",
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(
            cells[0].kernel,
            KernelSource::Build {
                source: "linux-source-6.12".into(),
                config: "/base/configs/n.config".into()
            }
        );
        assert_eq!(cells[0].offload, Some(Offload::Netdevsim));
        let e = parse(
            "[[cell]]\nname='b'\narch='x86_64'\nbuild={source='gcc', config='c'}\n",
            "m.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux-source-X.Y"), "{e}");
        let e = parse(
            "[[cell]]\nname='b'\narch='x86_64'\nkernel='/k'\noffload='nfp'\n",
            "m.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown offload device `nfp`"), "{e}");
    }

    #[test]
    fn selecting_an_unknown_cell_lists_the_known_ones() {
        let e = select(default_cells(), &["7.0-riscv".into()]).unwrap_err().to_string();
        assert!(e.contains("7.0-riscv") && e.contains("6.1-x86_64"), "{e}");
        assert_eq!(select(default_cells(), &["6.1-aarch64".into()]).unwrap().len(), 1);
    }
}
