//! An installed xdpqual needs no checkout (issue 17): `cargo install` from a
//! copy of this checkout, `xdpqual matrix --prepare` once, then the copy is
//! deleted and the installed binary runs `replay`, `diff --backends vm,host`
//! and a one-cell `matrix` from another directory.
//!
//! The build is a whole release build of the workspace in a target
//! directory of its own (the copy's sources have other paths, so nothing of
//! the workspace's build is reused): several minutes on two cores. So it
//! runs when `XDPQUAL_INSTALL_TEST=1` (`.ci/run` sets it) and prints SKIP
//! otherwise. The matrix part also needs `XDPQUAL_MATRIX=1`, like the
//! matrix tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn show(what: &str, o: &Output) -> String {
    format!(
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Copies the files git tracks (as they are in the working tree) into `to`:
/// what a user's checkout holds, without build outputs.
fn copy_checkout(from: &Path, to: &Path) {
    let o = Command::new("git")
        .arg("-C")
        .arg(from)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .expect("run git ls-files");
    assert!(o.status.success(), "{}", show("git ls-files", &o));
    for rel in o.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 path"));
        let src = from.join(rel);
        // A file deleted in the working tree but still in the index.
        let Ok(meta) = std::fs::symlink_metadata(&src) else { continue };
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Links the kernel, package and initramfs caches of the user's matrix
/// cache into a fresh one, so the test does not download kernels again,
/// while the agents (what `--prepare` makes) start absent.
fn fresh_cache_sharing_kernels(cache: &Path) {
    std::fs::create_dir_all(cache).unwrap();
    let user = xdpqual::matrix::cache_dir();
    for sub in ["apt", "debs", "kernels", "initramfs", "resolved"] {
        let from = user.join(sub);
        if from.is_dir() {
            std::os::unix::fs::symlink(&from, cache.join(sub)).unwrap();
        }
    }
}

fn run(bin: &Path, cwd: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env("XDPQUAL_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", bin.display()))
}

#[test]
fn installed_binary_runs_without_the_checkout() {
    if std::env::var("XDPQUAL_INSTALL_TEST").as_deref() != Ok("1") {
        xdpqual::util::skip("installed binary: set XDPQUAL_INSTALL_TEST=1 to `cargo install` xdpqual from a copy of the checkout (a full release build) and run it with the copy deleted");
        return;
    }
    let root = repo_root();
    let tmp = root.join("target/install-test");
    let checkout = tmp.join("checkout");
    let prefix = tmp.join("prefix");
    let cache = tmp.join("cache");
    let work = tmp.join("elsewhere");
    for d in [&checkout, &prefix, &cache, &work] {
        let _ = std::fs::remove_dir_all(d);
    }
    copy_checkout(&root, &checkout);

    // A build of its own, in a target directory of its own (the workspace's
    // is locked by the `cargo test` running this), without debug info.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let o = Command::new(&cargo)
        .args(["install", "--locked", "--offline", "--quiet", "--path"])
        .arg(checkout.join("cli"))
        .arg("--root")
        .arg(&prefix)
        .arg("--target-dir")
        .arg(tmp.join("target"))
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo install");
    assert!(o.status.success(), "{}", show("cargo install", &o));
    let bin = prefix.join("bin/xdpqual");
    assert!(bin.is_file(), "cargo install put no {}", bin.display());

    let matrix = std::env::var("XDPQUAL_MATRIX").as_deref() == Ok("1");
    fresh_cache_sharing_kernels(&cache);
    if matrix {
        let o = run(&bin, &tmp, &cache, &["matrix", "--prepare", "--cells", "6.1-x86_64"]);
        assert!(o.status.success(), "{}", show("matrix --prepare", &o));
    }

    // The inputs a user would have of their own, then no checkout at all.
    std::fs::create_dir_all(&work).unwrap();
    for f in ["corpus/build/firewall.v3.o", "pcaps/firewall-2k.pcap"] {
        std::fs::copy(checkout.join(f), work.join(Path::new(f).file_name().unwrap())).unwrap();
    }
    std::fs::remove_dir_all(&checkout).unwrap();
    assert!(!checkout.exists());

    // replay: the installed build and the workspace's give the same summary.
    let args = ["replay", "firewall.v3.o", "firewall-2k.pcap", "--summary-json"];
    let installed = run(&bin, &work, &cache, &args);
    assert!(installed.status.success(), "{}", show("installed replay", &installed));
    let in_tree = run(Path::new(env!("CARGO_BIN_EXE_xdpqual")), &work, &cache, &args);
    assert!(in_tree.status.success(), "{}", show("in-tree replay", &in_tree));
    let a: serde_json::Value = serde_json::from_slice(&installed.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&in_tree.stdout).unwrap();
    assert_eq!(a["captures"], b["captures"], "installed and in-tree builds disagree");
    // firewall-2k.pcap holds 2,000 frames (pcaps/README.md).
    assert_eq!(a["captures"][0]["counts"]["total"].as_u64(), Some(2000), "{a}");

    // diff against the host kernel.
    let o = run(
        &bin,
        &work,
        &cache,
        &["diff", "firewall.v3.o", "firewall-2k.pcap", "--backends", "vm,host"],
    );
    let text = show("installed diff --backends vm,host", &o);
    assert!(o.status.success(), "{text}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("2000"), "{text}");

    if matrix {
        let o = run(
            &bin,
            &work,
            &cache,
            &["matrix", "firewall.v3.o", "firewall-2k.pcap", "--cells", "6.1-x86_64"],
        );
        assert!(o.status.success(), "{}", show("installed matrix, one cell", &o));
    } else {
        xdpqual::util::skip("installed binary: the one-cell matrix runs with XDPQUAL_MATRIX=1");
    }
    xdpqual::util::count("installed binary: replay, diff and matrix ran with the checkout deleted");
    let _ = std::fs::remove_dir_all(&tmp);
}
