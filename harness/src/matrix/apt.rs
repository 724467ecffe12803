//! Debian kernel packages through the machine's own apt, in a private apt
//! tree (its own sources list, package lists and caches under our cache
//! directory), so the system's apt state is never touched.
//!
//! apt-get verifies each download against the hash in the signed index; we
//! check the SHA-256 again ourselves, against the index entry `apt-cache
//! show` prints, so a corrupted cache or a proxy serving wrong bytes is
//! refused with the package and suite named.

use super::spec::Arch;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The archive keyring Debian's apt uses for its own sources.
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("running {what} failed: {reason}. Is apt installed (Debian or Ubuntu host)?")]
    Spawn { what: String, reason: String },
    #[error("`apt-get update` for {mirror} (suites {suites}) failed: {stderr}\nCheck the mirror (or pass --mirror URI) and the network.")]
    Update { mirror: String, suites: String, stderr: String },
    #[error("package `{package}` ({arch}) is not in Debian suite `{suite}` at {mirror}: {detail}")]
    Missing { package: String, arch: String, suite: String, mirror: String, detail: String },
    #[error("downloading {package} {version} ({arch}) from suite `{suite}` failed: {stderr}")]
    Download { package: String, version: String, arch: String, suite: String, stderr: String },
    #[error("package {package} {version} ({arch}) from suite `{suite}` fails its checksum: the index says SHA256 {expected}, the file {file} has {actual}. Delete it and rerun; if it repeats, the mirror or a proxy serves wrong data")]
    Checksum {
        package: String,
        version: String,
        arch: String,
        suite: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: {reason}")]
    Io { file: String, reason: String },
}

/// A package version as the index describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexEntry {
    pub package: String,
    pub version: String,
    pub arch: String,
    pub suite: String,
    pub sha256: String,
    pub depends: Vec<String>,
    /// The package's size in bytes (`Size:`), for the download's progress bar.
    #[serde(default)]
    pub size: Option<u64>,
}

/// A private apt configuration for one mirror and a set of suites.
pub struct AptTree {
    root: PathBuf,
    mirror: String,
    suites: Vec<String>,
}

pub fn sha256_file(path: &Path) -> Result<String, AptError> {
    let data = std::fs::read(path)
        .map_err(|e| AptError::Io { file: path.display().to_string(), reason: e.to_string() })?;
    Ok(sha256_hex(&data))
}

pub fn sha256_hex(data: &[u8]) -> String {
    super::protocol::hex::hex(&Sha256::digest(data))
}

/// Fields of one stanza of `apt-cache show` output.
fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(str::trim))
}

/// Package names (without version constraints) of a Depends field.
pub fn depends_names(depends: &str) -> Vec<String> {
    depends
        .split(',')
        .flat_map(|alt| alt.split('|'))
        .filter_map(|d| d.split_whitespace().next())
        .map(|n| n.split(':').next().unwrap_or(n).to_string())
        .collect()
}

impl AptTree {
    pub fn new(cache: &Path, mirror: &str, mut suites: Vec<String>) -> AptTree {
        suites.sort();
        suites.dedup();
        // One tree per mirror and architecture set: lists of different
        // mirrors never mix, and an xdpqual that knows other architectures
        // (s390x) keeps its own lists rather than rewriting the sources of
        // a tree another version shares.
        let arches: Vec<&str> = Arch::ALL.iter().map(|a| a.debian()).collect();
        let tag = &sha256_hex(format!("{mirror}|{}", arches.join(",")).as_bytes())[..12];
        AptTree { root: cache.join("apt").join(tag), mirror: mirror.to_string(), suites }
    }

    pub fn mirror(&self) -> &str {
        &self.mirror
    }

    fn lists(&self) -> PathBuf {
        self.root.join("lists")
    }

    /// Options that point apt at this tree only and fetch nothing but the
    /// Packages indices (no Contents, translations or DEP-11 metadata).
    fn options(&self) -> Vec<String> {
        let r = self.root.display();
        let mut o: Vec<String> = vec![
            format!("Dir::Etc::SourceList={r}/sources.list"),
            "Dir::Etc::SourceParts=/dev/null".into(),
            "Dir::Etc::Preferences=/dev/null".into(),
            "Dir::Etc::PreferencesParts=/dev/null".into(),
            format!("Dir::State::Lists={r}/lists"),
            format!("Dir::State::status={r}/status"),
            format!("Dir::Cache={r}/cache"),
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
            "Acquire::Languages=none".into(),
            "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::Translations::DefaultEnabled=false".into(),
        ];
        for a in Arch::ALL {
            o.push(format!("APT::Architectures::={}", a.debian()));
        }
        o.into_iter().flat_map(|x| ["-o".to_string(), x]).collect()
    }

