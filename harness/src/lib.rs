//! xdpqual: qualifies XDP programs before they reach production.
//!
//! This library is what the `xdpqual` command does; the command line itself
//! (clap, terminal output, exit codes) is the `xdpqual-cli` crate above it.
//! The crates below it are re-exported at the paths the code has always
//! used: [`isa`] (instructions), [`program`] and [`loader`] (objects into
//! linked programs), [`engine`] (the kernel-exact sandbox).
//!
//! Modules, from the bottom up (none imports one above it):
//! - `util`, `verdict`, `capture`, `compare`, `mapfile`, `pcapgen`: shared
//!   helpers, verdicts, reading and writing captures, comparing two
//!   backends' results, `--map` files, generating captures;
//! - `backends`: each place a program can run, behind the `Backend` trait;
//! - `replay`, `diff`, `bench`, `offload`, `matrix`: one program through one
//!   or all backends, timed, checked for offload, or in QEMU kernels;
//! - `report`: a run's report, its renderings and performance samples;
//! - `history`: runs and baselines in SQLite;
//! - `qualify`: the CI gate that runs `xdpqual.toml` and records a report;
//! - `dashboard`: HTML from the history.

pub mod backends;
pub mod bench;
pub mod capture;
pub mod compare;
pub mod conntrackfile;
pub mod dashboard;
pub mod diff;
pub mod fibfile;
pub mod history;
pub mod kconfig;
pub mod mapfile;
pub mod matrix;
pub mod offload;
pub mod pcapgen;
pub mod qualify;
pub mod replay;
pub mod report;
pub mod util;
pub mod verdict;

/// The engine (crate `xdpqual-engine`): interpreter, JIT, maps and helpers.
pub use xdpqual_engine as engine;
/// The instruction set, from its own crate (`crates/xdpqual-isa`), under the
/// path the rest of this crate has always used.
pub use xdpqual_isa as isa;
/// The linked program (crate `xdpqual-object`), at its old path.
pub use xdpqual_object as program;
/// The ELF/BTF loader (module `loader` of `xdpqual-object`).
pub use xdpqual_object::loader;
