//! The guest's initramfs: an uncompressed cpio archive in the "newc"
//! format the kernel unpacks (see the kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst): 110-byte
//! ASCII headers, names and data each padded to 4 bytes, ended by
//! `TRAILER!!!`.
//!
//! Contents: `/init` (the agent), `/dev/console` (so the kernel can give
//! init a console before any filesystem is mounted), `/proc`, `/sys` and
//! the job. Built archives are cached by their SHA-256.

use std::path::{Path, PathBuf};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// One archive entry.
pub enum Entry<'a> {
    Dir(&'a str),
    File { name: &'a str, mode: u32, data: &'a [u8] },
    CharDev { name: &'a str, major: u32, minor: u32 },
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn header(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, size: usize, rdev: (u32, u32)) {
    let fields =
        [ino, mode, 0, 0, 1, 0, size as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

/// Writes a newc archive of `entries`.
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let ino = i as u32 + 1;
        match e {
            Entry::Dir(name) => header(&mut out, ino, name, S_IFDIR | 0o755, 0, (0, 0)),
            Entry::CharDev { name, major, minor } => {
                header(&mut out, ino, name, S_IFCHR | 0o600, 0, (*major, *minor))
            }
            Entry::File { name, mode, data } => {
                header(&mut out, ino, name, S_IFREG | mode, data.len(), (0, 0));
                out.extend_from_slice(data);
                pad4(&mut out);
            }
        }
    }
    header(&mut out, 0, "TRAILER!!!", 0, 0, (0, 0));
    out
}

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("cached initramfs {path} is corrupt (its SHA-256 is not the one in its name); delete it and rerun to rebuild it")]
    Corrupt { path: String },
    #[error("{file}: {reason}")]
    Io { file: String, reason: String },
}

/// The archive for `agent` and `job`, written (once) to
/// `<cache>/initramfs/<sha256>.cpio`.
pub fn build(cache: &Path, agent: &[u8], job: &[u8]) -> Result<PathBuf, InitramfsError> {
    let bytes = write(&[
        Entry::Dir("dev"),
        Entry::CharDev { name: "dev/console", major: 5, minor: 1 },
        Entry::Dir("proc"),
        Entry::Dir("sys"),
        Entry::File { name: "init", mode: 0o755, data: agent },
        Entry::File {
            name: super::protocol::JOB_PATH.trim_start_matches('/'),
            mode: 0o644,
            data: job,
        },
    ]);
    let sha = super::apt::sha256_hex(&bytes);
    let dir = cache.join("initramfs");
    let path = dir.join(format!("{sha}.cpio"));
    let io = |f: &Path, e: std::io::Error| InitramfsError::Io {
        file: f.display().to_string(),
        reason: e.to_string(),
    };
    if path.exists() {
        check(&path)?;
        // Mark it used, so pruning keeps it.
        let _ = std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let tmp = dir.join(format!(".{sha}.{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    prune(&dir);
    Ok(path)
}

/// Every job makes a new archive; ones unused for a day are removed so the
/// cache does not grow without bound (a day: no run in progress can still
/// be about to boot one).
fn prune(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let day = std::time::Duration::from_secs(24 * 3600);
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if old && e.path().extension().is_some_and(|x| x == "cpio") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Checks a cached archive against the hash in its name.
pub fn check(path: &Path) -> Result<(), InitramfsError> {
    let want = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let data = std::fs::read(path).map_err(|e| InitramfsError::Io {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if super::apt::sha256_hex(&data) != want {
        return Err(InitramfsError::Corrupt { path: path.display().to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout_matches_cpio() {
        let a =
            write(&[Entry::Dir("dev"), Entry::File { name: "init", mode: 0o755, data: b"hello" }]);
        // Header magic and alignment.
        assert_eq!(&a[..6], b"070701");
        assert_eq!(a.len() % 4, 0);
        // If GNU cpio is here, it must list and extract what we wrote.
        let Ok(mut child) = std::process::Command::new("cpio")
            .args(["-i", "--to-stdout", "init"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
        else {
            crate::util::skip(format_args!("cpio(1) not installed; only the header was checked"));
            return;
        };
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&a).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.stdout, b"hello");
    }

    #[test]
    fn corrupt_cache_entry_is_refused_with_a_fix() {
        let dir = std::env::temp_dir().join(format!("xdpqual-initramfs-{}", std::process::id()));
        let path = build(&dir, b"agent", b"{}").unwrap();
        check(&path).unwrap();
        std::fs::write(&path, b"garbage").unwrap();
        let e = build(&dir, b"agent", b"{}").unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("corrupt") && e.contains("delete it"), "{e}");
    }
}
