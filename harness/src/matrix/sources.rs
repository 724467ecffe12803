//! The Debian mirror this machine's apt already uses, read from its
//! sources (one-line `.list` files and deb822 `.sources` files, see
//! sources.list(5)). We never name a mirror ourselves.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no `deb` source with an http(s) URI in {searched}; give the Debian mirror with --mirror URI (e.g. the URI in your apt sources)")]
pub struct NoMirror {
    pub searched: String,
}

/// URIs of `deb` entries, in file order.
pub fn uris_in_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        // Options: `[arch=amd64 signed-by=...]`, possibly several words.
        let mut w = words.next();
        if w.is_some_and(|x| x.starts_with('[')) {
            while let Some(x) = w {
                w = words.next();
                if x.ends_with(']') {
                    break;
                }
            }
        }
        if let Some(uri) = w {
            out.push(uri.to_string());
        }
    }
    out
}

/// URIs of stanzas with `Types: deb` (and not `Enabled: no`).
pub fn uris_in_deb822(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uris = Vec::new();
        let mut enabled = true;
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else { continue };
            match k.trim().to_ascii_lowercase().as_str() {
                "types" => types = v.split_whitespace().map(str::to_string).collect(),
                "uris" => uris = v.split_whitespace().map(str::to_string).collect(),
                "enabled" => enabled = v.trim() != "no",
                _ => {}
            }
        }
        if enabled && types.iter().any(|t| t == "deb") {
            out.extend(uris);
        }
    }
    out
}

/// The first http(s) URI of the system's deb sources under `etc_apt`
/// (normally `/etc/apt`). Security and backports archives are skipped when
/// another URI exists, since kernels of older suites are not there.
pub fn system_mirror(etc_apt: &Path) -> Result<String, NoMirror> {
    let mut files: Vec<PathBuf> = vec![etc_apt.join("sources.list")];
    if let Ok(rd) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    let mut uris = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => uris.extend(uris_in_deb822(&text)),
            Some("list") => uris.extend(uris_in_list(&text)),
            _ => {}
        }
    }
    let web: Vec<String> = uris
        .into_iter()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .collect();
    web.iter()
        .find(|u| !u.contains("security") && !u.contains("backports"))
        .or(web.first())
        .map(|u| u.trim_end_matches('/').to_string())
        .ok_or_else(|| NoMirror {
            searched: files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_format_with_options() {
        let text =
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n\
                    deb-src http://src.example/debian bookworm main\n\
                    deb http://m2.example/debian/ trixie main # trailing\n";
        assert_eq!(uris_in_list(text), ["http://m.example/debian", "http://m2.example/debian/"]);
    }

    #[test]
    fn deb822_format_skips_disabled_and_source_stanzas() {
        let text =
            "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main\n\n\
                    Types: deb-src\nURIs: http://b.example/debian\n\n\
                    Types: deb\nURIs: http://c.example/debian\nEnabled: no\n";
        assert_eq!(uris_in_deb822(text), ["http://a.example/debian"]);
    }

    #[test]
    fn prefers_the_main_archive_over_security() {
        let dir = std::env::temp_dir().join(format!("xdpqual-sources-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sources.list.d")).unwrap();
        std::fs::write(
            dir.join("sources.list"),
            "deb http://sec.example/debian-security bookworm-security main\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("sources.list.d/d.sources"),
            "Types: deb\nURIs: http://main.example/debian/\n",
        )
        .unwrap();
        assert_eq!(system_mirror(&dir).unwrap(), "http://main.example/debian");
        std::fs::remove_dir_all(&dir).unwrap();
        let e = system_mirror(&dir).unwrap_err().to_string();
        assert!(e.contains("--mirror"), "{e}");
    }
}