    fn run(
        &self,
        tool: &str,
        args: &[String],
        cwd: Option<&Path>,
    ) -> Result<std::process::Output, AptError> {
        let mut cmd = Command::new(tool);
        cmd.args(self.options()).args(args).env("LC_ALL", "C").stdin(std::process::Stdio::null());
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        cmd.output().map_err(|e| AptError::Spawn {
            what: format!("{tool} {}", args.join(" ")),
            reason: e.to_string(),
        })
    }

    fn prepare(&self) -> Result<(), AptError> {
        let io = |e: std::io::Error| AptError::Io {
            file: self.root.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(self.lists().join("partial")).map_err(io)?;
        std::fs::create_dir_all(self.root.join("cache/archives/partial")).map_err(io)?;
        let status = self.root.join("status");
        if !status.exists() {
            std::fs::write(&status, "").map_err(io)?;
        }
        let arches: Vec<&str> = Arch::ALL.iter().map(|a| a.debian()).collect();
        let signed = if Path::new(KEYRING).exists() {
            format!(" signed-by={KEYRING}")
        } else {
            String::new()
        };
        // Keep the suites an earlier run listed, so a run over a few cells
        // does not make the next full run fetch every list again.
        let path = self.root.join("sources.list");
        let mut suites = self.suites.clone();
        if let Ok(old) = std::fs::read_to_string(&path) {
            suites.extend(
                old.lines().filter_map(|l| l.split_whitespace().rev().nth(1)).map(str::to_string),
            );
        }
        suites.sort();
        suites.dedup();
        let list: String = suites
            .iter()
            .map(|s| format!("deb [arch={}{signed}] {} {s} main\n", arches.join(","), self.mirror))
            .collect();
        if std::fs::read_to_string(&path).ok().as_deref() != Some(list.as_str()) {
            std::fs::write(&path, list).map_err(io)?;
            // A new suite set needs new lists.
            let _ = std::fs::remove_file(self.root.join("updated"));
        }
        Ok(())
    }

    /// True when the lists for these suites are present (a warm cache).
    pub fn is_fresh(&self) -> bool {
        self.root.join("updated").exists()
            && std::fs::read_to_string(self.root.join("sources.list"))
                .is_ok_and(|s| self.suites.iter().all(|x| s.contains(&format!(" {x} main"))))
    }

    /// Fetches the Packages indices unless they are present and `refresh`
    /// is false.
    pub fn update(&self, refresh: bool) -> Result<(), AptError> {
        self.prepare()?;
        if self.is_fresh() && !refresh {
            return Ok(());
        }
        let out = self.run("apt-get", &["-q".into(), "update".into()], None)?;
        // apt-get update exits 0 even when a suite's index failed; "Err:" /
        // "W: Failed" lines say so.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.contains("Failed to fetch") {
            return Err(AptError::Update {
                mirror: self.mirror.clone(),
                suites: self.suites.join(" "),
                stderr: stderr.trim().to_string(),
            });
        }
        std::fs::write(self.root.join("updated"), "").map_err(|e| AptError::Io {
            file: self.root.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(())
    }

    /// The index entry of `package` for `arch` in `suite`.
    pub fn show(
        &self,
        package: &str,
        arch: Arch,
        suite: &str,
        version: Option<&str>,
    ) -> Result<IndexEntry, AptError> {
        let spec = match version {
            Some(v) => format!("{package}:{}={v}", arch.debian()),
            None => format!("{package}:{}/{suite}", arch.debian()),
        };
        let out = self.run("apt-cache", &["show".into(), spec], None)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let missing = |detail: String| AptError::Missing {
            package: package.to_string(),
            arch: arch.debian().to_string(),
            suite: suite.to_string(),
            mirror: self.mirror.clone(),
            detail,
        };
        if !out.status.success() || text.trim().is_empty() {
            return Err(missing(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        // With an explicit version apt-cache may print the same version
        // from several suites; they share the file, so the first will do.
        let stanza = text.split("\n\n").next().unwrap_or("");
        let sha256 = field(stanza, "SHA256")
            .ok_or_else(|| missing("the index entry has no SHA256 field".into()))?;
        Ok(IndexEntry {
            package: package.to_string(),
            version: field(stanza, "Version").unwrap_or("").to_string(),
            arch: arch.debian().to_string(),
            suite: suite.to_string(),
            sha256: sha256.to_ascii_lowercase(),
            depends: field(stanza, "Depends").map(depends_names).unwrap_or_default(),
            size: field(stanza, "Size").and_then(|s| s.trim().parse().ok()),
        })
    }

    /// Names of the packages whose name matches the POSIX regular
    /// expression `regex` (`apt-cache search --names-only`), sorted.
    pub fn search_names(&self, regex: &str) -> Result<Vec<String>, AptError> {
        let out =
            self.run("apt-cache", &["search".into(), "--names-only".into(), regex.into()], None)?;
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(" - ").next())
            .map(|n| n.split(':').next().unwrap_or(n).trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Downloads `entry` into `dir` and checks its SHA-256 against the index.
    pub fn download(&self, entry: &IndexEntry, dir: &Path) -> Result<PathBuf, AptError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| AptError::Io { file: dir.display().to_string(), reason: e.to_string() })?;
        let spec = format!("{}:{}={}", entry.package, entry.arch, entry.version);
        let out = {
            // A cold kernel download takes tens of seconds: show its bytes
            // (the files apt is writing for this package) while it runs.
            let bar = crate::util::progress::bytes(&entry.package, entry.size);
            let done = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        bar.set_position(partial_bytes(dir, &entry.package));
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                });
                let out = self.run("apt-get", &["-q".into(), "download".into(), spec], Some(dir));
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                out
            })?
        };
        let fail = |stderr: String| AptError::Download {
            package: entry.package.clone(),
            version: entry.version.clone(),
            arch: entry.arch.clone(),
            suite: entry.suite.clone(),
            stderr,
        };
        if !out.status.success() {
            return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        // apt names the file <package>_<version with ':' as %3a>_<arch>.deb.
        let name =
            format!("{}_{}_{}.deb", entry.package, entry.version.replace(':', "%3a"), entry.arch);
        let path = dir.join(&name);
        if !path.exists() {
            return Err(fail(format!(
                "apt-get reported success but {} is not there",
                path.display()
            )));
        }
        verify(entry, &path)?;
        Ok(path)
    }
}

/// Bytes apt has written so far for `package` into `dir` (or its
/// `partial/`), for the progress bar only.
fn partial_bytes(dir: &Path, package: &str) -> u64 {
    let prefix = format!("{package}_");
    [dir.to_path_buf(), dir.join("partial")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Checks a downloaded package against its index entry.
pub fn verify(entry: &IndexEntry, path: &Path) -> Result<(), AptError> {
    let actual = sha256_file(path)?;
    if actual != entry.sha256 {
        return Err(AptError::Checksum {
            package: entry.package.clone(),
            version: entry.version.clone(),
            arch: entry.arch.clone(),
            suite: entry.suite.clone(),
            file: path.display().to_string(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_names_drop_versions_and_arch_qualifiers() {
        assert_eq!(
            depends_names("linux-base-cloud-amd64 (= 7.2.13-1), linux-image-7.2.13+deb14-cloud-amd64:amd64 (= 7.2.13-1), dracut | initramfs-tools (>= 0.120)"),
            ["linux-base-cloud-amd64", "linux-image-7.2.13+deb14-cloud-amd64", "dracut", "initramfs-tools"]
        );
    }

    #[test]
    fn a_missing_package_names_package_and_suite() {
        if Command::new("apt-cache").arg("--version").output().is_err() {
            crate::util::skip(format_args!("apt-cache not installed"));
            return;
        }
        let dir = std::env::temp_dir().join(format!("xdpqual-apt-missing-{}", std::process::id()));
        let tree = AptTree::new(&dir, "http://unused.invalid/debian", vec!["bookworm".into()]);
        tree.prepare().unwrap();
        let e = tree
            .show("linux-image-nonexistent-amd64", Arch::X86_64, "bookworm", None)
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("linux-image-nonexistent-amd64") && e.contains("`bookworm`"), "{e}");
    }

    #[test]
    fn a_wrong_checksum_names_package_and_suite() {
        let path = std::env::temp_dir().join(format!("xdpqual-apt-{}.deb", std::process::id()));
        std::fs::write(&path, b"not the package").unwrap();
        let entry = IndexEntry {
            package: "linux-image-6.1.0-50-cloud-amd64".into(),
            version: "6.1.176-1".into(),
            arch: "amd64".into(),
            suite: "bookworm".into(),
            sha256: "00".repeat(32),
            depends: vec![],
            size: None,
        };
        let e = verify(&entry, &path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(
            e.contains("linux-image-6.1.0-50-cloud-amd64")
                && e.contains("`bookworm`")
                && e.contains("checksum"),
            "{e}"
        );
        // The checksum itself: SHA-256 of "abc" (FIPS 180-2 example).
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
