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
        timeout: Duration::from_secs(30),
        max_packets: Some(10),
        accel: AccelChoice::Tcg,
        ..Options::new(
            vec![Cell {
                name: "junk".into(),
                arch: Arch::X86_64,
                kernel: KernelSource::File(junk),
                required: true,
                offload: None,
            }],
            dir.join("cache"),
        )
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

/// The big-endian cell fails the same ways: a panicking s390x guest ends
/// QEMU with its console kept, a silent one is killed at its deadline, and
/// in a matrix run an s390x cell whose kernel is junk fails alone while
/// the real s390x cell beside it still boots and reports. Needs
/// qemu-system-s390x, the cross gcc (for the hanging /init) and the cached
/// s390x kernel (SKIP without each).
#[test]
fn a_bad_s390x_guest_fails_its_cell_only() {
    let Ok(q) = qemu::find(Arch::S390x) else {
        xdpqual::util::skip(format_args!("qemu-system-s390x not installed (qemu-system-misc)"));
        return;
    };
    let gcc = matrix::agent::cross_linker(Arch::S390x).expect("s390x links with a cross gcc");
    let cache = matrix::cache_dir();
    let cell = spec::select(spec::default_cells(), &["s390x-6.12".into()]).unwrap().remove(0);
    let Ok(mirror) = sources::system_mirror(Path::new("/etc/apt")) else {
        xdpqual::util::skip(format_args!("no apt mirror configured"));
        return;
    };
    if !kernel::is_cached(&cell, &cache, &mirror) {
        xdpqual::util::skip(format_args!(
            "the s390x-6.12 kernel is not cached (run `xdpqual matrix --cells s390x-6.12` once)"
        ));
        return;
    }
    let tree = matrix::apt::AptTree::new(&cache, &mirror, vec![]);
    let k = kernel::resolve(&cell, &cache, &tree, false).unwrap();
    let dir = std::env::temp_dir().join(format!("xdpqual-matrix-s390x-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let boot = |initrd: &Path, hello: u64| {
        qemu::boot(&VmSpec {
            qemu: &q,
            arch: Arch::S390x,
            kernel: &k.path,
            initrd,
            accel: Accel::Tcg,
            hello_timeout: Duration::from_secs(hello),
            timeout: Duration::from_secs(120),
        })
        .unwrap()
    };

    // No /init: the kernel panics, and panic=-1 with -no-reboot ends QEMU.
    let empty = dir.join("empty.cpio");
    std::fs::write(
        &empty,
        initramfs::write(&[
            initramfs::Entry::Dir("dev"),
            initramfs::Entry::CharDev { name: "dev/console", major: 5, minor: 1 },
        ]),
    )
    .unwrap();
    let vm = boot(&empty, 120);
    assert!(vm.hello.is_none());
    assert!(!vm.timed_out, "panic=-1 and -no-reboot end QEMU on s390x too: {}", vm.tail());
    assert!(vm.tail().contains("Kernel panic"), "{}", vm.tail());

    // An /init that never says hello nor exits: killed at the deadline.
    let src = dir.join("hang.c");
    std::fs::write(&src, "#include <unistd.h>\nint main(void){for(;;)pause();}\n").unwrap();
    let bin = dir.join("hang");
    match std::process::Command::new(gcc).arg("-static").arg("-o").arg(&bin).arg(&src).status() {
        Ok(s) if s.success() => {
            let init = std::fs::read(&bin).unwrap();
            let hang = dir.join("hang.cpio");
            std::fs::write(
                &hang,
                initramfs::write(&[
                    initramfs::Entry::Dir("dev"),
                    initramfs::Entry::CharDev { name: "dev/console", major: 5, minor: 1 },
                    initramfs::Entry::File { name: "init", mode: 0o755, data: &init },
                ]),
            )
            .unwrap();
            let vm = boot(&hang, 20);
            assert!(vm.timed_out, "the guest cannot have exited by itself: {}", vm.tail());
            assert!(vm.hello.is_none());
        }
        _ => xdpqual::util::skip(format_args!(
            "{gcc} cannot link a static s390x program (gcc-s390x-linux-gnu, libc6-dev-s390x-cross): hang case not run"
        )),
    }

    // In a matrix: the junk s390x cell fails, the real one still runs.
    if let Err(e) = matrix::agent::prepare(Arch::S390x, &cache) {
        xdpqual::util::skip(format_args!("{e}: matrix case not run"));
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    let junk = dir.join("vmlinuz");
    std::fs::write(&junk, vec![0x5au8; 64 * 1024]).unwrap();
    let obj = load_object(&root().join("corpus/build/firewall.v3.o")).unwrap();
    let cells = vec![
        Cell {
            name: "junk-s390x".into(),
            arch: Arch::S390x,
            kernel: KernelSource::File(junk),
            required: true,
            offload: None,
        },
        cell,
    ];
    let opts = Options {
        timeout: Duration::from_secs(120),
        max_packets: Some(10),
        accel: AccelChoice::Tcg,
        ..Options::new(cells, cache)
    };
    let report =
        matrix::run(&obj, &obj.programs[0], &[root().join("pcaps/edges.pcap")], &opts).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(report.cells[0].status, CellStatus::Failed);
    assert!(!report.passes());
    let real = &report.cells[1];
    assert!(
        real.kernel_release.as_deref().is_some_and(|r| r.contains("s390x")),
        "the real s390x cell should have booted and reported: {:?} {:?}",
        real.error,
        real.console_tail
    );
}

/// A cell built from a source package that does not exist fails at the
/// step that fetches it, naming the package; the other cell still gets
/// its own report.
#[test]
fn a_missing_source_package_fails_its_build_cell_only() {
    let Ok(_) = qemu::find(Arch::X86_64) else {
        xdpqual::util::skip(format_args!("qemu-system-x86_64 not installed"));
        return;
    };
    if let Err(e) = matrix::agent::prepare(Arch::X86_64, &matrix::cache_dir()) {
        xdpqual::util::skip(format_args!("{e}"));
        return;
    }
    let dir = std::env::temp_dir().join(format!("xdpqual-matrix-nosrc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fragment = dir.join("f.config");
    std::fs::write(&fragment, "CONFIG_NET=y\n").unwrap();
    let obj = load_object(&root().join("corpus/build/firewall.v3.o")).unwrap();
    let cells = vec![
        Cell {
            name: "nosource".into(),
            arch: Arch::X86_64,
            // No Debian release has this package.
            kernel: KernelSource::Build {
                source: "linux-source-0.0-xdpqual-test".into(),
                config: fragment,
            },
            required: true,
            offload: None,
        },
        Cell {
            name: "missing-file".into(),
            arch: Arch::X86_64,
            kernel: KernelSource::File(dir.join("no-such-vmlinuz")),
            required: false,
            offload: None,
        },
    ];
    let opts = Options {
        timeout: Duration::from_secs(30),
        max_packets: Some(4),
        accel: AccelChoice::Tcg,
        ..Options::new(cells, dir.join("cache"))
    };
    let report =
        matrix::run(&obj, &obj.programs[0], &[root().join("pcaps/edges.pcap")], &opts).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(report.cells.len(), 2);
    let e = report.cells[0].error.clone().unwrap_or_default();
    assert_eq!(report.cells[0].status, CellStatus::Failed);
    assert!(
        e.contains("`nosource`")
            && e.contains("fetching the source package")
            && e.contains("linux-source-0.0-xdpqual-test"),
        "{e}"
    );
    // The other cell was tried on its own terms (its own error).
    let e2 = report.cells[1].error.clone().unwrap_or_default();
    assert!(e2.contains("no-such-vmlinuz"), "{e2}");
    assert!(!report.passes());
}

/// A fragment option whose dependency is off is dropped by `make
/// olddefconfig`; the build stops before compiling and names it. Needs
/// the kernel source package and the build tools (SKIP without): only the
/// configure steps run, well under a minute.
#[test]
fn a_fragment_option_that_olddefconfig_drops_is_named() {
    use xdpqual::matrix::build;
    let package = "linux-source-6.12";
    let missing = build::missing_tools();
    if !missing.is_empty() {
        xdpqual::util::skip(format_args!("kernel build tools missing: {}", missing.join(", ")));
        return;
    }
    if build::installed_version(package).is_none() {
        xdpqual::util::skip(format_args!("{package} is not installed (ci/setup.sh installs it)"));
        return;
    }
    let dir = std::env::temp_dir().join(format!("xdpqual-matrix-drop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fragment = dir.join("broken.config");
    // drivers/net/Kconfig: NETDEVSIM depends on DEBUG_FS and INET; with
    // DEBUG_FS off it cannot be set, and NET is off in tinyconfig.
    std::fs::write(
        &fragment,
        "CONFIG_NET=y\nCONFIG_INET=y\nCONFIG_NETDEVICES=y\n# CONFIG_DEBUG_FS is not set\nCONFIG_NETDEVSIM=y\n",
    )
    .unwrap();
    // The shared cache: the unpacked source tree is reused, and the
    // broken build's directory holds only its configuration.
    let e = build::resolve(package, &fragment, Arch::X86_64, &matrix::cache_dir())
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        e.contains("dropped")
            && e.contains("CONFIG_NETDEVSIM=y (got not set)")
            && !e.contains("CONFIG_NET=y"),
        "{e}"
    );
}
