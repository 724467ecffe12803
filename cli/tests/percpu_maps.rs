//! Per-CPU map input: a `--map` value for a PERCPU_ARRAY / PERCPU_HASH /
//! LRU_PERCPU_HASH is one value for every CPU (as bpftool takes it) or a
//! list with one value per CPU; a list of the wrong length is an error.
//!
//! corpus/firewall.c counts verdicts in `stats` (PERCPU_ARRAY, key u32 =
//! verdict, value u64); on pcaps/firewall-2k.pcap with empty block lists it
//! passes 1573 packets and drops 427 (docs/qualify.md, corpus/expect), so a
//! slot starting at N ends at N + that count summed over the CPUs.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn xdpqual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpqual")).current_dir(root()).args(args).output().unwrap()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A fresh directory, removed when dropped.
struct Scratch(PathBuf);
impl Scratch {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("xdpqual-percpu-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

fn possible_cpus() -> usize {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    s.trim()
        .split(',')
        .filter_map(|r| r.split('-').next_back()?.parse::<usize>().ok())
        .max()
        .unwrap()
        + 1
}

/// The engine: a per-CPU list gives each worker (CPU) its own start.
#[test]
fn engine_takes_one_value_or_one_per_cpu() {
    let dir = scratch("engine");
    let list = write(
        dir.path(),
        "list.json",
        r#"{"entries":[{"key":2,"value":[100,7]},{"key":1,"value":5}]}"#,
    );
    let dump = dir.path().join("dump.json");
    let o = xdpqual(&[
        "replay",
        "corpus/build/firewall.v3.o",
        "pcaps/firewall-2k.pcap",
        "--threads",
        "2",
        "--map",
        &format!("stats={list}"),
        "--dump-maps",
        dump.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    let stats = d["maps"].as_array().unwrap().iter().find(|m| m["name"] == "stats").unwrap();
    // The dump is typed from BTF (firewall.c: `__u32` keys, `__u64`
    // values), one value per CPU, as a --map file takes them.
    assert_eq!(d["schema"], "xdpqual.maps/2");
    let slot = |k: u64| -> Vec<u64> {
        let e = stats["entries"].as_array().unwrap().iter().find(|e| e["key"] == k).unwrap();
        e["value"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
    };
    let pass = slot(2);
    let drop = slot(1);
    assert_eq!((pass.len(), drop.len()), (2, 2));
    assert_eq!(pass.iter().sum::<u64>(), 100 + 7 + 1573, "{pass:?}");
    // The single value 5 was on both CPUs.
    assert_eq!(drop.iter().sum::<u64>(), 5 + 5 + 427, "{drop:?}");

    let bad = write(dir.path(), "bad.json", r#"{"entries":[{"key":2,"value":[1,2,3]}]}"#);
    let o = xdpqual(&[
        "replay",
        "corpus/build/firewall.v3.o",
        "pcaps/firewall-2k.pcap",
        "--threads",
        "2",
        "--map",
        &format!("stats={bad}"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("map 'stats' (PERCPU_ARRAY), key 2: 3 values given") && err.contains("2 here"),
        "{err}"
    );
}

/// The host kernel takes the same files (BPF_MAP_UPDATE_ELEM wants
/// round_up(value_size, 8) bytes per possible CPU, kernel/bpf/syscall.c
/// bpf_map_value_size) and agrees with the engine on every packet and on
/// the maps at the end.
#[test]
fn host_kernel_takes_one_value_or_one_per_cpu() {
    let dir = scratch("host");
    let n = possible_cpus();
    let per_cpu: Vec<String> = (0..n).map(|c| (100 + c).to_string()).collect();
    let one =
        write(dir.path(), "one.json", r#"{"entries":[{"key":2,"value":100},{"key":1,"value":5}]}"#);
    let list = write(
        dir.path(),
        "list.json",
        &format!(r#"{{"entries":[{{"key":2,"value":[{}]}}]}}"#, per_cpu.join(",")),
    );
    for file in [one, list] {
        let o = xdpqual(&[
            "diff",
            "corpus/build/firewall.v3.o",
            "pcaps/firewall-2k.pcap",
            "--backends",
            "vm,host",
            "--map",
            &format!("stats={file}"),
            "--json",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() == Some(2) && err.contains("could not run: unavailable") {
            xdpqual::util::skip(format_args!("the host backend is unavailable: {err}"));
            return;
        }
        assert_eq!(o.status.code(), Some(0), "{file}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["backends"], serde_json::json!(["vm", "host"]));
        assert_eq!(v["agreed"].as_u64(), Some(2000), "{v}");
        assert_eq!(v["map_mismatches"], serde_json::json!([]), "{v}");
    }
    let wrong: Vec<String> = (0..n + 1).map(|c| c.to_string()).collect();
    let bad = write(
        dir.path(),
        "bad.json",
        &format!(r#"{{"entries":[{{"key":2,"value":[{}]}}]}}"#, wrong.join(",")),
    );
    let o = xdpqual(&[
        "diff",
        "corpus/build/firewall.v3.o",
        "pcaps/firewall-2k.pcap",
        "--backends",
        "vm,host",
        "--map",
        &format!("stats={bad}"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("key 2: {} values given", n + 1))
            && err.contains(&format!("{n} here")),
        "{err}"
    );
}
