//! `diff` releases every kernel program and map it created, when it
//! returns normally and when it fails part-way.
//!
//! Two views: the BPF file descriptors this process holds (the kernel frees
//! a program or map once no fd, pin, link or map slot refers to it, and
//! diff pins and attaches nothing), and, for a session whose ids we know,
//! the kernel's own id lists. The tests run in this binary only, one at a
//! time, so no other test's descriptors are counted.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;

use xdpqual::backends::host::{self, HostBackend};
use xdpqual::diff::{self, BackendKind, DiffOptions};
use xdpqual::mapfile::MapInit;
use xdpqual_testkit::pair::{PairOpen, VmHostPair};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// (programs, maps) this process holds descriptors for.
fn bpf_fds() -> (usize, usize) {
    let mut progs = 0;
    let mut maps = 0;
    for e in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            match target.to_string_lossy().as_ref() {
                "anon_inode:bpf-prog" => progs += 1,
                "anon_inode:bpf-map" => maps += 1,
                _ => {}
            }
        }
    }
    (progs, maps)
}

fn dispatcher() -> (xdpqual::program::Object, Vec<MapInit>) {
    let root = common::repo_root();
    let obj = xdpqual::loader::load_object(&root.join("corpus/build/dispatcher.v3.o"))
        .expect("dispatcher");
    let maps = vec![MapInit {
        map: "jmp_table".into(),
        file: root.join("corpus/maps/dispatcher-jmp_table.json"),
    }];
    (obj, maps)
}

fn opts(maps: Vec<MapInit>) -> DiffOptions {
    DiffOptions {
        backends: vec![BackendKind::Host],
        maps,
        rx_queue_index: 0,
        max_reported: 5,
        fib: None,
        conntrack: None,
    }
}

fn available() -> bool {
    match HostBackend::open() {
        Ok(_) => true,
        Err(u) => {
            xdpqual::util::skip(format_args!("host kernel backend unavailable: {u}"));
            false
        }
    }
}

/// A prog array drops its programs from a workqueue when its last user
/// reference goes (kernel/bpf/arraymap.c, prog_array_map_clear), so the
/// ids may outlive the fds briefly: poll, bounded.
fn wait_gone(progs: &[u32], maps: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut left = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let live_p = host::kernel_program_ids().expect("program ids");
        let live_m = host::kernel_map_ids().expect("map ids");
        left = (
            progs.iter().copied().filter(|i| live_p.contains(i)).collect(),
            maps.iter().copied().filter(|i| live_m.contains(i)).collect(),
        );
        if left.0.is_empty() && left.1.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    left
}

#[test]
fn a_session_creates_kernel_objects_and_dropping_it_frees_them() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let (obj, maps) = dispatcher();
    let before = bpf_fds();
    let pair = match VmHostPair::open(&obj, &obj.programs[0], &maps).expect("open") {
        PairOpen::Ready(p) => p,
        other => panic!("dispatcher did not load: {other:?}"),
    };
    let (progs, map_ids) = pair.host().kernel_ids().expect("ids");
    // The dispatcher object: 3 programs (entry and two tail-call targets).
    assert_eq!(progs.len(), obj.programs.len());
    assert_eq!(map_ids.len(), obj.maps.len());
    let during = bpf_fds();
    assert_eq!(during.0 - before.0, progs.len(), "one fd per program");
    assert!(during.1 - before.1 >= map_ids.len(), "at least one fd per map");
    let live_p = host::kernel_program_ids().expect("program ids");
    assert!(
        progs.iter().all(|i| live_p.contains(i)),
        "the session's programs are in the kernel's list"
    );
    drop(pair);
    assert_eq!(bpf_fds(), before, "descriptors left after the session was dropped");
    let left = wait_gone(&progs, &map_ids);
    assert_eq!(left, (vec![], vec![]), "kernel objects still alive after the session was dropped");
}

#[test]
fn diff_run_releases_everything_on_return() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let (obj, maps) = dispatcher();
    let capture = common::repo_root().join("pcaps/mixed-2k.pcap");
    assert!(capture.is_file(), "{} missing", capture.display());
    let before = bpf_fds();
    let report = diff::run(&obj, &obj.programs[0], &[capture], &opts(maps)).expect("diff");
    assert!(
        report.backends.contains(&BackendKind::Host),
        "the host backend took part: {:?}",
        report.skipped
    );
    assert!(report.packets > 0);
    assert_eq!(bpf_fds(), before, "diff::run left BPF descriptors open");
}

#[test]
fn diff_run_releases_everything_when_a_capture_fails_midway() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let (obj, maps) = dispatcher();
    let good = common::repo_root().join("pcaps/mixed-2k.pcap");
    let missing = PathBuf::from("/nonexistent/xdpqual-leak-test.pcap");
    let before = bpf_fds();
    // The first capture is replayed (the kernel session is live), then
    // opening the second fails and diff::run returns the error.
    let err = diff::run(&obj, &obj.programs[0], &[good, missing], &opts(maps))
        .expect_err("second capture is missing");
    assert!(format!("{err:#}").contains("xdpqual-leak-test.pcap"), "{err:#}");
    assert_eq!(bpf_fds(), before, "diff::run left BPF descriptors open on its error path");
}
