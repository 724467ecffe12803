//! Arbitrary bytes into the loader: it must return an error or an object,
//! never panic.
//!
//! The loader catches aya-obj panics itself (`LoadError::ParserPanic`).
//! libfuzzer-sys installs a panic hook that aborts even on panics that are
//! caught, so the hook is replaced by a silent one here: a panic the loader
//! catches then counts as handled, and one that escapes still unwinds into
//! libfuzzer-sys, which aborts and reports it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Once;

static QUIET: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let _ = xdpqual::loader::load_object_bytes(data, Path::new("fuzz.o"));
});
