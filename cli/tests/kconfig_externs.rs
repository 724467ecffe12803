//! `__kconfig` externs, filled as libbpf fills them
//! (tools/lib/bpf/libbpf.c `bpf_object__collect_externs`,
//! `bpf_object__resolve_externs`). tests/data/loader/kconfig.c writes
//! each value into the frame: bytes 0-3 LINUX_KERNEL_VERSION, 4-7
//! CONFIG_HZ, 8 CONFIG_BPF_SYSCALL, 9 CONFIG_NF_CONNTRACK (tristate),
//! 10-13 the unset weak CONFIG_XDPQUAL_NEVER_SET, 14-29
//! CONFIG_LOCALVERSION (char[16]); TX from Linux 6.0 on, else PASS.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use xdpqual::backends::engine::run_packet;
use xdpqual::compare::PacketSource;
use xdpqual::engine::{Engine, EngineConfig, NoTrace};
use xdpqual::loader::{load_target, KernelConfig, LoadOptions};

fn program() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/loader/kconfig.o"))
}

fn run(cfg: KernelConfig) -> (xdpqual::program::Object, String, Vec<u8>) {
    let obj = load_target(&program(), &LoadOptions { kconfig: cfg, ..Default::default() }).unwrap();
    let mut e = Engine::new(&obj, None, EngineConfig::default()).unwrap();
    let pkt =
        PacketSource { data: vec![0xaa; 64], ts_ns: 0, ingress_ifindex: 1, rx_queue_index: 0 };
    let r = run_packet(&mut e, &pkt, &mut NoTrace);
    (obj, r.verdict.to_string(), r.output)
}

/// The frame kconfig.c writes for these values.
fn frame(kver: u32, hz: u32, bpf: u8, nf: u8, local: &[u8]) -> Vec<u8> {
    let mut f = vec![0xaa; 64];
    f[0..4].copy_from_slice(&kver.to_le_bytes());
    f[4..8].copy_from_slice(&hz.to_le_bytes());
    f[8] = bpf;
    f[9] = nf;
    f[10..14].copy_from_slice(&[0; 4]);
    f[14..30].copy_from_slice(&[0; 16]);
    f[14..14 + local.len()].copy_from_slice(local);
    f
}

#[test]
fn a_given_config_is_laid_out_and_read_as_libbpf_does() {
    let cfg = KernelConfig {
        release: Some("5.15.7-test".into()),
        config: Some(Arc::from(
            "# comment\nCONFIG_HZ=1000\nCONFIG_BPF_SYSCALL=y\nCONFIG_NF_CONNTRACK=m\n\
             CONFIG_LOCALVERSION=\"-averyveryverylongname\"\n\
             # CONFIG_XDPQUAL_NEVER_SET is not set\nCONFIG_HZ=100\n",
        )),
        source: "test".into(),
    };
    let (obj, verdict, out) = run(cfg);
    // Layout (cmp_externs: alignment descending, size ascending, name):
    // the 4-byte ones CONFIG_HZ 0, CONFIG_NF_CONNTRACK 4,
    // CONFIG_XDPQUAL_NEVER_SET 8, LINUX_KERNEL_VERSION 12; then
    // CONFIG_BPF_SYSCALL 16, CONFIG_LOCALVERSION 17..33.
    let kcfg = obj.maps.iter().find(|m| m.name == ".kconfig").unwrap();
    assert_eq!(kcfg.value_size, 33);
    assert!(kcfg.read_only);
    let mut want = [0u8; 33];
    want[0..4].copy_from_slice(&1000u32.to_le_bytes()); // first CONFIG_HZ line wins
    want[4] = 2; // 'm' is TRI_MODULE
    want[12..16].copy_from_slice(&0x05_0f_07u32.to_le_bytes()); // KERNEL_VERSION(5, 15, 7)
    want[16] = 1;
    want[17..32].copy_from_slice(b"-averyveryveryl"); // truncated to 15 + NUL
    assert_eq!(kcfg.initial_data.as_deref(), Some(&want[..]));
    // 5.15 < 6.0: PASS.
    assert_eq!(verdict, "PASS");
    assert_eq!(out, frame(0x05_0f_07, 1000, 1, 2, b"-averyveryveryl"));
}

