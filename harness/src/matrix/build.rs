//! Kernels built from source for a cell (`build = { source = ..., config =
//! ... }` in the matrix file): Debian's `linux-source-X.Y` package, fetched
//! through apt, unpacked once into the cache, configured as `make
//! tinyconfig` plus the cell's committed config fragment (merged with the
//! kernel's own scripts/kconfig/merge_config.sh, then `make
//! olddefconfig`), checked (every option the fragment sets must survive:
//! Kconfig silently drops an option whose dependencies are off), and
//! built with all cores.
//!
//! The image is cached under `builds/<key>/bzImage`, the key being the
//! SHA-256 of the source package and version, the base config, the
//! architecture and the fragment's bytes, so a second run only hashes the
//! fragment and checks the image. `build.json` beside it records the
//! source version and how long the build took.
//!
//! Every failure names its step (fetching the source, unpacking,
//! configuring, the option check, compiling) and carries the tail of that
//! step's log; it fails the cell, never the run.

use super::apt;
use super::spec::Arch;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The base every fragment is applied over.
pub const BASE: &str = "tinyconfig";

/// Fragments shipped with xdpqual, so the built-in matrix works from any
/// directory (the path, relative to `vm-images/`, that its matrix names).
const BUILTIN_FRAGMENTS: &[(&str, &str)] =
    &[("configs/netdevsim.config", include_str!("../../../vm-images/configs/netdevsim.config"))];

/// Log lines kept in an error.
const LOG_TAIL_LINES: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("building a kernel from source: step `{step}` failed: {message}")]
    Step { step: &'static str, message: String },
    #[error("building a kernel from source: step `{step}` failed ({status}); the last lines of {log}:\n{tail}")]
    Log { step: &'static str, status: String, log: String, tail: String },
    #[error("building a kernel from source: the config fragment {fragment} sets options that `make olddefconfig` dropped (their dependencies are not met over {BASE}): {options}; add the options they depend on to the fragment")]
    Dropped { fragment: String, options: String },
}

/// What was built, recorded beside the image.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BuildRecord {
    pub package: String,
    pub version: String,
    pub base: String,
    pub fragment: String,
    /// Seconds the configure + compile took (the cold build).
    pub build_s: f64,
    pub bzimage_sha256: String,
}

impl BuildRecord {
    pub fn label(&self) -> String {
        format!(
            "built from source: {} {} ({} + {}), cold build {:.0}s",
            self.package, self.version, self.base, self.fragment, self.build_s
        )
    }
}

fn step(step: &'static str, message: impl Into<String>) -> BuildError {
    BuildError::Step { step, message: message.into() }
}

/// The fragment's text: the file, or the shipped copy of a built-in one.
pub fn fragment_text(path: &Path) -> Result<String, BuildError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) => BUILTIN_FRAGMENTS
            .iter()
            .find(|(name, _)| path.is_relative() && path.ends_with(name))
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| step("reading the config fragment", format!("{}: {e}", path.display()))),
    }
}

/// `(option, wanted value)` for every option the fragment sets:
/// `CONFIG_X=v` and `# CONFIG_X is not set` (wanted `n`).
pub fn fragment_options(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                if name.starts_with("CONFIG_") {
                    out.push((name.to_string(), "n".to_string()));
                }
            }
        } else if let Some((k, v)) = line.split_once('=') {
            if k.starts_with("CONFIG_") {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    out
}

/// The options of `wanted` that `config` (a full .config) does not have
/// with the wanted value, as `CONFIG_X=v (got ...)`.
pub fn dropped_options(wanted: &[(String, String)], config: &str) -> Vec<String> {
    let mut have = std::collections::HashMap::new();
    for (k, v) in fragment_options(config) {
        have.insert(k, v);
    }
    wanted
        .iter()
        .filter(|(k, v)| have.get(k).map_or("n", String::as_str) != v.as_str())
        .map(|(k, v)| {
            let got = match have.get(k).map(String::as_str) {
                None | Some("n") => "not set".to_string(),
                Some(g) => format!("{k}={g}"),
            };
            format!("{k}={v} (got {got})")
        })
        .collect()
}

/// The installed version of a Debian package, if installed.
/// The installed version of Debian package `package`, if dpkg has it
/// installed.
pub fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}|${Version}", package])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, version) = text.split_once('|')?;
    (out.status.success() && status.ends_with(" installed")).then(|| version.to_string())
}

