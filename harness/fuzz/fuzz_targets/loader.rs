//! Arbitrary bytes into the loader: it must return an error or an object,
//! never panic. Every program of an object that loads then goes through the
//! offload checker on every built-in profile (what `offload-check` does with
//! a pull request's object), hXDP's modelled compile included: a report,
//! never a panic.
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

fn profiles() -> &'static [nic_model::Profile] {
    static P: std::sync::OnceLock<Vec<nic_model::Profile>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        ["nfp-corenic", "nfp-agilio-ebpf", "netdevsim", "hxdp"]
            .iter()
            .map(|n| nic_model::Profile::load(n).expect("built-in profile"))
            .collect()
    })
}

fuzz_target!(init: tolerate_aya_obj_panics(), |data: &[u8]| {
    let Ok(obj) = xdpqual::loader::load_object_bytes(data, Path::new("fuzz.o")) else { return };
    for p in &obj.programs {
        let spec = xdpqual::backends::nic::offload_spec(&obj, p);
        for profile in profiles() {
            let _ = nic_model::check(&spec, profile);
        }
    }
});
