//! A cell's kernel image on disk: a local file, or a Debian package
//! resolved, downloaded, checked and extracted once into a
//! content-addressed cache (`kernels/<SHA-256 of the .deb>/vmlinuz`), so a
//! warm matrix runs no apt command and downloads nothing.

use super::apt::{self, AptError, AptTree, IndexEntry};
use super::spec::{Arch, Cell, KernelSource};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Apt(#[from] AptError),
    #[error("cell `{cell}`: {source}")]
    Build {
        cell: String,
        #[source]
        source: super::build::BuildError,
    },
    #[error(
        "cell `{cell}`: kernel file {path} does not exist; fix `kernel = ...` in the matrix file"
    )]
    NoFile { cell: String, path: String },
    #[error("{package} {version} ({arch}, suite `{suite}`) holds no kernel image (looked for ./boot/vmlinuz-* and ./usr/lib/modules/*/vmlinuz, also in its linux-binary-* dependency)")]
    NoImage { package: String, version: String, arch: String, suite: String },
    #[error("metapackage {meta} ({arch}, suite `{suite}`) depends on no linux-image-* package")]
    NoImageDependency { meta: String, arch: String, suite: String },
    #[error("extracting {member} from {deb}: {reason}")]
    Extract { deb: String, member: String, reason: String },
    #[error("cached kernel {path} is corrupt (its SHA-256 does not match the one recorded when it was extracted); delete {dir} and rerun to extract it again")]
    Corrupt { path: String, dir: String },
    #[error("{file}: {reason}")]
    Io { file: String, reason: String },
}

/// A kernel ready to boot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelImage {
    pub path: PathBuf,
    /// Package, version and suite, or the local path.
    pub label: String,
}

fn io(file: &Path) -> impl Fn(std::io::Error) -> KernelError + '_ {
    move |e| KernelError::Io { file: file.display().to_string(), reason: e.to_string() }
}

/// The metapackage that names a suite's current kernel of a flavour.
pub fn metapackage(arch: Arch, flavour: Option<&str>) -> String {
    match flavour {
        Some(f) => format!("linux-image-{f}-{}", arch.debian()),
        None => format!("linux-image-{}", arch.debian()),
    }
}

/// Resolves a cell's kernel. `apt` is only touched for Debian cells whose
/// resolution is not cached yet (or when `refresh` asks).
pub fn resolve(
    cell: &Cell,
    cache: &Path,
    apt: &AptTree,
    refresh: bool,
) -> Result<KernelImage, KernelError> {
    let (suite, flavour) = match &cell.kernel {
        KernelSource::File(p) => {
            if !p.is_file() {
                return Err(KernelError::NoFile {
                    cell: cell.name.clone(),
                    path: p.display().to_string(),
                });
            }
            return Ok(KernelImage { path: p.clone(), label: p.display().to_string() });
        }
        KernelSource::Debian { suite, flavour } => (suite, flavour.as_deref()),
        KernelSource::Build { source, config } => {
            let (path, rec) = super::build::resolve(source, config, cell.arch, cache)
                .map_err(|source| KernelError::Build { cell: cell.name.clone(), source })?;
            return Ok(KernelImage { path, label: rec.label() });
        }
    };
    let meta = metapackage(cell.arch, flavour);
    let record = record_path(cache, apt.mirror(), suite, &meta);
    if !refresh {
        if let Some(img) = cached(&record, cache)? {
            return Ok(img);
        }
    }
    // With `refresh` the caller has re-fetched the lists once already.
    apt.update(false)?;
    let entry = apt.show(&meta, cell.arch, suite, None)?;
    let image_pkg =
        entry.depends.iter().find(|d| d.starts_with("linux-image-")).ok_or_else(|| {
            KernelError::NoImageDependency {
                meta: meta.clone(),
                arch: entry.arch.clone(),
                suite: suite.clone(),
            }
        })?;
    let image = apt.show(image_pkg, cell.arch, suite, None)?;
    let first = match fetch_image(&image, cache, apt, cell.arch, suite, &record) {
        Ok(Some(img)) => return Ok(img),
        Ok(None) => {
            return Err(KernelError::NoImage {
                package: image.package,
                version: image.version,
                arch: image.arch,
                suite: suite.clone(),
            })
        }
        Err(e @ KernelError::Apt(AptError::Download { .. })) => e,
        Err(e) => return Err(e),
    };
    // The mirror lists the metapackage's kernel but does not serve it
    // (seen: a partial mirror with trixie's s390x 6.12.117 missing and
    // 6.12.107 present). The suite's other builds of the same flavour,
    // newest first, are the same kernel series: the cell runs the newest
    // one the mirror has, and its report names that version.
    for alt in other_builds(apt, &meta, cell.arch, suite, &image)? {
        if let Ok(Some(img)) = fetch_image(&alt, cache, apt, cell.arch, suite, &record) {
            return Ok(img);
        }
    }
    Err(first)
}

