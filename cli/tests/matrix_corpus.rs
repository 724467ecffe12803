//! The shipped corpus through the QEMU kernel matrix: every cell must load
//! each program its kernel supports and agree with the engine on every
//! deterministic packet and on the final maps; a kernel too old for a
//! program must refuse it.
//!
//! Which kernel refuses what is worked out from the instructions and the
//! kernel's history, not recorded from a run:
//! - atomic operations other than plain add (BPF_FETCH, AND/OR/XOR, XCHG,
//!   CMPXCHG) arrived in 5.12 (kernel/bpf/verifier.c `check_atomic`; 5.10
//!   only knows BPF_XADD and refuses a non-zero imm as reserved fields);
//! - ISA v4 (sign-extending loads and moves, BSWAP, signed div/mod,
//!   `gotol`) arrived in 6.6;
//! - `xdp.frags` (BPF_F_XDP_HAS_FRAGS) arrived in 5.18.
//!
//! The big-endian cell (`s390x-6.12`) runs each program's `bpfeb` build
//! (corpus/build/bpfeb/, built from the same source) and is compared with
//! the engine in big-endian mode. A program with no `bpfeb` build runs its
//! `bpfel` object there instead (the kernel runs it with big-endian memory,
//! and so does the engine).
//!
//! Runs the full default matrix when `XDPQUAL_MATRIX=1` (.ci/run sets it);
//! otherwise a two-cell subset if those kernels are already cached (a warm
//! matrix downloads nothing), otherwise it prints SKIP. Without QEMU it
//! prints SKIP (ci/setup.sh installs QEMU as optional); without
//! qemu-system-s390x or the s390x cross toolchain only the s390x cell is
//! left out, with a SKIP line saying why.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use xdpqual::isa::opcode as op;
use xdpqual::loader::load_object;
use xdpqual::mapfile::MapInit;
use xdpqual::matrix::run::render;
use xdpqual::matrix::{self, kernel, qemu, sources, spec, CellStatus, Options};
use xdpqual::program::Program;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The programs of xdpqual.toml, with their map files.
const CASES: &[(&str, Option<&str>, &[(&str, &str)])] = &[
    ("firewall.v3.o", None, &[]),
    ("lpm_filter.v3.o", None, &[]),
    ("counters.v3.o", None, &[]),
    ("reflector.v3.o", None, &[]),
    ("encap.v3.o", Some("xdp/encap"), &[]),
    ("encap.v3.o", Some("xdp/decap"), &[]),
    ("vlan.v3.o", Some("xdp/vlan_push"), &[]),
    ("vlan.v3.o", Some("xdp/vlan_pop"), &[]),
    ("truncate.v3.o", None, &[]),
    ("meta.v3.o", None, &[]),
    ("redirect.v3.o", None, &[("tx_ports", "corpus/maps/redirect-tx_ports.json")]),
    ("dispatcher.v3.o", None, &[("jmp_table", "corpus/maps/dispatcher-jmp_table.json")]),
    ("ratelimit.v3.o", None, &[]),
    ("subprogs.v3.o", None, &[]),
    ("globals.v3.o", None, &[]),
    ("v4ops.v4.o", None, &[]),
    ("counters.v2.o", None, &[]),
];

/// The oldest kernel (major, minor) that accepts `p`, and why.
fn needs(p: &Program) -> Vec<((u32, u32), &'static str)> {
    let mut out = Vec::new();
    for i in &p.insns {
        let class = i.class();
        if class == op::STX && i.code & 0xe0 == 0xc0 && i.imm != 0 {
            out.push(((5, 12), "atomic operation other than add"));
        }
        let alu = class == op::ALU || class == op::ALU64;
        let v4 = (class == op::LDX && i.code & 0xe0 == 0x80)
            || (alu && i.code & 0xf0 == 0xb0 && i.code & 0x08 != 0 && i.off != 0)
            || (class == op::ALU64 && i.code & 0xf0 == 0xd0)
            || (alu && matches!(i.code & 0xf0, 0x30 | 0x90) && i.off == 1)
            || (class == 0x06 && i.code & 0xf0 == 0x00);
        if v4 {
            out.push(((6, 6), "ISA v4 instruction"));
        }
    }
    if p.frags {
        out.push(((5, 18), "xdp.frags"));
    }
    out.sort();
    out.dedup();
    out
}

