//! Arbitrary bytes into the loader: it must return an error or an object,
//! never panic.
//!
//! aya-obj 0.2 panics on some hostile input (it indexes section data with
//! values from the file); the loader catches those panics and reports
//! `LoadError::ParserPanic`, by design. libfuzzer-sys's panic hook aborts on
//! every panic, even one that would be caught, so this target swaps in a
//! hook that lets panics raised inside aya-obj unwind to the loader's
//! `catch_unwind`. A panic anywhere else, or one that escapes the loader,
//! still aborts and is reported as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn tolerate_aya_obj_panics() {
    let aborting = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_aya_obj = info.location().is_some_and(|l| l.file().contains("/aya-obj-"));
        if !in_aya_obj {
            aborting(info);
        }
    }));
}

fuzz_target!(init: tolerate_aya_obj_panics(), |data: &[u8]| {
    let _ = xdpqual::loader::load_object_bytes(data, Path::new("fuzz.o"));
});
