//! The program type comes from the section name (libbpf 1.0's rule,
//! tools/lib/bpf/libbpf.c `section_defs`) or from the user: `PROG.o:SECTION`
//! and `--type xdp` load a section of unknown type as XDP, as
//! `bpftool prog load F P type xdp` does. Objects that mix program types
//! load their XDP programs and list the others.
//!
//! The objects are tests/data/loader/untyped.c (sections `xdp1`, returning
//! XDP_DROP, and `2/1`, returning XDP_TX) and mixed_types.c (one `xdp`
//! program returning XDP_PASS next to `tc`, `tc/ingress`, `classifier`,
//! `kprobe/...` and `tracepoint/...` programs).

use std::path::PathBuf;
use std::process::{Command, Output};
use xdpqual::loader::{
    inspect_object, load_object, load_target, LoadError, LoadOptions, ProgType, SectionType,
    XdpAttach,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader")).join(name)
}

fn pcap(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps")).join(name)
}

fn xdpqual(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpqual")).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn section_names_classify_as_libbpf_does() {
    use xdpqual::loader::sections::classify;
    let xdp = |frags, attach| SectionType::Xdp { frags, attach };
    assert_eq!(classify("xdp"), xdp(false, XdpAttach::Interface));
    assert_eq!(classify("xdp.frags"), xdp(true, XdpAttach::Interface));
    assert_eq!(classify("xdp/devmap"), xdp(false, XdpAttach::Devmap));
    assert_eq!(classify("xdp.frags/cpumap"), xdp(true, XdpAttach::Cpumap));
    assert_eq!(classify("xdp/redirect"), xdp(false, XdpAttach::Interface));
    assert_eq!(classify("tc"), SectionType::Other("sched_cls"));
    assert_eq!(classify("tc/ingress"), SectionType::Other("sched_cls"));
    assert_eq!(classify("classifier"), SectionType::Other("sched_cls"));
    // `kprobe+`: the name or `kprobe/...`, not `kprobex`.
    assert_eq!(classify("kprobe/do_sys_open"), SectionType::Other("kprobe"));
    assert_eq!(classify("kprobex"), SectionType::Unknown);
    // `tc` is matched exactly (no `+`).
    assert_eq!(classify("tc/foo"), SectionType::Unknown);
    for untyped in ["xdp1", "xdp_prog", "prog", "from-netdev", "2/1", "xdp.frags/foo"] {
        assert_eq!(classify(untyped), SectionType::Unknown, "{untyped}");
    }
    // enum bpf_attach_type (include/uapi/linux/bpf.h): ..., BPF_CGROUP_INET6_GETSOCKNAME 32,
    // BPF_XDP_DEVMAP 33, BPF_CGROUP_INET_SOCK_RELEASE 34, BPF_XDP_CPUMAP 35, BPF_SK_LOOKUP 36,
    // BPF_XDP 37.
    assert_eq!(
        [XdpAttach::Interface, XdpAttach::Devmap, XdpAttach::Cpumap].map(XdpAttach::uapi),
        [37, 33, 35]
    );
}

#[test]
fn untyped_sections_need_the_users_word() {
    let path = data("untyped.o");
    let e = load_object(&path).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, LoadError::UnknownSection { ref section, .. } if section == "xdp1"), "{e}");
    assert!(msg.contains("--type xdp") && msg.contains("untyped.o:xdp1"), "{msg}");

    // Named: that section is XDP; the other untyped one is only listed.
    let o =
        load_target(&path, &LoadOptions { select: Some("2/1".to_string()), ..Default::default() })
            .unwrap();
    let names: Vec<&str> = o.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tail_tx"]);
    // Naming the function works as naming its section.
    let o = load_target(
        &path,
        &LoadOptions { select: Some("xdp_drop_all".to_string()), ..Default::default() },
    )
    .unwrap();
    let names: Vec<&str> = o.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["xdp_drop_all"]);
    // --type xdp: both.
    let o = load_target(
        &path,
        &LoadOptions { select: None, prog_type: Some(ProgType::Xdp), ..Default::default() },
    )
    .unwrap();
    let progs: Vec<(&str, &str)> =
        o.programs.iter().map(|p| (p.name.as_str(), p.section.as_str())).collect();
    assert_eq!(progs, [("xdp_drop_all", "xdp1"), ("tail_tx", "2/1")]);
    // Each is its C: `return XDP_DROP` (1) and `return XDP_TX` (3) is
    // `r0 = N; exit`.
    for (p, want) in o.programs.iter().zip([1, 3]) {
        assert_eq!(p.insns.len(), 2, "{}", p.name);
        assert_eq!(p.insns[0].imm, want, "{}", p.name);
    }

    // inspect lists them with what to do.
    let l = inspect_object(&path).unwrap();
    assert!(l.object.programs.is_empty());
    let kinds: Vec<&str> = l.other_programs.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, [xdpqual::loader::sections::UNKNOWN_HINT; 2]);
}

