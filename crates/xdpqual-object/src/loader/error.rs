//! Why an object could not be loaded. Every variant names the file, so a
//! message read out of context still says which input was bad.

use std::path::PathBuf;

/// A failure to turn a BPF ELF object into [`crate::Object`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not an ELF file (it does not start with the ELF magic bytes 7f 45 4c 46)")]
    NotElf { path: PathBuf },

    #[error("{path} is a truncated or malformed ELF file: {reason}")]
    MalformedElf { path: PathBuf, reason: String },

    #[error("{path} is a 32-bit ELF file; BPF objects are ELF64")]
    NotElf64 { path: PathBuf },

    #[error(
        "{path} is not a BPF object: its ELF machine is {machine} ({machine_name}), expected EM_BPF (247); \
         compile with clang -target bpf"
    )]
    WrongMachine { path: PathBuf, machine: u16, machine_name: &'static str },

    #[error(
        "{path}: section `{section}` holds code but is not a program type the loader knows: \
         libbpf 1.0 names XDP sections SEC(\"xdp\"), SEC(\"xdp.frags\"), SEC(\"xdp/devmap\") or \
         SEC(\"xdp/cpumap\"), and no longer guesses the type from names like `xdp_prog`; \
         to load it as XDP anyway (as `bpftool prog load ... type xdp` does), name it, \
         {path}:{section}, or pass --type xdp"
    )]
    UnknownSection { path: PathBuf, section: String },

    #[error(
        "{path}: section `{section}` holds a {prog_type} program (libbpf's name for the section), \
         not XDP; xdpqual runs XDP programs only, and --type xdp does not change the type of a \
         section libbpf recognises (it applies to sections of unknown type only)"
    )]
    NotXdp { path: PathBuf, section: String, prog_type: &'static str },

    #[error("{path}: cannot parse the BPF object: {reason}")]
    Parse { path: PathBuf, reason: String },

    #[error("{path}: section `{section}`, instruction {insn}: {reason}")]
    Relocation { path: PathBuf, section: String, insn: usize, reason: String },

    #[error(
        "{path} uses CO-RE relocations, which are resolved against a kernel's BTF, and the target \
         BTF {btf} cannot be used: {reason}. Give another kernel's BTF with --btf FILE (a copy of \
         that kernel's /sys/kernel/btf/vmlinux)"
    )]
    TargetBtf { path: PathBuf, btf: PathBuf, reason: String },

    #[error("{path}: section `{section}`: CO-RE relocation failed: {reason}")]
    CoreRelocation { path: PathBuf, section: String, reason: String },

    #[error("{path}: cannot link: {reason}")]
    Link { path: PathBuf, reason: String },

    #[error("{path}: program `{program}`: {error}")]
    Invalid {
        path: PathBuf,
        program: String,
        #[source]
        error: Box<super::validate::ValidationError>,
    },

    #[error("{path}: map `{map}`: {reason}")]
    InnerMap { path: PathBuf, map: String, reason: String },

    #[error("{path}: --map-size {map}=...: {reason}")]
    MapSize { path: PathBuf, map: String, reason: String },

    #[error("{path}: extern `{name}`: {reason}")]
    Extern { path: PathBuf, name: String, reason: String },

    #[error("{path}: BTF: {reason}")]
    Btf { path: PathBuf, reason: String },

    #[error("{path} has no XDP program (sections found: {others})")]
    NoXdpProgram { path: PathBuf, others: String },

    #[error(
        "{path}: the ELF parser (aya-obj) crashed on this file ({message}); the object is malformed"
    )]
    ParserPanic { path: PathBuf, message: String },
}

/// Flattens an error and its `source()` chain into one line, for errors from
/// aya-obj whose `Display` alone ("BTF error") hides the cause.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