/// Whether this process may install packages through apt.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Installs `package` through the machine's apt when it is not installed
/// (root only), and returns its version and the source tarball.
fn fetch_source(package: &str) -> Result<(String, PathBuf), BuildError> {
    const STEP: &str = "fetching the source package";
    if !package.starts_with("linux-source-")
        || !package.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
    {
        return Err(step(
            STEP,
            format!("`{package}` is not a Debian kernel source package name (linux-source-X.Y)"),
        ));
    }
    if installed_version(package).is_none() {
        if !is_root() {
            return Err(step(STEP, format!("{package} is not installed and only root can install it; run `apt-get install {package}` as root (ci/setup.sh does)")));
        }
        let out = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| step(STEP, format!("running apt-get: {e}")))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return Err(step(
                STEP,
                format!(
                    "`apt-get install {package}` failed ({}); is the package in this machine's apt sources (`apt-cache policy {package}`)?\n{}",
                    out.status,
                    tail(&text)
                ),
            ));
        }
    }
    let version = installed_version(package)
        .ok_or_else(|| step(STEP, format!("{package} is still not installed after apt-get")))?;
    let tarball = Path::new("/usr/src").join(format!("{package}.tar.xz"));
    if !tarball.is_file() {
        return Err(step(
            STEP,
            format!("{package} {version} is installed but {} is missing", tarball.display()),
        ));
    }
    Ok((version, tarball))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// The tools a build runs, with the Debian package that has each.
const TOOLS: &[(&str, &str)] = &[
    ("make", "make"),
    ("gcc", "gcc"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("bc", "bc"),
    ("pahole", "dwarves"),
    ("tar", "tar"),
    ("xz", "xz-utils"),
];

/// The build tools missing on PATH, as `tool (package)`.
pub fn missing_tools() -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    TOOLS
        .iter()
        .filter(|(t, _)| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .map(|(t, p)| format!("{t} (package {p})"))
        .collect()
}

/// The cache key of a build.
pub fn key(package: &str, version: &str, arch: Arch, fragment: &str) -> String {
    apt::sha256_hex(format!("{package}|{version}|{BASE}|{}|{fragment}", arch.name()).as_bytes())
}

fn io<'a>(what: &'static str, p: &'a Path) -> impl Fn(std::io::Error) -> BuildError + 'a {
    move |e| step(what, format!("{}: {e}", p.display()))
}

/// A cached build whose image matches its record.
fn cached(dir: &Path) -> Option<(PathBuf, BuildRecord)> {
    let rec: BuildRecord =
        serde_json::from_slice(&std::fs::read(dir.join("build.json")).ok()?).ok()?;
    let image = dir.join("bzImage");
    (apt::sha256_file(&image).ok()? == rec.bzimage_sha256).then_some((image, rec))
}

/// Holds an exclusive lock on a file while alive, so two xdpqual
/// processes do not build the same kernel at once.
struct Lock(
    #[allow(dead_code, reason = "held for its Drop, which unlocks")]
    nix::fcntl::Flock<std::fs::File>,
);

fn lock(path: &Path) -> Result<Lock, BuildError> {
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("locking the build directory", path))?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
        Ok(held) => Ok(Lock(held)),
        Err((_, e)) => Err(step("locking the build directory", format!("{}: {e}", path.display()))),
    }
}

