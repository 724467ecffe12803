//! `__ksym` extern variables (kernel data): resolved against the target
//! kernel's BTF (typed) or /proc/kallsyms (untyped), weak absent ones load
//! 0, and the engine models them as read-only regions whose reads make a
//! run nondeterministic. The objects are built from
//! tests/data/loader/ksym_*.c; the verdicts below follow from their header
//! comments.

use std::path::PathBuf;
use std::process::Command;
use xdpqual::backends::engine::{possible_cpus, run_packet};
use xdpqual::capture::{write_pcap, TsPrecision};
use xdpqual::compare::carried::CarriedNondeterminism;
use xdpqual::compare::PacketSource;
use xdpqual::engine::fault::Region;
use xdpqual::engine::{Engine, EngineConfig, Tracer};
use xdpqual::loader::{load_object, load_target, LoadOptions, TargetBtf, HOST_BTF};
use xdpqual::program::KsymKind;

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader")).join(name)
}

fn xdpqual(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xdpqual")).args(args).output().unwrap()
}

/// Whether this kernel's BTF has VAR `name` in `.data..percpu`, and
/// /proc/kallsyms lists `schedule` (read with bpftool and std, not the loader).
fn host_ready() -> Result<(), String> {
    let o = Command::new("bpftool")
        .args(["btf", "dump", "file", HOST_BTF])
        .output()
        .map_err(|e| format!("bpftool: {e}"))?;
    let dump = String::from_utf8_lossy(&o.stdout);
    let id = dump
        .lines()
        .find(|l| l.contains("] VAR 'this_cpu_off' "))
        .and_then(|l| l.strip_prefix('[')?.split(']').next().map(str::to_string))
        .ok_or_else(|| format!("{HOST_BTF} has no VAR this_cpu_off"))?;
    let percpu = dump
        .split("DATASEC '.data..percpu'")
        .nth(1)
        .is_some_and(|rest| rest.contains(&format!("type_id={id} ")));
    if !percpu {
        return Err(format!("this_cpu_off is not in {HOST_BTF}'s .data..percpu"));
    }
    let syms = std::fs::read_to_string("/proc/kallsyms").map_err(|e| e.to_string())?;
    syms.lines()
        .find(|l| l.ends_with(" schedule"))
        .filter(|l| !l.starts_with("0000000000000000"))
        .map(|_| ())
        .ok_or_else(|| "/proc/kallsyms does not show schedule's address".into())
}

fn frame(sel: u8, arg: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12] = 0x08;
    f[14] = sel;
    f[15] = arg;
    f
}

