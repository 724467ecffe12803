//! Arbitrary bytes into the loader: it must return an error or an object,
//! never panic. aya-obj panics are caught inside the loader and reported as
//! `LoadError::ParserPanic`; that variant is a finding worth a look too, so
//! a corpus entry that produces it should be turned into an ELF check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = xdpqual::loader::load_object_bytes(data, Path::new("fuzz.o"));
});