/// Runs `cmd` with its output appended to `log`; a failure is a
/// [`BuildError::Log`] naming `step_name`.
fn run_logged(step_name: &'static str, mut cmd: Command, log: &Path) -> Result<(), BuildError> {
    let file =
        std::fs::File::options().create(true).append(true).open(log).map_err(io(step_name, log))?;
    let err = file.try_clone().map_err(io(step_name, log))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| step(step_name, format!("starting {:?}: {e}", cmd.get_program())))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut t = tail(&text);
    if let Some(free) = free_bytes(log) {
        if free < 512 << 20 {
            t.push_str(&format!(
                "\n(only {} MiB free on the cache's file system: out of disk?)",
                free >> 20
            ));
        }
    }
    Err(BuildError::Log {
        step: step_name,
        status: status.to_string(),
        log: log.display().to_string(),
        tail: t,
    })
}

fn free_bytes(p: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(p.parent()?).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// True when the build is cached: resolving it runs no apt and no make.
pub fn is_cached(package: &str, fragment_path: &Path, arch: Arch, cache: &Path) -> bool {
    let (Ok(fragment), Some(version)) = (fragment_text(fragment_path), installed_version(package))
    else {
        return false;
    };
    cached(&cache.join("builds").join(key(package, &version, arch, &fragment))).is_some()
}

/// The cell's kernel: cached, or fetched, configured, checked and built.
pub fn resolve(
    package: &str,
    fragment_path: &Path,
    arch: Arch,
    cache: &Path,
) -> Result<(PathBuf, BuildRecord), BuildError> {
    if arch != Arch::X86_64 {
        return Err(step(
            "choosing the target",
            format!("kernels are built from source for x86_64 only, not {}", arch.name()),
        ));
    }
    let fragment = fragment_text(fragment_path)?;
    let wanted = fragment_options(&fragment);
    if wanted.is_empty() {
        return Err(step(
            "reading the config fragment",
            format!("{} sets no CONFIG_ option", fragment_path.display()),
        ));
    }
    // A warm run needs the version only: dpkg-query, no apt, no network.
    let version = match installed_version(package) {
        Some(v) => v,
        None => fetch_source(package)?.0,
    };
    let dir = cache.join("builds").join(key(package, &version, arch, &fragment));
    if let Some(hit) = cached(&dir) {
        return Ok(hit);
    }
    let missing = missing_tools();
    if !missing.is_empty() {
        return Err(step(
            "checking the build tools",
            format!("missing {}; install them (ci/setup.sh does)", missing.join(", ")),
        ));
    }
    std::fs::create_dir_all(&dir).map_err(io("creating the build directory", &dir))?;
    let _lock = lock(&dir.join("lock"))?;
    if let Some(hit) = cached(&dir) {
        return Ok(hit); // another process built it while we waited
    }
    let (version2, tarball) = fetch_source(package)?;
    if version2 != version {
        return Err(step(
            "fetching the source package",
            format!("{package} changed version during the run ({version} → {version2}); rerun"),
        ));
    }
    let start = Instant::now();
    let src = unpack(&tarball, package, &version, cache)?;
    let obj = dir.join("obj");
    std::fs::create_dir_all(&obj).map_err(io("creating the build directory", &obj))?;
    let log = dir.join("build.log");
    let _ = std::fs::remove_file(&log);
    let make = |args: &[&str]| {
        let mut c = Command::new("make");
        c.arg("-C").arg(&src).arg(format!("O={}", obj.display())).arg("ARCH=x86_64").args(args);
        c
    };
    let frag_file = dir.join("fragment.config");
    std::fs::write(&frag_file, &fragment).map_err(io("configuring", &frag_file))?;
    run_logged("configuring (make tinyconfig)", make(&[BASE]), &log)?;
    let mut merge = Command::new(src.join("scripts/kconfig/merge_config.sh"));
    merge.current_dir(&src).arg("-m").arg("-O").arg(&obj).arg(obj.join(".config")).arg(&frag_file);
    run_logged("configuring (merge_config.sh)", merge, &log)?;
    run_logged("configuring (make olddefconfig)", make(&["olddefconfig"]), &log)?;
    let config = std::fs::read_to_string(obj.join(".config"))
        .map_err(io("checking the configuration", &obj))?;
    let dropped = dropped_options(&wanted, &config);
    if !dropped.is_empty() {
        return Err(BuildError::Dropped {
            fragment: fragment_path.display().to_string(),
            options: dropped.join(", "),
        });
    }
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()).to_string();
    run_logged("compiling (make bzImage)", make(&["-j", &jobs, "bzImage"]), &log)?;
    let built = obj.join("arch/x86/boot/bzImage");
    let image = dir.join("bzImage");
    std::fs::copy(&built, &image).map_err(io("collecting the image", &built))?;
    let rec = BuildRecord {
        package: package.to_string(),
        version,
        base: BASE.to_string(),
        fragment: fragment_path.display().to_string(),
        build_s: start.elapsed().as_secs_f64(),
        bzimage_sha256: apt::sha256_file(&image)
            .map_err(|e| step("collecting the image", e.to_string()))?,
    };
    let json = serde_json::to_vec_pretty(&rec).expect("records serialise");
    std::fs::write(dir.join("build.json"), json).map_err(io("collecting the image", &dir))?;
    // The object tree is GBs with BTF's debug info; the image is all a cell
    // needs, and CI caches this directory.
    let _ = std::fs::remove_dir_all(&obj);
    Ok((image, rec))
}