#[test]
fn mixed_objects_load_their_xdp_programs() {
    let path = data("mixed_types.o");
    let o = load_object(&path).unwrap();
    let names: Vec<&str> = o.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["xdp_keep"]);
    let l = inspect_object(&path).unwrap();
    let others: Vec<(&str, &str)> =
        l.other_programs.iter().map(|p| (p.section.as_str(), p.kind.as_str())).collect();
    assert_eq!(
        others,
        [
            ("tc", "sched_cls"),
            ("tc/ingress", "sched_cls"),
            ("classifier", "sched_cls"),
            ("kprobe/do_sys_open", "kprobe"),
            ("tracepoint/syscalls/sys_enter_openat", "tracepoint"),
        ]
    );
    // Running one of them as XDP is refused, --type xdp or not.
    for ty in [None, Some(ProgType::Xdp)] {
        for sel in ["tc", "tc_ingress", "kprobe/do_sys_open"] {
            let e = load_target(
                &path,
                &LoadOptions { select: Some(sel.to_string()), prog_type: ty, ..Default::default() },
            )
            .unwrap_err();
            assert!(matches!(e, LoadError::NotXdp { .. }), "{sel}: {e}");
            let msg = e.to_string();
            assert!(msg.contains("not XDP") && msg.contains("--type xdp"), "{msg}");
        }
    }
}

