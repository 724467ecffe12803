//! A guest that cannot run fails its cell, with the console tail kept, and
//! never hangs the run. Needs QEMU (SKIP without); the panic case also
//! needs a cached Debian kernel (SKIP without).

use std::path::Path;
use std::time::Duration;

use xdpqual::loader::load_object;
use xdpqual::matrix::qemu::{self, Accel, VmSpec};
use xdpqual::matrix::run::AccelChoice;
use xdpqual::matrix::spec::{Arch, Cell, KernelSource};
use xdpqual::matrix::{self, initramfs, kernel, sources, spec, CellStatus, Options};

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn a_kernel_that_is_not_a_kernel_fails_its_cell_only() {
    let Ok(_) = qemu::find(Arch::X86_64) else {
        xdpqual::util::skip(format_args!("qemu-system-x86_64 not installed"));
        return;
    };
    if let Err(e) = matrix::agent::prepare(Arch::X86_64, &matrix::cache_dir()) {
        xdpqual::util::skip(format_args!("{e}"));
        return;
    }
    let dir = std::env::temp_dir().join(format!("xdpqual-matrix-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("vmlinuz");
    std::fs::write(&junk, vec![0x5au8; 64 * 1024]).unwrap();
    let obj = load_object(&root().join("corpus/build/firewall.v3.o")).unwrap();
    let opts = Options {
        cells: vec![Cell {
            name: "junk".into(),
            arch: Arch::X86_64,
            kernel: KernelSource::File(junk),
            required: true,
        }],
        cache: dir.join("cache"),
        mirror: None,
        refresh: false,
        jobs: None,
        timeout: Duration::from_secs(30),
        agent_dir: None,
        maps: vec![],
        rx_queue_index: 0,
        max_packets: Some(10),
        accel: AccelChoice::Tcg,
    };
    let report =
        matrix::run(&obj, &obj.programs[0], &[root().join("pcaps/edges.pcap")], &opts).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let cell = &report.cells[0];
    assert_eq!(cell.status, CellStatus::Failed);
    assert!(!report.passes());
    // QEMU refuses the image and says why on stderr, which the tail keeps.
    let tail = cell.console_tail.as_deref().unwrap_or("");
    assert!(tail.contains("qemu stderr"), "{tail}");
    assert!(
        cell.error.as_deref().unwrap().contains("before the guest reached /init"),
        "{:?}",
        cell.error
    );
}

#[test]
fn a_kernel_panic_ends_the_guest_with_its_console() {
    let Ok(q) = qemu::find(Arch::X86_64) else {
        xdpqual::util::skip(format_args!("qemu-system-x86_64 not installed"));
        return;
    };
    let cache = matrix::cache_dir();
    let cell = spec::select(spec::default_cells(), &["6.1-x86_64".into()]).unwrap().remove(0);
    let Ok(mirror) = sources::system_mirror(Path::new("/etc/apt")) else {
        xdpqual::util::skip(format_args!("no apt mirror configured"));
        return;
    };
    if !kernel::is_cached(&cell, &cache, &mirror) {
        xdpqual::util::skip(format_args!(
            "the 6.1-x86_64 kernel is not cached (run the matrix once)"
        ));
        return;
    }
    let tree = matrix::apt::AptTree::new(&cache, &mirror, vec![]);
    let k = kernel::resolve(&cell, &cache, &tree, false).unwrap();
    // An initramfs without /init: the kernel finds no init and panics.
    let dir = std::env::temp_dir().join(format!("xdpqual-matrix-panic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = dir.join("empty.cpio");
    std::fs::write(
        &initrd,
        initramfs::write(&[
            initramfs::Entry::Dir("dev"),
            initramfs::Entry::CharDev { name: "dev/console", major: 5, minor: 1 },
        ]),
    )
    .unwrap();
    let vm = qemu::boot(&VmSpec {
        qemu: &q,
        arch: Arch::X86_64,
        kernel: &k.path,
        initrd: &initrd,
        accel: Accel::Tcg,
        hello_timeout: Duration::from_secs(120),
        timeout: Duration::from_secs(120),
    })
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(vm.hello.is_none());
    assert!(!vm.timed_out, "panic=-1 and -no-reboot end QEMU; it should not need killing");
    assert!(vm.tail().contains("Kernel panic"), "{}", vm.tail());
}

#[test]
fn a_guest_that_never_reports_is_killed_at_its_deadline() {
    let Ok(q) = qemu::find(Arch::X86_64) else {
        xdpqual::util::skip(format_args!("qemu-system-x86_64 not installed"));
        return;
    };
    // busybox-static (installed by ci/setup.sh) as /init runs busybox's
    // init, which never powers off and never says our hello.
    let Ok(busybox) = std::fs::read("/bin/busybox") else {
        xdpqual::util::skip(format_args!("/bin/busybox not installed"));
        return;
    };
    let cache = matrix::cache_dir();
    let cell = spec::select(spec::default_cells(), &["6.1-x86_64".into()]).unwrap().remove(0);
    let Ok(mirror) = sources::system_mirror(Path::new("/etc/apt")) else {
        xdpqual::util::skip(format_args!("no apt mirror configured"));
        return;
    };
    if !kernel::is_cached(&cell, &cache, &mirror) {
        xdpqual::util::skip(format_args!(
            "the 6.1-x86_64 kernel is not cached (run the matrix once)"
        ));
        return;
    }
    let tree = matrix::apt::AptTree::new(&cache, &mirror, vec![]);
    let k = kernel::resolve(&cell, &cache, &tree, false).unwrap();
    let dir = std::env::temp_dir().join(format!("xdpqual-matrix-hang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = dir.join("hang.cpio");
    std::fs::write(
        &initrd,
        initramfs::write(&[
            initramfs::Entry::Dir("dev"),
            initramfs::Entry::CharDev { name: "dev/console", major: 5, minor: 1 },
            initramfs::Entry::File { name: "init", mode: 0o755, data: &busybox },
        ]),
    )
    .unwrap();
    let vm = qemu::boot(&VmSpec {
        qemu: &q,
        arch: Arch::X86_64,
        kernel: &k.path,
        initrd: &initrd,
        accel: Accel::Tcg,
        hello_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(120),
    })
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(vm.timed_out, "the guest cannot have exited by itself: {}", vm.tail());
    assert!(vm.hello.is_none());
}
