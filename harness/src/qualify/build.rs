//! Programs given as C sources: compiled for the BPF target with clang.
//! The compiler is `$XDPQUAL_CLANG`, else `clang-19`, else `clang`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

fn clang() -> String {
    if let Ok(c) = std::env::var("XDPQUAL_CLANG") {
        return c;
    }
    let found = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    if found("clang-19") {
        "clang-19".into()
    } else {
        "clang".into()
    }
}

/// Compiles `source` with `-O2 -g --target=bpf -c` plus `cflags` into
/// `build_dir`, named after the source and a hash of the flags, so two
/// programs built from one file with different flags do not collide.
pub fn compile(source: &Path, cflags: &[String], build_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(build_dir)
        .with_context(|| format!("creating build folder {}", build_dir.display()))?;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in source.as_os_str().as_encoded_bytes().iter().chain(cflags.join("\0").as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "prog".into());
    let out = build_dir.join(format!("{stem}-{h:016x}.o"));
    let cc = clang();
    let mut cmd = Command::new(&cc);
    cmd.args(["-O2", "-g", "--target=bpf", "-c"]).arg(source).arg("-o").arg(&out);
    if let Some(dir) = source.parent().filter(|d| !d.as_os_str().is_empty()) {
        cmd.arg("-I").arg(dir);
    }
    cmd.args(cflags);
    let o = cmd.output().with_context(|| {
        format!(
            "running {cc} to build {} (set XDPQUAL_CLANG to choose the compiler)",
            source.display()
        )
    })?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let first: Vec<&str> = err.lines().filter(|l| l.contains("error")).take(3).collect();
        bail!(
            "{cc} failed to build {} ({}): {}",
            source.display(),
            o.status,
            if first.is_empty() { err.trim().to_string() } else { first.join(" | ") }
        );
    }
    Ok(out)
}
