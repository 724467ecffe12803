//! What xdpqual's own tests and benchmarks share, and nothing the product
//! runs: a dev-dependency only, never shipped in the binary.
//!
//! - [`conformance`]: reads the bpf_conformance suite's `.data` files into
//!   programs, memory and the expected result;
//! - [`pair`]: the engine and the host kernel side by side for one program,
//!   one packet at a time, for property tests that make their own packets.
//!
//! It sits above the `xdpqual` library (it drives backends through it) and
//! must not be a normal dependency of any crate.

pub mod conformance;
pub mod pair;