#[test]
fn cli_refuses_then_runs_what_the_user_names() {
    let obj = data("untyped.o");
    let obj = obj.to_str().unwrap();
    let cap = pcap("mixed-2k.pcap");
    let cap = cap.to_str().unwrap();
    let o = xdpqual(&["replay", obj, cap]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("section `xdp1`") && err.contains("--type xdp"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // `2/1` returns XDP_TX: every packet the engine runs is TX.
    let named = format!("{obj}:2/1");
    let o = xdpqual(&["replay", &named, cap, "--summary-json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let counts = &v["captures"][0]["counts"]["by_verdict"];
    let tx = counts["TX"].as_u64().unwrap();
    let not_run = counts["NOT_RUN"].as_u64().unwrap_or(0);
    assert!(tx > 0, "{counts}");
    assert_eq!(tx + not_run, v["captures"][0]["counts"]["total"].as_u64().unwrap(), "{counts}");

    let o = xdpqual(&["inspect", "--type", "xdp", obj]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("xdp_drop_all") && out.contains("type xdp (forced"), "{out}");

    let mixed = data("mixed_types.o");
    let o = xdpqual(&["inspect", mixed.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(out.contains("type xdp (BPF_XDP)") && out.contains("type sched_cls"), "{out}");
    let tc = format!("{}:tc", mixed.display());
    let o = xdpqual(&["replay", "--type", "xdp", &tc, cap]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("holds a sched_cls program"), "{}", text(&o.stderr));
}

/// The host kernel loads the forced section as BPF_PROG_TYPE_XDP and agrees
/// with the engine on every packet.
#[test]
fn forced_sections_agree_with_the_host_kernel() {
    let obj = data("untyped.o");
    let cap = pcap("mixed-2k.pcap");
    for sel in ["xdp1", "2/1"] {
        let target = format!("{}:{sel}", obj.display());
        let o =
            xdpqual(&["diff", &target, cap.to_str().unwrap(), "--backends", "vm,host", "--json"]);
        let err = text(&o.stderr);
        if o.status.code() == Some(2) && err.contains("could not run") {
            xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
            return;
        }
        assert_eq!(o.status.code(), Some(0), "{sel}: {err}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["backends"], serde_json::json!(["vm", "host"]), "{sel}");
        assert_eq!(v["packets"].as_u64(), Some(2000), "{sel}");
        assert_eq!(v["agreed"].as_u64(), Some(2000), "{sel}: {v}");
        assert_eq!(v["mismatch_count"].as_u64(), Some(0), "{sel}");
    }
}

/// `xdp/devmap` and `xdp/cpumap` load with their attach types: the devmap
/// program reads `egress_ifindex`, which the verifier allows only for
/// BPF_XDP_DEVMAP (net/core/filter.c xdp_is_valid_access), so "loads" is
/// proof of the attach type. Test-run then refuses both with EINVAL
/// (net/bpf/test_run.c bpf_prog_test_run_xdp), and diff says that.
#[test]
fn devmap_and_cpumap_programs_get_the_kernels_answer() {
    let obj = data("devmap_prog.o");
    let cap = pcap("edges.pcap");
    for (sec, attach) in [("xdp/devmap", "BPF_XDP_DEVMAP"), ("xdp/cpumap", "BPF_XDP_CPUMAP")] {
        let target = format!("{}:{sec}", obj.display());
        let o = xdpqual(&["diff", &target, cap.to_str().unwrap(), "--backends", "vm,host"]);
        let err = text(&o.stderr);
        if err.contains("backend host was named but could not run: unavailable") {
            xdpqual::util::skip(format_args!("the host backend is unavailable: {err}"));
            return;
        }
        assert_eq!(o.status.code(), Some(2), "{sec}: {err}");
        assert!(
            err.contains(&format!("loads `{sec}`"))
                && err.contains(attach)
                && err.contains("BPF_PROG_TEST_RUN refuses to run it (EINVAL"),
            "{sec}: {err}"
        );
        assert!(!err.contains("verifier"), "{sec}: {err}");
    }
}

/// An object with an untyped XDP section and an untyped tc one (the
/// prototype-kernel xdp_vlan01 layout): with --type xdp both are offered as
/// XDP. Running the XDP one must not fail because the other cannot run as
/// XDP: the engine leaves it out, as a kernel loader that loads only the
/// program asked for does. Naming the tc one is still refused, by the
/// engine and by the host kernel's verifier.
#[test]
fn another_program_that_cannot_run_as_xdp_is_left_out() {
    let obj = data("untyped_mixed.o");
    let cap = pcap("mixed-2k.pcap");
    let xdp = format!("{}:xdp_vlan_drop", obj.display());
    let o = xdpqual(&["replay", "--type", "xdp", &xdp, cap.to_str().unwrap(), "--summary-json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let counts = &v["captures"][0]["counts"]["by_verdict"];
    // mixed-2k.pcap has 802.1Q frames (dropped) and untagged ones (passed).
    assert!(counts["DROP"].as_u64().unwrap_or(0) > 0, "{counts}");
    assert!(counts["PASS"].as_u64().unwrap_or(0) > 0, "{counts}");

    let o =
        xdpqual(&["diff", "--type", "xdp", &xdp, cap.to_str().unwrap(), "--backends", "vm,host"]);
    let err = text(&o.stderr);
    if o.status.code() == Some(2) && err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
    } else {
        assert_eq!(o.status.code(), Some(0), "{err}\n{}", text(&o.stdout));
    }

    let tc = format!("{}:tc_vlan_push", obj.display());
    let o = xdpqual(&["replay", "--type", "xdp", &tc, cap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("push_tag") && err.contains("helper bpf_skb_load_bytes (#26)"), "{err}");
}

/// A diff names the other programs of the object that the engine had to
/// leave out, with why: tests/data/loader/left_out.c's `vlan_push` calls
/// bpf_skb_vlan_push (18), which the engine does not model (XDP programs
/// may not call it), so only `keep` is prepared.
#[test]
fn a_diff_names_the_programs_it_left_out() {
    let obj = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader/left_out.o"));
    let cap = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/edges.pcap"));
    let target = format!("{}:keep", obj.display());
    let o =
        xdpqual(&["diff", &target, cap.to_str().unwrap(), "--backends", "vm", "--format", "json"]);
    // Only the engine ran: an incomplete diff (exit 2) that still reports.
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let left = v["left_out"].as_array().expect("left_out");
    assert_eq!(left.len(), 1, "{v}");
    assert_eq!(left[0]["program"], "vlan_push");
    let why = left[0]["reason"].as_str().unwrap();
    assert!(why.contains("insn 2") && why.contains("bpf_skb_vlan_push (#18)"), "{why}");
    let o = xdpqual(&["diff", &target, cap.to_str().unwrap(), "--backends", "vm"]);
    let out = text(&o.stdout);
    assert!(out.contains("left out: program vlan_push of the object"), "{out}");
}
