//! The places a program can run. Each backend takes the loader's
//! [`crate::program::Program`] form (or raw instructions) and reports what
//! the program did.

pub mod rbpf;
