//! One CO-RE program in every little-endian cell of the QEMU matrix
//! (issue 14: "the relocations resolve per cell kernel, and where a field
//! moved between kernels the cells show it").
//!
//! corpus/core-cells/core_cells.c writes into each frame what four CO-RE
//! relocations resolved to: `offsetof(struct net_device, ifindex)`,
//! `sizeof(struct net_device)`, whether `net_device` has `xdp_features`
//! and whether `xdp_buff` has `flags`. Each cell's agent relocates the
//! object against its own kernel's /sys/kernel/btf/vmlinux; the engine
//! reference for that cell runs the instructions the guest relocated, so
//! "agrees" means the kernel and the engine wrote the same values.
//!
//! The expected values ([`EXPECTED`]) were worked out from each Debian
//! kernel's BTF with bpftool, not from xdpqual: the `.BTF` section was cut
//! out of the cached kernel image (arm64 `Image`: found by its header;
//! x86 `bzImage`: the payload decompressed with `zstd -d` / `lz4 -d` first)
//! and read with `bpftool btf dump file F format raw`, whose
//! `STRUCT 'net_device' size=N` line and member `bits_offset`s give them
//! (`bits_offset / 8`). On sid (7.2) `xdp_buff.flags` sits in an anonymous
//! struct inside an anonymous union at byte 52, which libbpf's member search
//! (tools/lib/bpf/relo_core.c `bpf_core_match_member`) descends into, so it
//! exists there.
//!
//! Runs the cells whose kernels are cached (all 8 with `XDPQUAL_MATRIX=1`,
//! which downloads them); prints SKIP without QEMU, clang-19 or cached
//! kernels. A BTF not in the table (Debian moved a suite on) has its values
//! checked by nobody: that cell is named in a SKIP line, and its agreement
//! with the engine is still required.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use xdpqual::loader::load_object;
use xdpqual::matrix::run::render;
use xdpqual::matrix::{self, kernel, qemu, sources, spec, CellStatus, Options};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// (kernel release, SHA-256 of its BTF, ifindex offset, net_device size,
/// has xdp_features, xdp_buff has flags), from bpftool over each kernel's
/// BTF. The hash is of the `.BTF` section cut from the image; the guests'
/// `/sys/kernel/btf/vmlinux` hash the same (the report shows it), and a
/// cell is checked against the row of exactly the BTF it used.
type Row = (&'static str, &'static str, u32, u32, u8, u8);
const EXPECTED: &[Row] = &[
    (
        "5.10.0-32-cloud-amd64",
        "b0675525f59b957c8bcdd62e30ba37b088f628c880c88136e460180ab671cdd3",
        256,
        2368,
        0,
        0,
    ),
    (
        "5.10.0-32-cloud-arm64",
        "e4dab804f750cdf472b71d7427da1d4f696f04ae4223b7aae49f80968a80af90",
        256,
        2368,
        0,
        0,
    ),
    (
        "6.1.0-50-cloud-amd64",
        "74f530e5ff2ba7e0bd078e5cf9d253742c0c091f11ab445947be60365e311550",
        216,
        2432,
        0,
        1,
    ),
    (
        "6.1.0-50-cloud-arm64",
        "45314ec2694d1a97397cab7dfff58c2374783d513b0ade2e7fcbfa0f78e32da3",
        216,
        2432,
        0,
        1,
    ),
    (
        "6.12.117+deb13-cloud-amd64",
        "58b2686169bafd84ea6b25cbad4426e8fe725effaea3ae9bc3e42bc0fe4dd210",
        224,
        2496,
        1,
        1,
    ),
    (
        "6.12.117+deb13-cloud-arm64",
        "0cdcdcd6e6a50aa51d18026e82917b580afa87441b8f2f298a1d4103e4413a08",
        224,
        2560,
        1,
        1,
    ),
    (
        "7.2.13+deb14-cloud-amd64",
        "66d40f12f4a29865ce1bceef5489d33209d7ba25f6022ecc7b564004e840b355",
        224,
        2752,
        1,
        1,
    ),
    (
        "7.2.13+deb14-cloud-arm64",
        "8763c812826f24d88be62e5f143a19696d014194bbe291715d22b3fc33f19e89",
        224,
        2752,
        1,
        1,
    ),
];

/// The relocation's final value from its `inspect` line
/// (`... 0 -> 256` or `... 1 (unchanged)`).
fn resolved(line: &str) -> Option<i64> {
    let v = match line.rsplit_once(" -> ") {
        Some((_, to)) => to,
        None => line.strip_suffix(" (unchanged)")?.rsplit(' ').next()?,
    };
    v.trim().parse().ok()
}

fn compile(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("core_cells.o");
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "x86_64-linux-gnu".into());
    let o = Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg("-c")
        .arg(root().join("corpus/core-cells/core_cells.c"))
        .arg("-o")
        .arg(&out)
        .output()
        .ok()?;
    assert!(o.status.success(), "clang: {}", String::from_utf8_lossy(&o.stderr));
    Some(out)
}

