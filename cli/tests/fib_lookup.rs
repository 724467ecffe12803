//! bpf_fib_lookup (helper 69) against the modelled FIB (`--fib`), and the
//! host kernel in a namespace built from the same file.
//!
//! tests/data/loader/fib_lookup.c takes the lookup's inputs from the frame
//! and records what the helper returned and wrote (its header comment);
//! tests/data/fib/forward.json is the FIB. The expected results below are
//! worked out by hand from those two files and the kernel's rules
//! (net/core/filter.c bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup), not
//! recorded from a run.

use std::path::{Path, PathBuf};
use std::process::Command;

use xdpqual::capture::{write_pcap, TsPrecision};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(p)
}

const LEN: usize = 108;
const TOT: u16 = 94; // LEN - 14
const V4SRC: [u8; 4] = [198, 51, 100, 1];
const V6SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A frame: source MAC 02:00:00:TBID:FLAGS:IN, then an IPv4 or IPv6 header.
fn frame(tbid: u8, flags: u8, ingress: u8, dst: &[u8], tot_len: u16) -> Vec<u8> {
    let mut f = vec![0u8; LEN];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, tbid, flags, ingress]);
    if dst.len() == 4 {
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&tot_len.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&V4SRC);
        f[30..34].copy_from_slice(dst);
    } else {
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f[18..20].copy_from_slice(&(tot_len - 40).to_be_bytes());
        f[20] = 17;
        f[21] = 64;
        f[22..38].copy_from_slice(&V6SRC);
        f[38..54].copy_from_slice(dst);
    }
    f
}

fn v4(a: [u8; 4]) -> Vec<u8> {
    a.to_vec()
}
fn v6(s: &str) -> Vec<u8> {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec()
}

const MAC_FWD0: [u8; 6] = [2, 0, 0, 0, 2, 2];
const MAC_FWD1: [u8; 6] = [2, 0, 0, 0, 3, 3];
const NEIGH_10_1_0_5: [u8; 6] = [2, 0, 0, 0, 0xaa, 5];
const NEIGH_192_0_2_1: [u8; 6] = [2, 0, 0, 0, 0xbb, 1];
const NEIGH_V6_GW: [u8; 6] = [2, 0, 0, 0, 0xbb, 0x61];

/// One packet: its frame, the verdict, and what the record and (for
/// SUCCESS) the Ethernet header must hold.
struct Case {
    what: &'static str,
    frame: Vec<u8>,
    verdict: &'static str,
    rc: i32,
    ifindex: u32,
    metric: u32,
    mtu: u16,
    dst: Vec<u8>,
    /// (smac, dmac) the helper wrote; also the new Ethernet source and
    /// destination when rc is 0.
    macs: Option<([u8; 6], [u8; 6])>,
}

impl Case {
    fn expected(&self) -> Vec<u8> {
        let mut f = self.frame.clone();
        let r = &mut f[64..108];
        r[0..4].copy_from_slice(&self.rc.to_ne_bytes());
        r[4..8].copy_from_slice(&self.ifindex.to_ne_bytes());
        r[8..12].copy_from_slice(&self.metric.to_ne_bytes());
        r[12..14].copy_from_slice(&self.mtu.to_ne_bytes());
        r[14] = if self.frame[12] == 0x08 { 2 } else { 10 };
        r[16..16 + self.dst.len()].copy_from_slice(&self.dst);
        let (smac, dmac) = self.macs.unwrap_or_default();
        r[32..38].copy_from_slice(&smac);
        r[38..44].copy_from_slice(&dmac);
        if self.rc == 0 {
            f[0..6].copy_from_slice(&dmac);
            f[6..12].copy_from_slice(&smac);
        }
        f
    }
}

