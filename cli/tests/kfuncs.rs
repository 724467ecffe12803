//! kfunc calls (`__ksym` extern functions): resolved against the target
//! kernel's BTF, their prototype checked, and the modelled ones run by the
//! engine. The objects are built from tests/data/loader/kfunc_*.c.

mod common;

use std::path::PathBuf;
use std::process::Command;
use xdpqual::backends::engine::run_packet;
use xdpqual::compare::PacketSource;
use xdpqual::engine::{Engine, EngineConfig, NoTrace};
use xdpqual::loader::{load_object, HOST_BTF};

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader")).join(name)
}

fn xdpqual(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xdpqual")).args(args).output().unwrap()
}

#[test]
fn metadata_kfuncs_return_eopnotsupp_and_leave_their_arguments() {
    if common::host_btf_has_func("bpf_xdp_metadata_rx_hash") != Some(true) {
        xdpqual::util::skip(format_args!(
            "{HOST_BTF} (read with bpftool) has no bpf_xdp_metadata_rx_hash"
        ));
        return;
    }
    let obj = load_object(&data("kfunc_hints.o")).unwrap();
    let names: Vec<&str> = obj.kfuncs.values().map(String::as_str).collect();
    assert_eq!(
        names.iter().copied().collect::<std::collections::BTreeSet<_>>(),
        [
            "bpf_xdp_metadata_rx_hash",
            "bpf_xdp_metadata_rx_timestamp",
            "bpf_xdp_metadata_rx_vlan_tag"
        ]
        .into_iter()
        .collect()
    );
    // Each call is a kfunc call of the id the kernel's BTF gives it.
    let calls: Vec<i32> = obj.programs[0]
        .insns
        .iter()
        .filter(|i| i.code == 0x85 && i.src == 2)
        .map(|i| i.imm)
        .collect();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|id| obj.kfuncs.contains_key(id)));

    let mut e = Engine::new(&obj, None, EngineConfig::default()).unwrap();
    let pkt = PacketSource { data: vec![0; 64], ts_ns: 7, ingress_ifindex: 1, rx_queue_index: 0 };
    let r = run_packet(&mut e, &pkt, &mut NoTrace);
    assert_eq!(r.verdict.to_string(), "TX", "{r:?}");
    // Worked out in kfunc_hints.c: -95 three times, the arguments as set.
    let mut want = vec![0u8; 64];
    want[0..4].copy_from_slice(&(-95i32).to_le_bytes());
    want[4..12].copy_from_slice(&0x1111_1111_1111_1111u64.to_le_bytes());
    want[12..16].copy_from_slice(&(-95i32).to_le_bytes());
    want[16..20].copy_from_slice(&0x2222_2222u32.to_le_bytes());
    want[20..24].copy_from_slice(&0x3333_3333u32.to_le_bytes());
    want[24..28].copy_from_slice(&(-95i32).to_le_bytes());
    want[28..30].copy_from_slice(&0x4444u16.to_le_bytes());
    want[30..32].copy_from_slice(&0x5555u16.to_le_bytes());
    assert_eq!(r.output, want);

    // inspect lists each kfunc with its id and call site.
    let o = xdpqual(&["inspect", data("kfunc_hints.o").to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = v["kfuncs"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{v}");
    for k in listed {
        assert_eq!(k["modelled"], true, "{k}");
        let id = k["btf_id"].as_i64().unwrap() as i32;
        assert_eq!(obj.kfuncs.get(&id).map(String::as_str), k["name"].as_str(), "{k}");
        let pc = k["calls"][0][1].as_u64().unwrap() as usize;
        assert_eq!(obj.programs[0].insns[pc].imm, id, "{k}");
    }

    // The kernel refuses them outside a device-bound program, and test-run
    // refuses device-bound programs: the diff says the host cannot run.
    let cap = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/edges.pcap");
    let o =
        xdpqual(&["diff", data("kfunc_hints.o").to_str().unwrap(), cap, "--backends", "vm,host"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("metadata kfuncs require device-bound program")
            || err.contains("could not run"),
        "{err}"
    );
}

#[test]
fn a_prototype_that_does_not_match_is_refused_with_the_instruction() {
    if common::host_btf_has_func("bpf_xdp_metadata_rx_hash") != Some(true) {
        xdpqual::util::skip(format_args!("{HOST_BTF} has no bpf_xdp_metadata_rx_hash"));
        return;
    }
    let o = xdpqual(&["inspect", data("kfunc_bad_proto.o").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("instruction 4"), "{err}");
    assert!(err.contains("bpf_xdp_metadata_rx_hash") && err.contains("does not match"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_kfunc_the_engine_does_not_model_is_refused_with_name_and_instruction() {
    if common::host_btf_has_func("bpf_rcu_read_lock") != Some(true) {
        xdpqual::util::skip(format_args!("{HOST_BTF} has no bpf_rcu_read_lock"));
        return;
    }
    let obj = load_object(&data("kfunc_unmodelled.o")).unwrap();
    let e = Engine::new(&obj, None, EngineConfig::default()).err().unwrap().to_string();
    assert!(e.contains("kfunc bpf_rcu_read_lock is not modelled") && e.contains("insn 3"), "{e}");
}

#[test]
fn a_kfunc_missing_from_the_kernel_is_refused() {
    // nf_flow_table's kfunc; a kernel without CONFIG_NF_FLOW_TABLE built in
    // lacks it, as libbpf would report ("not found in kernel or module BTFs").
    match common::host_btf_has_func("bpf_xdp_flow_lookup") {
        Some(false) => {}
        other => {
            xdpqual::util::skip(format_args!(
                "cannot check a missing kfunc here (host has it: {other:?})"
            ));
            return;
        }
    }
    let dir = std::env::temp_dir().join(format!("xdpqual-kfunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("flow.c");
    std::fs::write(
        &src,
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         struct bpf_flowtable_opts { __s32 error; };\n\
         extern void *bpf_xdp_flow_lookup(struct xdp_md *, struct bpf_fib_lookup *, struct bpf_flowtable_opts *, __u32) __ksym;\n\
         SEC(\"xdp\") int f(struct xdp_md *ctx) { struct bpf_fib_lookup t = {}; struct bpf_flowtable_opts o = {};\n\
         return bpf_xdp_flow_lookup(ctx, &t, &o, sizeof(o)) ? XDP_DROP : XDP_PASS; }\n\
         char _license[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    let obj = dir.join("flow.o");
    let inc = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let cc = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", &inc, "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status();
    if !cc.is_ok_and(|s| s.success()) {
        xdpqual::util::skip(format_args!("clang-19 cannot build the test program"));
        return;
    }
    let o = xdpqual(&["inspect", obj.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bpf_xdp_flow_lookup") && err.contains("has no such function"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// bpf_xdp_flow_lookup as net/netfilter/nf_flow_table_bpf.c runs it with no
/// flowtable: NULL, and opts->error -EINVAL for an opts_len other than 4,
/// -EAFNOSUPPORT for a family other than AF_INET (2) / AF_INET6 (10), else
/// -ENOENT. This host's kernel may lack it, so the object is built by hand
/// with the kfunc's id recorded as the loader records it.
#[test]
fn flow_lookup_finds_no_flowtable() {
    use xdpqual::isa::Insn;
    use xdpqual::program::{LineTable, Object, Program};
    let run = |family: i32, opts_len: i32| -> (i32, u64) {
        let i = Insn::new;
        let insns = vec![
            i(0xbf, 6, 1, 0, 0),         // r6 = ctx
            i(0x72, 10, 0, -64, family), // fib_tuple.family
            i(0x62, 10, 0, -4, 0x7777),  // opts.error
            i(0xbf, 1, 6, 0, 0),
            i(0xbf, 2, 10, 0, 0),
            i(0x07, 2, 0, 0, -64),
            i(0xbf, 3, 10, 0, 0),
            i(0x07, 3, 0, 0, -4),
            i(0xb7, 4, 0, 0, opts_len),
            i(0x85, 0, 2, 0, 1234), // call kfunc bpf_xdp_flow_lookup
            i(0xbf, 7, 0, 0, 0),
            i(0x61, 8, 10, -4, 0), // r8 = opts.error
            i(0x61, 2, 6, 0, 0),
            i(0x61, 3, 6, 4, 0),
            i(0xbf, 4, 2, 0, 0),
            i(0x07, 4, 0, 0, 12),
            i(0x2d, 4, 3, 4, 0),
            i(0x63, 2, 8, 0, 0), // frame[0..4] = opts.error
            i(0x7b, 2, 7, 4, 0), // frame[4..12] = returned pointer
            i(0xb7, 0, 0, 0, 3),
            i(0x95, 0, 0, 0, 0),
            i(0xb7, 0, 0, 0, 0),
            i(0x95, 0, 0, 0, 0),
        ];
        let obj = Object {
            path: "flow_lookup".into(),
            programs: vec![Program {
                name: "flow".into(),
                section: "xdp".into(),
                frags: false,
                insns,
                lines: LineTable::default(),
                functions: Vec::new(),
            }],
            maps: Vec::new(),
            license: "GPL".into(),
            byte_order: Default::default(),
            kfuncs: [(1234, "bpf_xdp_flow_lookup".to_string())].into_iter().collect(),
            ksyms: Vec::new(),
            btf: Default::default(),
        };
        let results: Vec<(i32, u64)> = [false, true]
            .into_iter()
            .map(|jit| {
                let mut e = Engine::new(&obj, None, EngineConfig::default()).unwrap().with_jit(jit);
                let pkt = PacketSource {
                    data: vec![0xff; 64],
                    ts_ns: 0,
                    ingress_ifindex: 1,
                    rx_queue_index: 0,
                };
                let r = run_packet(&mut e, &pkt, &mut NoTrace);
                assert_eq!(r.verdict.to_string(), "TX", "jit {jit}: {r:?}");
                (
                    i32::from_le_bytes(r.output[0..4].try_into().unwrap()),
                    u64::from_le_bytes(r.output[4..12].try_into().unwrap()),
                )
            })
            .collect();
        assert_eq!(results[0], results[1], "interpreter and JIT differ");
        results[0]
    };
    assert_eq!(run(2, 4), (-2, 0));
    assert_eq!(run(10, 4), (-2, 0));
    assert_eq!(run(7, 4), (-97, 0));
    assert_eq!(run(2, 8), (-22, 0));
}

/// A weak kfunc the kernel lacks is poisoned as libbpf poisons it; behind
/// a __kconfig check that is false it is dead code for the kernel's
/// verifier and never reached by the engine, and reaching it faults.
#[test]
fn a_weak_missing_kfunc_is_poisoned_not_refused() {
    use std::sync::Arc;
    use xdpqual::loader::{load_target, KernelConfig, LoadOptions};
    if common::host_btf_has_func("bpf_xdp_flow_lookup") != Some(false) {
        xdpqual::util::skip(format_args!(
            "this kernel's BTF has bpf_xdp_flow_lookup (or bpftool cannot read it)"
        ));
        return;
    }
    let with = |config: &str| {
        let cfg = KernelConfig {
            release: Some("6.18.0".into()),
            config: Some(Arc::from(config)),
            source: "test".into(),
        };
        load_target(&data("kfunc_weak.o"), &LoadOptions { kconfig: cfg, ..Default::default() })
            .unwrap()
    };
    let run = |obj: &xdpqual::program::Object| {
        let mut e = Engine::new(obj, None, EngineConfig::default()).unwrap();
        let pkt =
            PacketSource { data: vec![0; 64], ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
        run_packet(&mut e, &pkt, &mut NoTrace)
    };
    let off = with("# CONFIG_NF_FLOW_TABLE is not set\n");
    // libbpf's poison: helper call 2002000000 + the extern's index.
    let poisoned: Vec<i32> = off.programs[0]
        .insns
        .iter()
        .filter(|i| i.code == 0x85 && i.src == 0 && i.imm >= 2_002_000_000)
        .map(|i| i.imm)
        .collect();
    assert_eq!(poisoned.len(), 1, "{:?}", off.programs[0].insns);
    assert!(off.kfuncs.is_empty());
    assert_eq!(run(&off).verdict.to_string(), "PASS");
    let on = with("CONFIG_NF_FLOW_TABLE=y\n");
    let r = run(&on);
    assert!(format!("{r:?}").contains("weak kfunc"), "{r:?}");

    let cap = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/edges.pcap");
    let o =
        xdpqual(&["diff", data("kfunc_weak.o").to_str().unwrap(), cap, "--backends", "vm,host"]);
    let err = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    if o.status.code() == Some(2) && err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{err}\n{stdout}");
    assert!(stdout.contains(" 0 mismatch"), "{stdout}");
}