#[test]
fn core_program_resolves_per_cell_kernel() {
    let little = [spec::Arch::X86_64, spec::Arch::Aarch64];
    for arch in little {
        if let Err(e) = qemu::find(arch) {
            xdpqual::util::skip(format_args!("{e}"));
            return;
        }
    }
    let cache = matrix::cache_dir();
    for arch in little {
        match matrix::agent::prepare(arch, &cache) {
            Ok(_) => {}
            Err(e @ matrix::agent::AgentError::MissingTarget { .. }) => {
                xdpqual::util::skip(format_args!("{e}"));
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let full = std::env::var("XDPQUAL_MATRIX").is_ok_and(|v| v == "1");
    let mirror = sources::system_mirror(Path::new("/etc/apt")).ok();
    let cells: Vec<spec::Cell> = spec::default_cells()
        .into_iter()
        .filter(|c| !c.arch.big_endian() && c.offload.is_none())
        .filter(|c| full || mirror.as_ref().is_some_and(|m| kernel::is_cached(c, &cache, m)))
        .collect();
    if cells.is_empty() {
        xdpqual::util::skip(format_args!(
            "no matrix kernel is cached; set XDPQUAL_MATRIX=1 to download them"
        ));
        return;
    }
    let dir = std::env::temp_dir().join(format!("xdpqual-matrix-core-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some(object) = compile(&dir) else {
        xdpqual::util::skip(format_args!("clang-19 is not installed"));
        return;
    };
    let obj = load_object(&object).unwrap();
    let program = obj.programs[0].clone();
    let opts = Options {
        timeout: Duration::from_secs(180),
        max_packets: Some(20),
        ..Options::new(cells.clone(), cache.clone())
    };
    let report = matrix::run(&obj, &program, &[root().join("pcaps/edges.pcap")], &opts).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    println!("{}", render(&report));

    let mut problems = Vec::new();
    let mut checked = Vec::new();
    let mut seen_values = std::collections::BTreeSet::new();
    for c in &report.cells {
        if c.status != CellStatus::Agrees {
            problems.push(format!("{}: {:?} {:?}", c.name, c.status, c.error));
            continue;
        }
        let Some(core) = &c.core else {
            problems.push(format!("{}: no CO-RE relocation in the report", c.name));
            continue;
        };
        if core.btf != "/sys/kernel/btf/vmlinux" || core.btf_sha256.len() != 64 {
            problems
                .push(format!("{}: relocated against {} ({})", c.name, core.btf, core.btf_sha256));
        }
        let release = c.kernel_release.clone().unwrap_or_default();
        let Some(&(_, _, ifindex, size, features, flags)) =
            EXPECTED.iter().find(|(_, sha, ..)| *sha == core.btf_sha256)
        else {
            xdpqual::util::skip(format_args!(
                "cell {}: no worked-out values for the BTF of kernel {release} (sha256 {}); its \
                 relocations were not checked",
                c.name, core.btf_sha256
            ));
            continue;
        };
        let value = |kind: &str, ty: &str, access: &str| -> Option<i64> {
            core.relocations
                .iter()
                .find(|l| l.contains(&format!("{kind} {ty} [{access}]")))
                .and_then(|l| resolved(l))
        };
        let got = (
            value("byte_off", "net_device", "0:0"),
            value("type_size", "net_device", "0"),
            value("field_exists", "net_device", "0:1"),
            value("field_exists", "xdp_buff", "0:0"),
        );
        let want =
            (Some(ifindex as i64), Some(size as i64), Some(features as i64), Some(flags as i64));
        if got != want {
            problems.push(format!(
                "{} ({release}): relocated to {got:?}, its BTF says {want:?}: {:?}",
                c.name, core.relocations
            ));
        } else {
            checked.push(c.name.clone());
            seen_values.insert(want);
        }
    }
    xdpqual::util::count(format_args!(
        "matrix core_cells.o: {} of {} cells agree with the engine with relocations worked out from \
         their own kernel's BTF; {} distinct relocation results",
        checked.len(),
        report.cells.len(),
        seen_values.len()
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every kernel of the matrix lays these types out differently: the
    // cells that ran must show as many results as kernels they cover
    // (the table has 5 for 4 releases: 6.12 differs by architecture).
    let distinct_rows: std::collections::BTreeSet<_> = EXPECTED
        .iter()
        .filter(|(_, sha, ..)| {
            report.cells.iter().any(|c| c.core.as_ref().is_some_and(|k| k.btf_sha256 == *sha))
        })
        .map(|&(_, _, a, b, c, d)| (Some(a as i64), Some(b as i64), Some(c as i64), Some(d as i64)))
        .collect();
    assert_eq!(seen_values, distinct_rows);
}
