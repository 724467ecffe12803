//! `--map-size NAME=N`: a map's max_entries set before anything is created
//! from the object, as a project's loader does at run time with
//! bpf_map__set_max_entries. tests/data/loader/run_time_size.c builds its
//! map with max_entries 0, which the kernel refuses as built.

use std::process::{Command, Output};

fn xdpqual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpqual")).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const OBJ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader/run_time_size.o");
const CAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/edges.pcap");

#[test]
fn unsized_map_is_refused_then_runs_once_sized() {
    let o = xdpqual(&["replay", OBJ, CAP]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("max_entries > 0"), "{}", text(&o.stderr));

    let o = xdpqual(&["inspect", OBJ, "--map-size", "counts=4", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["maps"][0]["name"], "counts", "{v}");
    assert_eq!(v["maps"][0]["max_entries"], 4, "{v}");

    // Every frame passes and is counted in slot 0: the engine's map and
    // the kernel's must agree at the end.
    let o = xdpqual(&["diff", OBJ, CAP, "--map-size", "counts=4", "--backends", "vm,host"]);
    let err = text(&o.stderr);
    if o.status.code() == Some(2) && err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
    } else {
        assert_eq!(o.status.code(), Some(0), "{err}\n{}", text(&o.stdout));
        assert!(text(&o.stdout).contains("0 mismatch"), "{}", text(&o.stdout));
    }
}

#[test]
fn bad_sizes_are_usage_errors() {
    for (arg, want) in [
        ("count=4", "no map of that name (its maps: counts)"),
        ("counts=0", "max_entries 0 is refused"),
        ("counts", "expected NAME=N"),
        ("counts=-1", "N is not a count"),
        ("=4", "the map name is empty"),
    ] {
        let o = xdpqual(&["replay", OBJ, CAP, "--map-size", arg]);
        assert_eq!(o.status.code(), Some(2), "{arg}");
        let err = text(&o.stderr);
        assert!(err.contains(want), "{arg}: {err}");
        assert!(!err.contains("panicked"), "{arg}: {err}");
    }
}
