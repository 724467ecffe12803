//! Each place a program can run.

pub mod host;
