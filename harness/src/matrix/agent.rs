//! The guest agent binary for an architecture, from the first of:
//! - the user (`XDPQUAL_AGENT_<ARCH>` or `--agent-dir`);
//! - the cache, under a folder named for the agent's sources at this
//!   binary's build (`build.rs`), so an installed xdpqual with no source
//!   tree runs the matrix once `xdpqual matrix --prepare` has filled it;
//! - a build from this source tree with cargo, for the architecture's static
//!   musl target, linked with rust-lld (no cross C toolchain needed), or on
//!   s390x (no musl target) for glibc, linked statically with the cross gcc
//!   found on PATH; the result is then cached.

use super::spec::Arch;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the Rust standard library for {target} is not installed, so the {arch} guest agent cannot be built; run `rustup target add {target}`")]
    MissingTarget { target: String, arch: String },
    #[error("the {arch} guest agent is linked statically against glibc with {linker}, which is not on PATH; install the cross toolchain (Debian: `apt-get install gcc-s390x-linux-gnu libc6-dev-s390x-cross`, which ci/setup.sh does) or leave out the {arch} cells with --cells")]
    MissingLinker { arch: String, linker: String },
    #[error("building the {arch} guest agent failed:\n{stderr}")]
    Build { arch: String, stderr: String },
    #[error("cannot run cargo to build the guest agent ({reason}); install a Rust toolchain or give prebuilt agents with --agent-dir DIR (DIR/<arch>/xdpqual-agent)")]
    NoCargo { reason: String },
    #[error("no guest agent for this xdpqual build is cached in {cache}, and the source tree it was built from ({source_tree}) is not here to build one; run `xdpqual matrix --prepare` from a checkout of the same version, or give prebuilt agents with --agent-dir DIR (DIR/<arch>/xdpqual-agent)")]
    NoSource { cache: String, source_tree: String },
    #[error("{file}: {reason}")]
    Io { file: String, reason: String },
}

/// The agent's crate, relative to this crate at build time.
fn agent_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/xdpqual-agent/Cargo.toml")
}

/// Where agents are built: beside the caller's cargo target directory, or
/// the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("xdpqual-agent")
}

/// The agent's sources at this binary's build (version and hash).
pub const SOURCE_ID: &str = env!("XDPQUAL_AGENT_SOURCE_ID");

/// Where the agent for `arch` of this build is cached.
pub fn cached_path(cache: &Path, arch: Arch) -> PathBuf {
    cache.join("agents").join(SOURCE_ID).join(arch.name()).join("xdpqual-agent")
}

/// The agent binary's bytes for `arch`.
pub fn agent_bytes(
    arch: Arch,
    agent_dir: Option<&Path>,
    cache: &Path,
) -> Result<Vec<u8>, AgentError> {
    let env_name = format!("XDPQUAL_AGENT_{}", arch.name().to_ascii_uppercase());
    let given = std::env::var_os(&env_name)
        .map(PathBuf::from)
        .or_else(|| agent_dir.map(|d| d.join(arch.name()).join("xdpqual-agent")));
    let cached = cached_path(cache, arch);
    let path = match given {
        Some(p) => p,
        None if cached.is_file() => cached,
        None => prepare(arch, cache)?,
    };
    std::fs::read(&path)
        .map_err(|e| AgentError::Io { file: path.display().to_string(), reason: e.to_string() })
}

/// Builds the agent for `arch` from the source tree and stores it in the
/// cache (written under a temporary name, then renamed, so a killed build
/// never leaves a half-written agent that a later run would boot).
pub fn prepare(arch: Arch, cache: &Path) -> Result<PathBuf, AgentError> {
    let built = build(arch, cache)?;
    let dest = cached_path(cache, arch);
    let io = |file: &Path, e: std::io::Error| AgentError::Io {
        file: file.display().to_string(),
        reason: e.to_string(),
    };
    let dir = dest.parent().expect("the cached path has a folder");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!(".xdpqual-agent.tmp-{}", std::process::id()));
    std::fs::copy(&built, &tmp).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &dest).map_err(|e| io(&dest, e))?;
    Ok(dest)
}

/// Builds (or finds up to date) the agent for `arch` in the source tree.
fn build(arch: Arch, cache: &Path) -> Result<PathBuf, AgentError> {
    let manifest = agent_manifest();
    if !manifest.exists() {
        return Err(AgentError::NoSource {
            cache: cache.join("agents").join(SOURCE_ID).display().to_string(),
            // crates/xdpqual-agent/Cargo.toml -> the checkout.
            source_tree: manifest.ancestors().nth(3).unwrap_or(&manifest).display().to_string(),
        });
    }
    let target = arch.rust_target();
    let var = |what: &str| {
        format!("CARGO_TARGET_{}_{what}", target.to_ascii_uppercase().replace('-', "_"))
    };
    let (linker, rustflags) = match cross_linker(arch) {
        // glibc targets link through the cross gcc (it knows where the
        // target's libc.a and crt files are), statically so the agent runs
        // as /init with no loader or shared libraries in the initramfs.
        Some(gcc) => {
            if !on_path(gcc) {
                return Err(AgentError::MissingLinker {
                    arch: arch.name().into(),
                    linker: gcc.into(),
                });
            }
            (gcc, "-C target-feature=+crt-static")
        }
        // musl targets are static by default and rust-lld needs no C
        // toolchain.
        None => ("rust-lld", ""),
    };
    let dir = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(&manifest)
        .args(["--target", target, "--target-dir"])
        .arg(&dir)
        .env(var("LINKER"), linker)
        .env(var("RUSTFLAGS"), rustflags)
        // Small, symbol-free binary: it is copied into every initramfs.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env_remove("RUSTFLAGS")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| AgentError::NoCargo { reason: e.to_string() })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `std`")
        {
            return Err(AgentError::MissingTarget {
                target: target.into(),
                arch: arch.name().into(),
            });
        }
        return Err(AgentError::Build {
            arch: arch.name().into(),
            stderr: stderr.trim().to_string(),
        });
    }
    Ok(dir.join(target).join("release/xdpqual-agent"))
}

/// The cross C compiler that links the agent for `arch`, when its target
/// is a glibc one; `None`: rust-lld links it alone.
pub fn cross_linker(arch: Arch) -> Option<&'static str> {
    match arch {
        Arch::X86_64 | Arch::Aarch64 => None,
        Arch::S390x => Some("s390x-linux-gnu-gcc"),
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}