fn version(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Whether the s390x cell can run here: `Err` says why not.
fn s390x_usable(cache: &Path) -> Result<(), String> {
    qemu::find(spec::Arch::S390x).map_err(|e| e.to_string())?;
    match matrix::agent::prepare(spec::Arch::S390x, cache) {
        Ok(_) => Ok(()),
        Err(
            e @ (matrix::agent::AgentError::MissingTarget { .. }
            | matrix::agent::AgentError::MissingLinker { .. }),
        ) => Err(e.to_string()),
        Err(e) => panic!("{e}"),
    }
}

/// The `bpfeb` build of a corpus object, when the corpus has one.
fn bpfeb_of(object: &str) -> Option<PathBuf> {
    let stem = object.strip_suffix(".o")?;
    let p = root().join("corpus/build/bpfeb").join(format!("{stem}.bpfeb.o"));
    p.is_file().then_some(p)
}

/// Why a kernel-from-source cell cannot be built here, if it cannot.
fn build_blocker(c: &spec::Cell, cache: &Path) -> Option<String> {
    let spec::KernelSource::Build { source, .. } = &c.kernel else { return None };
    if kernel::is_cached(c, cache, "") {
        return None;
    }
    // The cold build is long (63 min measured on 2 busy cores): CI builds
    // it only when asked, and says so when it does not.
    if std::env::var("XDPQUAL_BUILD_KERNELS").map_or(true, |v| v != "1") {
        return Some(format!(
            "its kernel ({source}) is not built yet and XDPQUAL_BUILD_KERNELS is not 1: the cold \
             build takes 15-60 minutes on 2 cores; run `xdpqual matrix --cells {}` once to build \
             and cache it",
            c.name
        ));
    }
    let missing = matrix::build::missing_tools();
    if !missing.is_empty() {
        return Some(format!(
            "kernel build tools missing: {} (ci/setup.sh installs them)",
            missing.join(", ")
        ));
    }
    let installed = matrix::build::installed_version(source).is_some();
    (!installed && !matrix::build::is_root()).then(|| {
        format!("{source} is not installed and only root can install it (ci/setup.sh does)")
    })
}

#[test]
fn corpus_on_the_kernel_matrix() {
    let little = [spec::Arch::X86_64, spec::Arch::Aarch64];
    for arch in little {
        if let Err(e) = qemu::find(arch) {
            xdpqual::util::skip(format_args!("{e}"));
            return;
        }
    }
    for arch in little {
        match matrix::agent::prepare(arch, &matrix::cache_dir()) {
            Ok(_) => {}
            Err(e @ matrix::agent::AgentError::MissingTarget { .. }) => {
                xdpqual::util::skip(format_args!("{e}"));
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let cache = matrix::cache_dir();
    let mut all = spec::default_cells();
    if let Err(why) = s390x_usable(&cache) {
        xdpqual::util::skip(format_args!("the s390x cell is left out: {why}"));
        all.retain(|c| c.arch != spec::Arch::S390x);
    }
    let full = std::env::var("XDPQUAL_MATRIX").is_ok_and(|v| v == "1");
    // The netdevsim cell builds its kernel from source: without the build
    // tools or the source package it is left out, visibly.
    let (offload_cells, all): (Vec<spec::Cell>, Vec<spec::Cell>) =
        all.into_iter().partition(|c| c.offload.is_some());
    let mut usable_offload = Vec::new();
    for c in offload_cells {
        match build_blocker(&c, &cache) {
            None => usable_offload.push(c),
            Some(why) => xdpqual::util::skip(format_args!("cell {}: {why}", c.name)),
        }
    }
    let (cells, cases): (Vec<spec::Cell>, &[_]) = if full {
        (all.into_iter().chain(usable_offload).collect(), CASES)
    } else {
        // The big-endian cell joins the subset once its kernel is cached.
        let mirror = sources::system_mirror(Path::new("/etc/apt")).ok();
        let mut names = vec!["5.10-x86_64".to_string(), "6.12-aarch64".to_string()];
        if all.iter().any(|c| {
            c.name == "s390x-6.12"
                && mirror.as_ref().is_some_and(|m| kernel::is_cached(c, &cache, m))
        }) {
            names.push("s390x-6.12".into());
        }
        let subset = spec::select(all, &names).unwrap();
        let cached = sources::system_mirror(Path::new("/etc/apt"))
            .is_ok_and(|m| subset.iter().all(|c| kernel::is_cached(c, &cache, &m)));
        if !cached {
            xdpqual::util::skip(format_args!("set XDPQUAL_MATRIX=1 to download the Debian kernels and run the QEMU matrix (the subset runs by itself once its kernels are cached)"));
            return;
        }
        // A cached netdevsim kernel joins the subset (no build then).
        let warm = usable_offload
            .into_iter()
            .filter(|c| kernel::is_cached(c, &cache, ""))
            .collect::<Vec<_>>();
        (subset.into_iter().chain(warm).collect(), &CASES[..3])
    };
    let captures = ["pcaps/edges.pcap", "pcaps/mixed-2k.pcap", "pcaps/firewall-2k.pcap"]
        .map(|c| root().join(c));
    let mut problems = Vec::new();
    let (big_cells, little_cells): (Vec<spec::Cell>, Vec<spec::Cell>) =
        cells.into_iter().partition(|c| c.arch.big_endian());
    let mut runs = Vec::new();
    for (object, section, maps) in cases {
        runs.push((
            root().join("corpus/build").join(object),
            *section,
            *maps,
            little_cells.clone(),
        ));
        if !big_cells.is_empty() {
            let (path, what) = match bpfeb_of(object) {
                Some(p) => (p, "bpfeb"),
                None => (root().join("corpus/build").join(object), "bpfel (no bpfeb build)"),
            };
            println!("{object} on the big-endian cells: {what} {}", path.display());
            runs.push((path, *section, *maps, big_cells.clone()));
        }
    }
    // Every corpus program built for bpfeb runs on the big-endian cells,
    // also those xdpqual.toml does not list (core, the v3 build of v4ops).
    if !big_cells.is_empty() && full {
        let mut extra: Vec<PathBuf> = std::fs::read_dir(root().join("corpus/build/bpfeb"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "o"))
            .filter(|p| !runs.iter().any(|(q, ..)| q == p))
            .collect();
        extra.sort();
        for p in extra {
            println!("{} on the big-endian cells (not in xdpqual.toml)", p.display());
            runs.push((p, None, &[], big_cells.clone()));
        }
    }
    for (path, section, maps, cells) in &runs {
        let obj = load_object(path).unwrap();
        let program = obj.program(*section).unwrap().clone();
        let opts = Options {
            timeout: Duration::from_secs(180),
            maps: maps
                .iter()
                .map(|(m, f)| MapInit { map: m.to_string(), file: root().join(f) })
                .collect(),
            max_packets: Some(1000),
            ..Options::new(cells.clone(), cache.clone())
        };
        let report = matrix::run(&obj, &program, &captures, &opts).unwrap();
        println!("{}", render(&report));
        let object = path.file_name().unwrap().to_string_lossy();
        let label = format!("{object}{}", section.map(|s| format!(":{s}")).unwrap_or_default());
        let refused: Vec<&str> = report
            .cells
            .iter()
            .filter(|c| c.status == CellStatus::Refused)
            .map(|c| c.name.as_str())
            .collect();
        let agree = report.cells.iter().filter(|c| c.status == CellStatus::Agrees).count();
        xdpqual::util::count(format_args!(
            "matrix {label}: {agree} of {} cells load and agree, refused by {}",
            report.cells.len(),
            if refused.is_empty() { "none".to_string() } else { refused.join(", ") }
        ));
        let needs = needs(&program);
        for c in &report.cells {
            let what = format!("{label} on {}", c.name);
            if c.name.starts_with("netdevsim") {
                // No packets: the kernel's offload verdict must be the
                // netdevsim profile's.
                match (&c.offload, c.status) {
                    (Some(_), CellStatus::Agrees) => {}
                    (Some(o), _) => problems.push(format!("{what}: {}", o.line())),
                    (None, s) => problems.push(format!(
                        "{what}: no offload verdict ({s:?}): {}",
                        c.error.as_deref().unwrap_or("?")
                    )),
                }
                continue;
            }
            let Some(release) = &c.kernel_release else {
                problems
                    .push(format!("{what}: cell failed: {}", c.error.as_deref().unwrap_or("?")));
                continue;
            };
            let v = version(release);
            let too_new: Vec<_> = needs.iter().filter(|(min, _)| *min > v).collect();
            match (too_new.is_empty(), c.status) {
                (true, CellStatus::Agrees) | (false, CellStatus::Refused) => {}
                (true, s) => problems.push(format!(
                    "{what}: kernel {release} should load and agree, got {s:?}: {}",
                    c.error.as_deref().unwrap_or("see the table")
                )),
                (false, s) => problems.push(format!(
                    "{what}: kernel {release} should refuse ({too_new:?}), got {s:?}"
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// Every public program (`../shared/public-xdp/objects/`, or the rebuild
/// `XDPQUAL_PUBLIC_XDP_OBJECTS` names as for `public_corpus`; SKIP when
/// absent) on the netdevsim cell: the kernel's offload verdict must be the
/// netdevsim profile's. Runs when the cell's kernel is cached (a cold
/// build is the corpus test's job).
#[test]
fn public_programs_on_netdevsim() {
    let dir = std::env::var_os("XDPQUAL_PUBLIC_XDP_OBJECTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/public-xdp/objects"));
    let Ok(rd) = std::fs::read_dir(&dir) else {
        xdpqual::util::skip(format_args!(
            "{} not present (rebuild the public objects with corpus/public/rebuild.sh and set \
             XDPQUAL_PUBLIC_XDP_OBJECTS)",
            dir.display()
        ));
        return;
    };
    let cache = matrix::cache_dir();
    let Some(cell) = spec::default_cells().into_iter().find(|c| c.offload.is_some()) else {
        panic!("the default matrix has no netdevsim cell");
    };
    if !kernel::is_cached(&cell, &cache, "") || qemu::find(cell.arch).is_err() {
        xdpqual::util::skip(format_args!(
            "the {} kernel is not built yet (or no QEMU); the corpus test builds it",
            cell.name
        ));
        return;
    }
    let mut objects: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objects.sort();
    // Programs the public corpus test already knows cannot be prepared as
    // built (maps their project sizes at run time, a helper XDP may not
    // call), with the reason written there.
    let ledger = std::fs::read_to_string(root().join("cli/tests/data/public-xdp-status.tsv"))
        .expect("the public corpus ledger");
    let cannot_run: std::collections::BTreeMap<&str, &str> = ledger
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            (f.len() == 3 && f[1] == "cannot-run").then(|| (f[0], f[2]))
        })
        .collect();
    let mut problems = Vec::new();
    let (mut checked, mut known, mut unloadable) = (0, 0, 0);
    for path in &objects {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        // As the public corpus test loads them: sections of no declared
        // type as XDP (`--type xdp`), and the map sizes the project's own
        // loader sets (`--map-size` lines of the object's `.args` file).
        let load = xdpqual::loader::LoadOptions {
            prog_type: Some(xdpqual::loader::ProgType::Xdp),
            map_sizes: map_sizes(&file),
            ..Default::default()
        };
        let obj = match xdpqual::loader::load_target(path, &load) {
            Ok(obj) => obj,
            Err(e) => {
                // Not a BPF object, or one the loader refuses: the public
                // corpus test holds those to its ledger; here they are
                // counted, never silently passed over.
                println!("NOTE: {file}: not loaded, so not offload-checked: {e}");
                unloadable += 1;
                continue;
            }
        };
        for program in &obj.programs {
            let what = format!("{file}:{}", program.section);
            if let Some(reason) = cannot_run.get(what.as_str()) {
                // Several programs can share a section (Cilium's tails).
                xdpqual::util::skip(format_args!("{what} (program {}): {reason}", program.name));
                known += 1;
                continue;
            }
            let opts = Options {
                timeout: Duration::from_secs(180),
                max_packets: Some(1),
                load: xdpqual::loader::LoadOptions {
                    select: Some(program.section.clone()),
                    ..load.clone()
                },
                ..Options::new(vec![cell.clone()], cache.clone())
            };
            let captures = [root().join("pcaps/edges.pcap")];
            match matrix::run(&obj, program, &captures, &opts) {
                Err(e) => problems.push(format!("{what}: {e:#}")),
                Ok(r) => match &r.cells[0].offload {
                    Some(o) if o.agrees => checked += 1,
                    Some(o) => problems.push(format!("{what}: {}", o.line())),
                    None => problems.push(format!(
                        "{what}: no offload verdict: {}",
                        r.cells[0].error.as_deref().unwrap_or("?")
                    )),
                },
            }
        }
    }
    xdpqual::util::count(format_args!(
        "netdevsim: {checked} public programs agree with the profile; {known} cannot be \
         prepared as built (the public corpus ledger's reasons); {unloadable} objects not loaded"
    ));
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// `--map-size=NAME=N` lines of a public object's `.args` file (in
/// `../shared/public-xdp/maps/` or `corpus/public/maps/`), as the public
/// corpus test reads them.
fn map_sizes(object: &str) -> Vec<(String, u32)> {
    let Some((_, pairs)) = common::public_args::public_args(object) else { return Vec::new() };
    pairs
        .into_iter()
        .filter(|(k, _)| k == "--map-size")
        .filter_map(|(_, kv)| {
            let (name, n) = kv.split_once('=')?;
            Some((name.to_string(), n.parse().expect("a map size in an .args file")))
        })
        .collect()
}
