//! xdpqual: qualifies XDP programs before they reach production.
//!
//! The crate is laid out the way a packet flows through the tool:
//! - [`isa`]: the eBPF instruction set shared by everything below;
//! - `loader`: BPF ELF objects into programs, maps and line info;
//! - `engine`: our kernel-exact interpreter (the sandbox for untrusted programs);
//! - `backends`: each place a program can run (engine, rbpf, host kernel, ...);
//! - `replay`, `diff`, `report`: what the user sees.

pub mod backends;
pub mod bench;
pub mod capture;
pub mod compare;
pub mod dashboard;
pub mod diff;
pub mod history;
pub mod matrix;
pub mod offload;
pub mod pcapgen;
pub mod qualify;
pub mod replay;
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