/// The source tree of `package` `version`, unpacked once.
fn unpack(
    tarball: &Path,
    package: &str,
    version: &str,
    cache: &Path,
) -> Result<PathBuf, BuildError> {
    const STEP: &str = "unpacking the source";
    let base = cache.join("src").join(version);
    let tree = base.join(package);
    let done = base.join(".unpacked");
    if done.exists() && tree.join("Makefile").is_file() {
        return Ok(tree);
    }
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).map_err(io(STEP, &base))?;
    let log = base.join("unpack.log");
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(tarball).arg("-C").arg(&base);
    run_logged(STEP, tar, &log)?;
    if !tree.join("Makefile").is_file() {
        return Err(step(
            STEP,
            format!("{} did not unpack to {}", tarball.display(), tree.display()),
        ));
    }
    std::fs::write(&done, b"").map_err(io(STEP, &done))?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_options_read_set_and_unset_lines() {
        let f = "# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\nNOT=1\n";
        assert_eq!(
            fragment_options(f),
            [("CONFIG_A", "y"), ("CONFIG_B", "n"), ("CONFIG_C", "\"x\"")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn dropped_options_name_what_olddefconfig_changed() {
        let wanted =
            fragment_options("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n");
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n";
        assert_eq!(
            dropped_options(&wanted, config),
            ["CONFIG_B=y (got not set)", "CONFIG_C=n (got CONFIG_C=y)", "CONFIG_D=y (got not set)"]
        );
    }

    #[test]
    fn the_shipped_fragment_is_found_from_anywhere() {
        let t = fragment_text(Path::new("./configs/netdevsim.config")).unwrap();
        assert!(t.contains("CONFIG_NETDEVSIM=y"), "{t}");
        let e = fragment_text(Path::new("/nonexistent/x.config")).unwrap_err().to_string();
        assert!(e.contains("reading the config fragment") && e.contains("/nonexistent"), "{e}");
    }

    #[test]
    fn the_key_changes_with_every_input() {
        let k = key("linux-source-6.12", "1", Arch::X86_64, "CONFIG_A=y");
        assert_ne!(k, key("linux-source-6.12", "2", Arch::X86_64, "CONFIG_A=y"));
        assert_ne!(k, key("linux-source-6.12", "1", Arch::X86_64, "CONFIG_A=m"));
        assert_ne!(k, key("linux-source-6.1", "1", Arch::X86_64, "CONFIG_A=y"));
    }
}
