//! `xdpqual offload-check` on the real binary: the three verdict states,
//! the host kernel's verifier as the first gate, the estimate's bound, and
//! the Markdown rendering's final newline (issue 18 item 6).

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn xdpqual(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run xdpqual");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// truncate.c calls bpf_xdp_adjust_tail(ctx, 256 - L) (truncate.c:34): the
/// delta is positive for frames shorter than 256 bytes, and the NFP can only
/// shrink (nfp/bpf/jit.c adjust_tail returns -EINVAL otherwise, NFP-H5). The
/// program loads, with a run-time fallback (it drops when the helper
/// fails). It must never be shown as plain "compatible".
#[test]
fn truncate_on_corenic_is_offloadable_with_fallback() {
    let args = [
        "offload-check",
        "corpus/build/truncate.v3.o",
        "--profile",
        "nfp-corenic",
        "--no-estimate",
        "--no-host",
    ];
    let (code, out, err) = xdpqual(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(
            "program `xdp_truncate` on profile `nfp-corenic`: offloadable with run-time fallback (NFP-H5)\n"
        ),
        "{out}"
    );
    assert!(!out.contains("compatible"), "{out}");

    let (code, md, err) = xdpqual(&[&args[..], &["--format", "markdown"]].concat());
    assert_eq!(code, 0, "{md}{err}");
    assert!(md.contains("Verdict: **offloadable with run-time fallback (NFP-H5)**"), "{md}");
    assert!(md.ends_with('\n'), "markdown output ends without a newline: {md:?}");
}

/// encap's one bpf_xdp_adjust_head call has the constant delta -20, set by
/// `w2 = -20` (register value 0xffffffec). The driver reads it as the int
/// -20 (nfp/bpf/verifier.c nfp_record_adjust_head), inside the fast window
/// [-84, 46], one call site: the fast path, no run-time check, so plainly
/// offloadable (it was reported as the slow path, -EINVAL at run time).
#[test]
fn encap_on_corenic_takes_the_fast_path() {
    let (code, out, err) = xdpqual(&[
        "offload-check",
        "corpus/build/encap.v3.o",
        "--profile",
        "nfp-corenic",
        "--no-estimate",
        "--no-host",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("program `xdp_ipip_encap` on profile `nfp-corenic`: offloadable\n"),
        "{out}"
    );
    assert!(!out.contains("NFP-H4"), "{out}");
}

/// r10_smash.o shifts the frame pointer (`r1 = r10; r1 >>= 40`): the kernel
/// verifier refuses pointer arithmetic with >>= (kernel/bpf/verifier.c,
/// adjust_ptr_min_max_vals), while the NIC model has no rule against it on
/// netdevsim. The offload path runs the host verifier first, so with the
/// host backend available the verdict is "not offloadable" (exit 1), and
/// the output says it was the host verifier.
#[test]
fn host_verifier_rejection_is_not_offloadable() {
    let args = ["offload-check", "corpus/build/hostile/r10_smash.o", "--profile", "netdevsim"];
    let (code, out, err) = xdpqual(&[&args[..], &["--no-host"]].concat());
    assert_eq!(code, 0, "without the host verifier the model alone accepts it: {out}{err}");
    assert!(out.contains(": offloadable\n"), "{out}");

    let (code, out, err) = xdpqual(&args);
    if out.contains("the host kernel's verifier did not decide") {
        xdpqual::util::skip(format_args!(
            "host backend unavailable here: {}",
            out.lines().last().unwrap_or("")
        ));
        assert_eq!(code, 0, "{out}{err}");
        return;
    }
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(": NOT offloadable\n"), "{out}");
    assert!(
        out.contains(
            "KERNEL-VERIFIER [violates] R1 pointer arithmetic with >>= operator prohibited"
        ),
        "{out}"
    );
    assert!(out.contains("rejects the program: R1 pointer arithmetic with >>= operator prohibited"));
    // No throughput estimate for a program that does not load.
    assert!(!out.contains("throughput estimate"), "{out}");
}

/// nfp-agilio-ebpf has no line rate: the estimate says so instead of
/// "line rate none Mpps". nfp-corenic has one (40 Gbit/s): with the default
/// synthetic 60-byte frames that is 40e9 / ((60 + 24) x 8) = 59.52 Mpps, and
/// truncate.c (13 insns, 200 per-packet cycles) computes far faster, so the
/// line rate is the bound.
#[test]
fn estimate_names_its_bound() {
    let (code, out, err) = xdpqual(&[
        "offload-check",
        "corpus/build/truncate.v3.o",
        "--profile",
        "nfp-agilio-ebpf",
        "--no-host",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no line rate in the profile"), "{out}");
    assert!(!out.contains("none"), "{out}");
    assert!(out.contains("(bound: compute"), "{out}");

    let (code, out, err) = xdpqual(&[
        "offload-check",
        "corpus/build/truncate.v3.o",
        "--profile",
        "nfp-corenic",
        "--no-host",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("throughput estimate on nfp-corenic: 59.52 Mpps (bound: line rate)"),
        "{out}"
    );
}

/// qualify's first-order estimate (dashboard, history): 13 reachable
/// instructions. nfp-agilio-ebpf: 800 MHz x 50 cores / (0 + 13) cycles =
/// 3076.9 Mpps, and no line rate to cap it: the basis says so.
/// nfp-corenic: 800 x 50 / (200 + 13) = 187.8 Mpps, above its line rate of
/// 59.52 Mpps, which is the bound.
#[test]
fn qualify_estimate_is_capped_by_line_rate_and_names_the_bound() {
    use xdpqual::qualify::estimate_mpps;
    let agilio = nic_model::Profile::builtin("nfp-agilio-ebpf").unwrap();
    let e = estimate_mpps(&agilio, 13);
    assert!((e.mpps.unwrap() - 40_000.0 / 13.0).abs() < 1e-9);
    assert_eq!(e.bound.as_deref(), Some("compute"));
    assert!(e.basis.contains("the profile has no line rate"), "{}", e.basis);

    let corenic = nic_model::Profile::builtin("nfp-corenic").unwrap();
    let e = estimate_mpps(&corenic, 13);
    assert_eq!(e.mpps, Some(59.52));
    assert_eq!(e.bound.as_deref(), Some("line rate"));
    assert!(e.basis.starts_with("bound: line rate 59.52 Mpps"), "{}", e.basis);
    assert!(e.basis.contains("= 187.8 Mpps"), "{}", e.basis);

    // hxdp: 156.25 MHz, 1 core, 2 per-packet cycles (profiles/hxdp.toml):
    // 156.25 / (2 + 100) = 1.53 Mpps, under its 59.5 Mpps line rate.
    let hxdp = nic_model::Profile::builtin("hxdp").unwrap();
    let e = estimate_mpps(&hxdp, 100);
    assert_eq!(e.bound.as_deref(), Some("compute"));
    assert!((e.mpps.unwrap() - 156.25 / 102.0).abs() < 1e-9, "{:?}", e.mpps);
    assert!(e.basis.ends_with("(line rate 59.5 Mpps)"), "{}", e.basis);
}

/// old_section.c is `SEC("xdp_prog") int xdp_old(...) { return XDP_PASS; }`:
/// loaded with `--type xdp`, it is an XDP program, and the offload check
/// must judge it as one. It once re-derived the type from the section name,
/// found none, and reported NFP-T1 ("program type cannot be offloaded") for
/// a two-instruction XDP_PASS. On netdevsim, which takes any XDP program the
/// verifier accepts (drivers/net/netdevsim/bpf.c), it is offloadable.
#[test]
fn program_loaded_with_type_xdp_is_checked_as_xdp() {
    let (code, out, err) = xdpqual(&[
        "offload-check",
        "cli/tests/data/loader/old_section.o",
        "--type",
        "xdp",
        "--profile",
        "netdevsim",
        "--no-host",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("`netdevsim`: offloadable"), "{out}");
    assert!(!out.contains("T1"), "{out}");
}