fn cases() -> Vec<Case> {
    let c = |what, frame, verdict, rc, ifindex, metric, mtu, dst: Vec<u8>, macs| Case {
        what,
        frame,
        verdict,
        rc,
        ifindex,
        metric,
        mtu,
        dst,
        macs,
    };
    let d = |a| v4(a);
    vec![
        // 10.1/16 is directly connected on fwd0 (2), the ingress: the next
        // hop is the destination itself, whose neighbour is known.
        c(
            "connected, same device",
            frame(0, 0, 2, &d([10, 1, 0, 5]), TOT),
            "TX",
            0,
            2,
            0,
            1500,
            d([10, 1, 0, 5]),
            Some((MAC_FWD0, NEIGH_10_1_0_5)),
        ),
        // 10.2/16 via 192.0.2.1 on fwd1 (3, MTU 1400), metric 20.
        c(
            "gateway, other device",
            frame(0, 0, 2, &d([10, 2, 3, 4]), TOT),
            "REDIRECT",
            0,
            3,
            20,
            1400,
            d([192, 0, 2, 1]),
            Some((MAC_FWD1, NEIGH_192_0_2_1)),
        ),
        // 10.3/16 via 192.0.2.9: no neighbour. Metric, ifindex and the
        // gateway are written; mtu_result keeps tot_len; no MACs.
        c(
            "no neighbour",
            frame(0, 0, 2, &d([10, 3, 0, 1]), TOT),
            "PASS",
            7,
            3,
            0,
            TOT,
            d([192, 0, 2, 9]),
            None,
        ),
        c(
            "no route",
            frame(0, 0, 2, &d([10, 9, 9, 9]), TOT),
            "PASS",
            4,
            2,
            0,
            TOT,
            d([10, 9, 9, 9]),
            None,
        ),
        c(
            "blackhole",
            frame(0, 0, 2, &d([10, 66, 1, 1]), TOT),
            "DROP",
            1,
            2,
            0,
            TOT,
            d([10, 66, 1, 1]),
            None,
        ),
        c(
            "unreachable",
            frame(0, 0, 2, &d([10, 67, 1, 1]), TOT),
            "DROP",
            2,
            2,
            0,
            TOT,
            d([10, 67, 1, 1]),
            None,
        ),
        c(
            "prohibit",
            frame(0, 0, 2, &d([10, 68, 1, 1]), TOT),
            "DROP",
            3,
            2,
            0,
            TOT,
            d([10, 68, 1, 1]),
            None,
        ),
        // tot_len 1450 > fwd1's 1400: only mtu_result changes.
        c(
            "fragmentation needed",
            frame(0, 0, 2, &d([10, 2, 3, 4]), 1450),
            "DROP",
            8,
            2,
            0,
            1400,
            d([10, 2, 3, 4]),
            None,
        ),
        c(
            "forwarding off on the ingress",
            frame(0, 0, 4, &d([10, 1, 0, 5]), TOT),
            "PASS",
            5,
            4,
            0,
            TOT,
            d([10, 1, 0, 5]),
            None,
        ),
        c(
            "no such ingress device (-ENODEV)",
            frame(0, 0, 9, &d([10, 1, 0, 5]), TOT),
            "ABORTED",
            -19,
            9,
            0,
            TOT,
            d([10, 1, 0, 5]),
            None,
        ),
        // SKIP_NEIGH (4): success without MACs, so the Ethernet addresses
        // become zero.
        c(
            "skip neighbour",
            frame(0, 4, 2, &d([10, 3, 0, 1]), TOT),
            "REDIRECT",
            0,
            3,
            0,
            1400,
            d([192, 0, 2, 9]),
            Some(([0; 6], [0; 6])),
        ),
        // DIRECT|TBID (9) in table 100: 10.5/16 on fwd0, no neighbour.
        c(
            "table 100",
            frame(100, 9, 2, &d([10, 5, 0, 7]), TOT),
            "PASS",
            7,
            2,
            0,
            TOT,
            d([10, 5, 0, 7]),
            None,
        ),
        c(
            "IPv6 gateway",
            frame(0, 0, 2, &v6("2001:db8:2::7"), TOT),
            "REDIRECT",
            0,
            3,
            5,
            1400,
            v6("2001:db8:ff::1"),
            Some((MAC_FWD1, NEIGH_V6_GW)),
        ),
        c(
            "IPv6 link-local destination",
            frame(0, 0, 2, &v6("fe80::1"), TOT),
            "PASS",
            4,
            2,
            0,
            TOT,
            v6("fe80::1"),
            None,
        ),
        c(
            "unknown flag (-EINVAL)",
            frame(0, 64, 2, &d([10, 1, 0, 5]), TOT),
            "ABORTED",
            -22,
            2,
            0,
            TOT,
            d([10, 1, 0, 5]),
            None,
        ),
        // Ingress loopback (ifindex 1), which forwards in the namespace.
        c(
            "from loopback",
            frame(0, 0, 1, &d([10, 1, 0, 5]), TOT),
            "REDIRECT",
            0,
            2,
            0,
            1500,
            d([10, 1, 0, 5]),
            Some((MAC_FWD0, NEIGH_10_1_0_5)),
        ),
        // OUTPUT (2) on fwd0: the only route to 10.2.3.4 leaves by fwd1.
        c(
            "output device mismatch",
            frame(0, 2, 2, &d([10, 2, 3, 4]), TOT),
            "PASS",
            4,
            2,
            0,
            TOT,
            d([10, 2, 3, 4]),
            None,
        ),
        c(
            "IPv6 blackhole",
            frame(0, 0, 2, &v6("2001:db8:66::1"), TOT),
            "DROP",
            1,
            2,
            0,
            TOT,
            v6("2001:db8:66::1"),
            None,
        ),
        // SRC|SKIP_NEIGH (20): IPv6 finds no source address (no interface
        // has one) after writing metric, ifindex and gateway.
        c(
            "IPv6 no source address",
            frame(0, 20, 2, &v6("2001:db8:2::7"), TOT),
            "PASS",
            9,
            3,
            5,
            TOT,
            v6("2001:db8:ff::1"),
            None,
        ),
    ]
}