#[test]
fn bad_configs_are_refused_with_the_extern_named() {
    let load = |release: &str, config: &str| {
        let cfg = KernelConfig {
            release: Some(release.into()),
            config: Some(Arc::from(config)),
            source: "cfg".into(),
        };
        load_target(&program(), &LoadOptions { kconfig: cfg, ..Default::default() })
            .unwrap_err()
            .to_string()
    };
    // CONFIG_HZ is a strong extern: unset is an error.
    let e = load("6.1.0", "CONFIG_BPF_SYSCALL=y\n");
    assert!(e.contains("extern `CONFIG_HZ`") && e.contains("not resolved"), "{e}");
    // 'm' for a bool, a string for an int, a number too big for an int.
    let e = load("6.1.0", "CONFIG_HZ=100\nCONFIG_BPF_SYSCALL=m\n");
    assert!(e.contains("CONFIG_BPF_SYSCALL") && e.contains("implies tristate"), "{e}");
    let e = load("6.1.0", "CONFIG_HZ=\"x\"\nCONFIG_BPF_SYSCALL=y\n");
    assert!(e.contains("CONFIG_HZ") && e.contains("char array"), "{e}");
    let e = load("6.1.0", "CONFIG_HZ=0x100000000\nCONFIG_BPF_SYSCALL=y\n");
    assert!(e.contains("doesn't fit in 4 bytes"), "{e}");
    let e = load("six", "CONFIG_HZ=100\nCONFIG_BPF_SYSCALL=y\n");
    assert!(e.contains("LINUX_KERNEL_VERSION") && e.contains("`six`"), "{e}");
}

/// Independent reading of the host's config: the value of `CONFIG_name`.
fn host_value<'a>(config: &'a str, name: &str) -> Option<&'a str> {
    config.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn the_host_config_is_what_the_engine_and_kernel_read() {
    let cfg = xdpqual::kconfig::host_kernel_config();
    let (Some(release), Some(config)) = (cfg.release.clone(), cfg.config.clone()) else {
        xdpqual::util::skip(format_args!(
            "this machine's kernel config is not readable: {}",
            cfg.source
        ));
        return;
    };
    let (Some(hz), Some("y")) =
        (host_value(&config, "CONFIG_HZ"), host_value(&config, "CONFIG_BPF_SYSCALL"))
    else {
        xdpqual::util::skip(format_args!(
            "the host config lacks CONFIG_HZ or CONFIG_BPF_SYSCALL=y"
        ));
        return;
    };
    let nums: Vec<u32> =
        release.split(|c: char| !c.is_ascii_digit()).take(3).map(|n| n.parse().unwrap()).collect();
    let kver = (nums[0] << 16) | (nums[1] << 8) | nums[2].min(255);
    let nf = match host_value(&config, "CONFIG_NF_CONNTRACK") {
        Some("y") => 1,
        Some("m") => 2,
        _ => 0,
    };
    let local = host_value(&config, "CONFIG_LOCALVERSION").unwrap_or("\"\"").trim_matches('"');
    let local = &local.as_bytes()[..local.len().min(15)];
    let (_, verdict, out) = run(cfg.clone());
    assert_eq!(out, frame(kver, hz.parse().unwrap(), 1, nf, local));
    assert_eq!(verdict, if kver >= 0x06_00_00 { "TX" } else { "PASS" });

    // The kernel reads the same bytes: diff agrees on every packet.
    let cap = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/edges.pcap");
    let o = Command::new(env!("CARGO_BIN_EXE_xdpqual"))
        .args(["diff", program().to_str().unwrap(), cap, "--backends", "vm,host"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    if o.status.code() == Some(2) && err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run here: {err}"));
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{err}\n{stdout}");
    assert!(stdout.contains(" 0 mismatch"), "{stdout}");
    assert!(!stdout.contains(" 0 agree"), "{stdout}");
}
