//! What a killed run leaves behind, and finding it again.
//!
//! A run stopped by SIGKILL cannot detach its program or delete its
//! namespace. So every attachment is recorded in a state file
//! (`/run/xdpqual/<pid>-<n>.state`, or under `$XDG_RUNTIME_DIR/xdpqual`
//! when /run is not writable) for as long as it lasts, and every namespace
//! `--isolate` creates carries the creator's pid in its name
//! ([`super::isolate`]). At the start of each live run, [`clean_stale`]
//! takes the ones whose process is gone: it detaches the recorded program
//! if that very program (by id) is still attached, and deletes our
//! namespaces. Live processes' things are never touched.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{isolate, XdpMode};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn state_dir() -> Option<PathBuf> {
    let run = PathBuf::from("/run/xdpqual");
    if std::fs::create_dir_all(&run).is_ok() {
        return Some(run);
    }
    let xdg = PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?).join("xdpqual");
    std::fs::create_dir_all(&xdg).ok()?;
    Some(xdg)
}

/// Whether process `pid` exists (kill(pid, 0) semantics through /proc).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A program we attached, as written down while it is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pid: u32,
    pub iface: String,
    pub netns: Option<PathBuf>,
    pub mode: XdpMode,
    pub prog_id: u32,
}

impl Record {
    fn render(&self) -> String {
        format!(
            "pid={}\niface={}\nnetns={}\nmode={}\nprog_id={}\n",
            self.pid,
            self.iface,
            self.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            self.mode,
            self.prog_id
        )
    }

    fn parse(text: &str) -> Option<Record> {
        let get = |k: &str| {
            text.lines().find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        };
        Some(Record {
            pid: get("pid")?.parse().ok()?,
            iface: get("iface")?.to_string(),
            netns: get("netns").filter(|s| !s.is_empty()).map(PathBuf::from),
            mode: get("mode")?.parse().ok()?,
            prog_id: get("prog_id")?.parse().ok()?,
        })
    }
}

/// The state file of one attachment; removed on drop.
#[derive(Debug)]
pub struct StateFile {
    path: Option<PathBuf>,
}

impl StateFile {
    /// Writes the record. Failing to write it is not fatal (the run still
    /// detaches on every path but SIGKILL); the returned file is then empty.
    pub fn write(rec: &Record) -> StateFile {
        let Some(dir) = state_dir() else { return StateFile { path: None } };
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = dir.join(format!("{}-{n}.state", rec.pid));
        // Whole or not at all: written aside, then renamed into place.
        let tmp = dir.join(format!("{}-{n}.tmp", rec.pid));
        match std::fs::write(&tmp, rec.render()).and_then(|()| std::fs::rename(&tmp, &path)) {
            Ok(()) => StateFile { path: Some(path) },
            Err(_) => {
                let _ = std::fs::remove_file(&tmp);
                StateFile { path: None }
            }
        }
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes what runs that no longer exist left behind; says what it did.
/// `detach` undoes one recorded attachment and says what it did (it is
/// [`super::attach::detach_recorded`]; passed in so that this module, which
/// attach.rs writes its records through, does not depend on attach.rs).
pub fn clean_stale(detach: fn(&Record) -> String) -> Vec<String> {
    let mut done = Vec::new();
    if let Some(dir) = state_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        for path in files {
            let dead_tmp = path.extension().and_then(|e| e.to_str()) == Some("tmp")
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split('-').next())
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(|p| !alive(p));
            if dead_tmp {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("state") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let Some(rec) = Record::parse(&text) else {
                // Named `<pid>-<n>.state`: unreadable and its writer gone.
                let writer = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split('-').next())
                    .and_then(|p| p.parse::<u32>().ok());
                if writer.is_some_and(|p| !alive(p)) {
                    let _ = std::fs::remove_file(&path);
                    done.push(format!("removed unreadable state file {}", path.display()));
                } else {
                    done.push(format!("ignored unreadable state file {}", path.display()));
                }
                continue;
            };
            if alive(rec.pid) {
                continue;
            }
            done.push(detach(&rec));
            let _ = std::fs::remove_file(&path);
        }
    }
    // Our namespaces whose creator is gone.
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        let mut names: Vec<String> =
            entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        names.sort();
        for name in names {
            let Some(pid) = isolate::owner_pid(&name) else { continue };
            if !name.starts_with(isolate::NETNS_PREFIX) || alive(pid) {
                continue;
            }
            let out = std::process::Command::new("ip").args(["netns", "del", &name]).output();
            done.push(match out {
                Ok(o) if o.status.success() => format!(
                    "removed network namespace {name} (and its veth pair), left by process {pid}, which is gone"
                ),
                Ok(o) => format!(
                    "could not remove network namespace {name} left by process {pid}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
                Err(e) => format!("could not run `ip netns del {name}`: {e}"),
            });
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = Record {
            pid: 42,
            iface: "veth0".into(),
            netns: Some("/run/netns/x".into()),
            mode: XdpMode::Skb,
            prog_id: 7,
        };
        assert_eq!(Record::parse(&r.render()), Some(r.clone()));
        let r2 = Record { netns: None, ..r };
        assert_eq!(Record::parse(&r2.render()), Some(r2));
        assert_eq!(Record::parse("pid=1\n"), None);
    }
}