#[test]
fn the_loader_resolves_each_kind_as_libbpf_does() {
    if let Err(why) = host_ready() {
        xdpqual::util::skip(format_args!("{why}"));
        return;
    }
    let obj = load_object(&data("ksym_vars.o")).unwrap();
    let by_name = |n: &str| obj.ksyms.iter().find(|k| k.name == n).unwrap().kind.clone();
    let KsymKind::Typed { btf_id, size, percpu, .. } = by_name("this_cpu_off") else {
        panic!("{:?}", obj.ksyms)
    };
    assert_eq!((size, percpu), (8, true));
    // The address kallsyms gives, read here without the loader.
    let syms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let addr = syms
        .lines()
        .find(|l| l.ends_with(" schedule"))
        .and_then(|l| u64::from_str_radix(l.split(' ').next()?, 16).ok())
        .unwrap();
    assert_eq!(by_name("schedule"), KsymKind::Untyped { addr });
    assert_eq!(by_name("xdpqual_absent_var"), KsymKind::Absent);
    assert_eq!(by_name("xdpqual_absent_sym"), KsymKind::Absent);
    // The lddw instructions carry what libbpf hands the kernel.
    let lddw: Vec<_> = obj.programs[0].insns.iter().filter(|i| i.is_lddw()).collect();
    let typed = lddw.iter().filter(|i| i.src == 3 && i.imm == btf_id as i32).count();
    assert_eq!(typed, 3, "three loads of &this_cpu_off");
    assert!(lddw.iter().any(|i| i.src == 0 && i.imm == addr as u32 as i32), "{lddw:?}");

    // inspect lists them.
    let o = xdpqual(&["inspect", data("ksym_vars.o").to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = v["ksyms"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "{v}");
    let this = listed.iter().find(|k| k["name"] == "this_cpu_off").unwrap();
    assert_eq!(this["kind"]["kind"], "typed", "{this}");
    assert_eq!(this["kind"]["btf_id"].as_u64(), Some(u64::from(btf_id)), "{this}");
    assert_eq!(this["kind"]["percpu"], true, "{this}");
    let o = xdpqual(&["inspect", data("ksym_vars.o").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("__ksym variables (4;"), "{text}");
    assert!(text.contains(&format!("untyped, kallsyms address {addr:#x}")), "{text}");
    // A typed variable this kernel's kallsyms lacks is one its verifier
    // refuses; inspect says so.
    let in_kallsyms = syms.lines().any(|l| l.ends_with(" this_cpu_off"));
    assert_eq!(!in_kallsyms, text.contains("kallsyms does not list it"), "{text}");
}

fn write_capture(name: &str, frames: &[Vec<u8>]) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("xdpqual-ksym-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("in.pcap");
    let pkts = frames.iter().enumerate().map(|(i, f)| (i as u64 * 1000, f.clone()));
    write_pcap(&cap, TsPrecision::Microsecond, pkts).unwrap();
    (dir, cap)
}

fn diff_vm_host(obj: &str, cap: &std::path::Path) -> (Option<i32>, String, serde_json::Value) {
    let o = xdpqual(&[
        "diff",
        data(obj).to_str().unwrap(),
        cap.to_str().unwrap(),
        "--backends",
        "vm,host",
        "--format",
        "json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code(), err, v)
}

fn schedule_addr() -> Option<u64> {
    let syms = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let line = syms.lines().find(|l| l.ends_with(" schedule"))?;
    u64::from_str_radix(line.split(' ').next()?, 16).ok().filter(|a| *a != 0)
}

fn run_verdicts(e: &mut Engine, frames: &[Vec<u8>]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            let pkt =
                PacketSource { data: f.clone(), ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
            run_packet(e, &pkt, &mut xdpqual::engine::NoTrace).verdict.to_string()
        })
        .collect()
}

#[test]
fn untyped_and_absent_variables_agree_with_the_kernel() {
    let Some(addr) = schedule_addr() else {
        xdpqual::util::skip(format_args!("/proc/kallsyms does not show schedule's address"));
        return;
    };
    let low = (addr & 0xfff) as u16;
    let mut right = frame(3, low as u8);
    right[16] = (low >> 8) as u8;
    let mut wrong = right.clone();
    wrong[15] ^= 1;
    let frames = [frame(0, 0), frame(1, 0), frame(2, 0), right, wrong, frame(9, 0)];
    // Worked out in ksym_untyped.c: the engine runs the address the loader
    // read from kallsyms, the one the kernel is handed.
    let want = ["PASS", "PASS", "TX", "TX", "DROP", "PASS"];
    let obj = load_object(&data("ksym_untyped.o")).unwrap();
    let mut e = Engine::new(&obj, None, EngineConfig::default()).unwrap();
    assert_eq!(run_verdicts(&mut e, &frames), want);

    let (dir, cap) = write_capture("untyped", &frames);
    let (code, err, v) = diff_vm_host("ksym_untyped.o", &cap);
    let _ = std::fs::remove_dir_all(&dir);
    if err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
        return;
    }
    // The object's BTF, with its `.ksyms` variables made allocated ints as
    // libbpf leaves them, is one this kernel accepts (BPF_BTF_LOAD).
    if let Err(e) = xdpqual_kernel::host::KernelBtf::load(&obj.btf) {
        panic!("the kernel refused the object's BTF: {e}");
    }
    assert_eq!(code, Some(0), "{err}\n{v}");
    assert_eq!(v["backends"], serde_json::json!(["vm", "host"]));
    assert_eq!(v["agreed"].as_u64(), Some(6), "{v}");
    assert_eq!(v["nondeterministic"].as_u64(), Some(0), "{v}");
    assert_eq!(v["mismatch_count"].as_u64(), Some(0), "{v}");
}

/// The frames of ksym_vars.c for `ncpus` possible CPUs, and the engine's
/// verdicts for them (worked out in its header comment: reads of
/// this_cpu_off give zeros in the engine).
fn percpu_frames(ncpus: usize) -> (Vec<Vec<u8>>, Vec<&'static str>, Vec<bool>) {
    let rows = [
        (frame(0, 0), "PASS", false),               // weak typed absent
        (frame(1, 0), "PASS", false),               // weak untyped absent
        (frame(2, 0), "TX", false),                 // untyped present
        (frame(3, 0), "TX", false),                 // per_cpu_ptr(cpu 0)
        (frame(3, (ncpus - 1) as u8), "TX", false), // the last CPU
        (frame(3, ncpus as u8), "DROP", false),     // past nr_cpu_ids: NULL
        (frame(3, 255), "DROP", false),             // NULL
        (frame(4, 0), "DROP", true),                // reads this CPU's copy
        (frame(5, 0), "DROP", true),                // reads CPU 0's copy
        (frame(9, 0), "PASS", false),
    ];
    (
        rows.iter().map(|r| r.0.clone()).collect(),
        rows.iter().map(|r| r.1).collect(),
        rows.iter().map(|r| r.2).collect(),
    )
}

#[test]
fn per_cpu_variables_through_the_helpers_and_their_reads_are_nondeterministic() {
    // A stand-in kernel BTF whose `.data..percpu` holds this_cpu_off, so
    // the engine's side runs on any machine; ncpus as a kernel with 2
    // possible CPUs.
    let opts = LoadOptions {
        target_btf: TargetBtf::File(data("ksym_target.btf")),
        ..LoadOptions::default()
    };
    let obj = load_target(&data("ksym_vars.o"), &opts).unwrap();
    let this = obj.ksyms.iter().find(|k| k.name == "this_cpu_off").unwrap();
    assert_eq!(
        this.kind,
        KsymKind::Typed { btf_id: 3, type_name: "int64".into(), size: 8, percpu: true }
    );
    assert!(xdpqual::compare::calls_nondeterministic_helper(&obj.programs[0].insns));
    for cpu in [0, 1] {
        let cfg = EngineConfig { ncpus: 2, cpu, ..EngineConfig::default() };
        let mut e = Engine::new(&obj, None, cfg).unwrap();
        let (frames, want, nondet) = percpu_frames(2);
        let mut carried = CarriedNondeterminism::new(&e);
        for ((f, want), nondet) in frames.iter().zip(want).zip(nondet) {
            let pkt =
                PacketSource { data: f.clone(), ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
            let r = run_packet(&mut e, &pkt, &mut carried);
            assert_eq!(r.verdict.to_string(), want, "cpu {cpu}, frame {:?}", &f[14..16]);
            assert_eq!(carried.end_run(), nondet, "cpu {cpu}, frame {:?}", &f[14..16]);
        }
    }
}

#[test]
fn diff_of_a_per_cpu_variable_with_this_kernel() {
    let ncpus = possible_cpus();
    if !(1..=255).contains(&ncpus) {
        xdpqual::util::skip(format_args!("{ncpus} possible CPUs: a one-byte CPU is never NULL"));
        return;
    }
    let (frames, _, _) = percpu_frames(ncpus);
    let (dir, cap) = write_capture("percpu", &frames);
    let (code, err, v) = diff_vm_host("ksym_vars.o", &cap);
    let _ = std::fs::remove_dir_all(&dir);
    // The verifier looks a typed variable up in kallsyms too
    // (__check_pseudo_btf_id: kallsyms_lookup_name). A kernel built
    // without CONFIG_KALLSYMS_ALL, like this project's 6.18, lists no data
    // symbols there and refuses the program; the diff must say so.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    if !kallsyms.lines().any(|l| l.ends_with(" this_cpu_off")) {
        assert_ne!(code, Some(0), "{err}\n{v}");
        if !err.contains("rejected by verifier") {
            xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
            return;
        }
        assert!(
            err.contains("ldimm64 failed to find the address for kernel symbol 'this_cpu_off'"),
            "{err}"
        );
        return;
    }
    if err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
        return;
    }
    assert_eq!(code, Some(0), "{err}\n{v}");
    // Eight frames read no kernel data and agree. The kernel's
    // this_cpu_off is the CPU's per-CPU area offset, non-zero on an SMP
    // x86-64 kernel (TX); the engine reads zeros (DROP): both frames differ
    // and are classed nondeterministic, not mismatches.
    assert_eq!(v["agreed"].as_u64(), Some(8), "{v}");
    assert_eq!(v["nondeterministic"].as_u64(), Some(2), "{v}");
    assert_eq!(v["mismatch_count"].as_u64(), Some(0), "{v}");
}

/// Records every access to a kernel variable.
#[derive(Default)]
struct KsymAccesses(Vec<(Region, u64, usize, bool)>);
impl Tracer for KsymAccesses {
    fn mem(&mut self, _pc: usize, region: Region, offset: u64, size: usize, write: bool) {
        if matches!(region, Region::Ksym(_)) {
            self.0.push((region, offset, size, write));
        }
    }
}

#[test]
fn a_plain_kernel_variable_is_read_only_memory_that_reads_as_unknown() {
    let opts = LoadOptions {
        target_btf: TargetBtf::File(data("ksym_target.btf")),
        ..LoadOptions::default()
    };
    let obj = load_target(&data("ksym_plain.o"), &opts).unwrap();
    // ksym_target.btf: [1] unsigned long, [2] VAR jiffies, in `.data`.
    assert_eq!(obj.ksyms.len(), 1);
    assert_eq!(
        obj.ksyms[0].kind,
        KsymKind::Typed { btf_id: 2, type_name: "int64".into(), size: 8, percpu: false }
    );
    let mut e = Engine::new(&obj, None, EngineConfig::default()).unwrap();
    let run = |e: &mut Engine, sel: u8| {
        let mut t = KsymAccesses::default();
        let pkt =
            PacketSource { data: frame(sel, 0), ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
        (run_packet(e, &pkt, &mut t), t.0)
    };
    // A read: zeros (PASS), one 8-byte read the tracer hears of.
    let (r, seen) = run(&mut e, 0);
    assert_eq!(r.verdict.to_string(), "PASS");
    assert_eq!(seen, vec![(Region::Ksym(0), 0, 8, false)]);
    // A write faults as read-only.
    let (r, seen) = run(&mut e, 1);
    let v = r.verdict.to_string();
    assert!(v.starts_with("FAULT") && v.contains("read-only"), "{v}");
    assert!(seen.is_empty(), "{seen:?}");
}

#[test]
fn a_strong_variable_the_kernel_lacks_is_a_load_error() {
    let o = xdpqual(&["inspect", data("ksym_missing.o").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("xdpqual_no_such_var") && err.contains("not found"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The same through run-type commands.
    let cap = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/edges.pcap");
    let o = xdpqual(&["replay", data("ksym_missing.o").to_str().unwrap(), cap]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("xdpqual_no_such_var"), "{err}");
}