/// Fetches `image` (or the linux-binary-* package it depends on) and
/// records it as the resolution of the cell's metapackage.
fn fetch_image(
    image: &IndexEntry,
    cache: &Path,
    apt: &AptTree,
    arch: Arch,
    suite: &str,
    record: &Path,
) -> Result<Option<KernelImage>, KernelError> {
    // Since 7.x Debian splits the image package: the kernel itself is in
    // the linux-binary-* package it depends on.
    let mut candidates = vec![image.clone()];
    for d in image.depends.iter().filter(|d| d.starts_with("linux-binary-")) {
        candidates.push(apt.show(d, arch, suite, None)?);
    }
    for c in &candidates {
        if let Some(img) = fetch_and_extract(c, cache, apt)? {
            let rec = serde_json::to_vec(c).expect("index entries serialise");
            std::fs::create_dir_all(record.parent().expect("has parent")).map_err(io(record))?;
            std::fs::write(record, rec).map_err(io(record))?;
            return Ok(Some(img));
        }
    }
    Ok(None)
}

/// The suite's other image packages of the metapackage's flavour (ABI
/// names like `linux-image-6.12.107+deb13-s390x` or
/// `linux-image-6.1.0-49-cloud-amd64`), newest version first.
fn other_builds(
    apt: &AptTree,
    meta: &str,
    arch: Arch,
    suite: &str,
    failed: &IndexEntry,
) -> Result<Vec<IndexEntry>, KernelError> {
    let flavour = meta.trim_start_matches("linux-image-");
    let regex = format!("^linux-image-[0-9][^-]*(-[0-9]+)?-{}$", flavour.replace('+', "\\+"));
    let mut out = Vec::new();
    for name in apt.search_names(&regex)? {
        if name == failed.package {
            continue;
        }
        // Listed for another suite or architecture only: not a candidate.
        if let Ok(e) = apt.show(&name, arch, suite, None) {
            out.push(e);
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(version_key(&e.version)));
    Ok(out)
}

/// The numbers of a Debian version, for ordering kernel builds of one
/// series (`6.12.107-1` < `6.12.117-1`).
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

fn record_path(cache: &Path, mirror: &str, suite: &str, meta: &str) -> PathBuf {
    cache
        .join("resolved")
        .join(format!("{}.json", apt::sha256_hex(format!("{mirror}|{suite}|{meta}").as_bytes())))
}

/// True when the cell's kernel is on disk already: resolving it runs no
/// apt command and downloads nothing.
pub fn is_cached(cell: &Cell, cache: &Path, mirror: &str) -> bool {
    match &cell.kernel {
        KernelSource::File(p) => p.is_file(),
        KernelSource::Build { source, config } => {
            super::build::is_cached(source, config, cell.arch, cache)
        }
        KernelSource::Debian { suite, flavour } => {
            let record = record_path(
                cache,
                mirror.trim_end_matches('/'),
                suite,
                &metapackage(cell.arch, flavour.as_deref()),
            );
            matches!(cached(&record, cache), Ok(Some(_)))
        }
    }
}

fn dir_for(cache: &Path, entry: &IndexEntry) -> PathBuf {
    cache.join("kernels").join(&entry.sha256)
}

fn label(e: &IndexEntry) -> String {
    format!("{} {} ({})", e.package, e.version, e.suite)
}

/// The cached kernel a resolution record points at, checked.
fn cached(record: &Path, cache: &Path) -> Result<Option<KernelImage>, KernelError> {
    let Ok(text) = std::fs::read(record) else { return Ok(None) };
    let Ok(entry) = serde_json::from_slice::<IndexEntry>(&text) else { return Ok(None) };
    let dir = dir_for(cache, &entry);
    let path = dir.join("vmlinuz");
    let Ok(want) = std::fs::read_to_string(dir.join("vmlinuz.sha256")) else { return Ok(None) };
    if !path.exists() {
        return Ok(None);
    }
    if apt::sha256_file(&path)? != want.trim() {
        return Err(KernelError::Corrupt {
            path: path.display().to_string(),
            dir: dir.display().to_string(),
        });
    }
    Ok(Some(KernelImage { path, label: label(&entry) }))
}

fn fetch_and_extract(
    entry: &IndexEntry,
    cache: &Path,
    apt: &AptTree,
) -> Result<Option<KernelImage>, KernelError> {
    let dir = dir_for(cache, entry);
    let path = dir.join("vmlinuz");
    if path.exists() && dir.join("vmlinuz.sha256").exists() {
        return Ok(Some(KernelImage { path, label: label(entry) }));
    }
    let downloads = cache.join("debs");
    let deb = apt.download(entry, &downloads)?;
    let member = image_member(&deb)?;
    let result = match member {
        None => None,
        Some(member) => {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let bytes = extract(&deb, &member)?;
            let tmp = dir.join(format!("vmlinuz.tmp{}", std::process::id()));
            std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            std::fs::write(dir.join("vmlinuz.sha256"), apt::sha256_hex(&bytes))
                .map_err(io(&dir))?;
            Some(KernelImage { path, label: label(entry) })
        }
    };
    // The package is not needed once its kernel is extracted.
    let _ = std::fs::remove_file(&deb);
    Ok(result)
}

/// The archive member holding the kernel image, if any.
fn image_member(deb: &Path) -> Result<Option<String>, KernelError> {
    let out =
        Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb).stdout(Stdio::piped()).spawn();
    let err = |reason: String| KernelError::Extract {
        deb: deb.display().to_string(),
        member: "(listing)".into(),
        reason,
    };
    let mut child = out.map_err(|e| err(format!("running dpkg-deb: {e}")))?;
    let listing = Command::new("tar")
        .arg("-t")
        .stdin(child.stdout.take().expect("piped"))
        .output()
        .map_err(|e| err(format!("running tar: {e}")))?;
    let _ = child.wait();
    if !listing.status.success() {
        return Err(err(String::from_utf8_lossy(&listing.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find(|m| is_image_member(m))
        .map(str::to_string))
}

pub fn is_image_member(m: &str) -> bool {
    let m = m.trim_start_matches("./");
    (m.starts_with("boot/vmlinuz-") || m.starts_with("boot/vmlinux-"))
        || (m.starts_with("usr/lib/modules/")
            && m.ends_with("/vmlinuz")
            && m.matches('/').count() == 4)
}

fn extract(deb: &Path, member: &str) -> Result<Vec<u8>, KernelError> {
    let err = |reason: String| KernelError::Extract {
        deb: deb.display().to_string(),
        member: member.to_string(),
        reason,
    };
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("running dpkg-deb: {e}")))?;
    let out = Command::new("tar")
        .args(["-xO", member])
        .stdin(child.stdout.take().expect("piped"))
        .output()
        .map_err(|e| err(format!("running tar: {e}")))?;
    let _ = child.wait();
    if !out.status.success() || out.stdout.is_empty() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_members_of_old_and_split_packages() {
        assert!(is_image_member("./boot/vmlinuz-6.1.0-50-cloud-amd64"));
        assert!(is_image_member("./usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz"));
        assert!(!is_image_member("./usr/lib/modules/7.2.13/kernel/vmlinuz"));
        assert!(!is_image_member("./boot/config-6.1.0-50-cloud-amd64"));
        assert_eq!(metapackage(Arch::Aarch64, Some("cloud")), "linux-image-cloud-arm64");
        assert_eq!(metapackage(Arch::X86_64, None), "linux-image-amd64");
        assert_eq!(metapackage(Arch::S390x, None), "linux-image-s390x");
        assert!(version_key("6.12.107-1") < version_key("6.12.117-1"));
        assert!(version_key("6.1.176-1") > version_key("6.1.76-1"));
    }

    #[test]
    fn missing_local_kernel_names_the_cell() {
        let cell = Cell {
            name: "mine".into(),
            arch: Arch::X86_64,
            kernel: KernelSource::File("/nonexistent/bzImage".into()),
            required: true,
            offload: None,
        };
        let tree = AptTree::new(Path::new("/nonexistent"), "http://unused.invalid/debian", vec![]);
        let e = resolve(&cell, Path::new("/nonexistent"), &tree, false).unwrap_err().to_string();
        assert!(e.contains("`mine`") && e.contains("/nonexistent/bzImage"), "{e}");
    }
}