/// Frames of a classic pcap written by xdpqual.
fn frames(path: &Path) -> Vec<Vec<u8>> {
    let Ok(p) = std::fs::read(path) else { return Vec::new() };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= p.len() {
        let len = u32::from_le_bytes(p[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(p[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    out
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xdpqual"))
}

#[test]
fn engine_results_match_the_worked_out_ones_and_the_kernel() {
    let dir = std::env::temp_dir().join(format!("xdpqual-fib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = cases();
    let cap = dir.join("in.pcap");
    let mut runt = vec![0u8; 60];
    runt[12] = 0x08;
    let all: Vec<Vec<u8>> =
        cases.iter().map(|c| c.frame.clone()).chain(std::iter::once(runt.clone())).collect();
    write_pcap(
        &cap,
        TsPrecision::Microsecond,
        all.iter().enumerate().map(|(i, f)| (i as u64, f.clone())),
    )
    .unwrap();
    let prog = data("loader/fib_lookup.o");
    let fib = data("fib/forward.json");
    let verdicts = ["TX", "REDIRECT", "PASS", "DROP", "ABORTED"];
    let mut cmd = bin();
    cmd.args(["replay", prog.to_str().unwrap(), cap.to_str().unwrap(), "--fib"]).arg(&fib);
    for v in verdicts {
        cmd.arg(format!("--write-pcap={v}={}", dir.join(v).display()));
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    for v in verdicts {
        let mut want: Vec<Vec<u8>> =
            cases.iter().filter(|c| c.verdict == v).map(Case::expected).collect();
        if v == "PASS" {
            want.push(runt.clone());
        }
        let got = frames(&dir.join(v));
        assert_eq!(got.len(), want.len(), "{v}: number of frames");
        let named: Vec<&str> = cases.iter().filter(|c| c.verdict == v).map(|c| c.what).collect();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{v} frame {i} ({})", named.get(i).unwrap_or(&"runt"));
        }
    }

    // The kernel, in a namespace built from the same file.
    let o = bin()
        .args(["diff", prog.to_str().unwrap(), cap.to_str().unwrap(), "--fib"])
        .arg(&fib)
        .args(["--backends", "vm,host", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if err.contains("could not run") {
        xdpqual::util::skip(format_args!("the host backend cannot run this here: {err}"));
    } else {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(0), "{err}\n{v}");
        assert_eq!(v["backends"], serde_json::json!(["vm", "host"]));
        assert_eq!(v["agreed"].as_u64(), Some(all.len() as u64), "{v}");
        println!("engine and kernel agree on all {} packets", all.len());
    }
    // The namespace is gone afterwards.
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let me = format!("xdpqual-fib{}-", std::process::id());
    assert!(!String::from_utf8_lossy(&ns.stdout).contains(&me));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_fib_the_helper_fault_names_the_option() {
    let dir = std::env::temp_dir().join(format!("xdpqual-fib-none-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("in.pcap");
    write_pcap(&cap, TsPrecision::Microsecond, [(0u64, frame(0, 0, 2, &v4([10, 1, 0, 5]), TOT))])
        .unwrap();
    let o = bin()
        .args(["replay", data("loader/fib_lookup.o").to_str().unwrap(), cap.to_str().unwrap()])
        .args(["--summary-json"])
        .output()
        .unwrap();
    let out =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("--fib"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_fib_files_exit_2_naming_the_entry() {
    let dir = std::env::temp_dir().join(format!("xdpqual-fib-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("in.pcap");
    write_pcap(&cap, TsPrecision::Microsecond, [(0u64, vec![0u8; 60])]).unwrap();
    let iface = r#""interfaces": [{"ifindex": 2, "name": "a", "mac": "02:00:00:00:00:02"}]"#;
    for (name, text, needle) in [
        (
            "overlap",
            format!(
                r#"{{ {iface}, "routes": [{{"dst": "10.0.0.0/8", "dev": "a"}}, {{"dst": "10.0.0.0/8", "type": "blackhole"}}] }}"#
            ),
            "routes[1]",
        ),
        (
            "badmac",
            r#"{"interfaces": [{"ifindex": 2, "name": "a", "mac": "02:00:00:00:00:zz"}]}"#
                .to_string(),
            "interfaces[0]",
        ),
        (
            "unknown-dev",
            format!(
                r#"{{ {iface}, "neighbours": [{{"ip": "10.0.0.1", "mac": "02:00:00:00:00:01", "dev": "eth9"}}] }}"#
            ),
            "neighbours[0]",
        ),
        ("syntax", r#"{"routes": [ "#.to_string(), "line"),
    ] {
        let f = dir.join(format!("{name}.json"));
        std::fs::write(&f, text).unwrap();
        for sub in ["replay", "diff"] {
            let o = bin()
                .args([
                    sub,
                    data("loader/fib_lookup.o").to_str().unwrap(),
                    cap.to_str().unwrap(),
                    "--fib",
                ])
                .arg(&f)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{sub} {name}: {err}");
            assert!(
                err.contains(needle) && err.contains(&*f.to_string_lossy()),
                "{sub} {name}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--fib-from-netns`: a namespace built from forward.json reads back as
/// the same FIB (routes and neighbours compared as sets: the kernel lists
/// them in its own order).
#[test]
fn a_namespace_snapshot_reads_back_as_the_file() {
    use xdpqual::backends::fib_netns::FibNamespace;
    use xdpqual::fibfile;
    let want = fibfile::FibSpec::load(&data("fib/forward.json")).unwrap().fib;
    let ns = match FibNamespace::create(&want) {
        Ok(ns) => ns,
        Err(e) => {
            xdpqual::util::skip(format_args!("cannot build a network namespace here: {e:#}"));
            return;
        }
    };
    let (mut got, notes) = fibfile::from_netns(&ns.name).unwrap();
    let mut want = want;
    for f in [&mut got, &mut want] {
        f.interfaces.sort_by_key(|i| i.ifindex);
        f.routes.sort_by_key(|r| (r.table, r.dst, r.prefix_len));
        f.neighbours.sort_by_key(|n| (n.ifindex, n.ip));
    }
    assert_eq!(got, want, "notes: {notes:?}");
    // Nothing of the file was left out; what was is the kernel's own
    // IPv6 multicast routes (ff00::/8, local table) on each interface.
    assert!(notes.iter().all(|n| n.contains("left out") && n.contains("ff00::/8")), "{notes:?}");
}
