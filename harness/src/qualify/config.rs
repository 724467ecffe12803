//! `xdpqual.toml`: what a qualification run checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Captures every program is replayed on (relative to the config file).
    pub captures: Vec<PathBuf>,
    #[serde(rename = "program")]
    pub programs: Vec<ProgramConfig>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ProgramConfig {
    pub object: PathBuf,
    /// Section or function name; the object's first XDP program when absent.
    pub section: Option<String>,
    /// Map files applied before each capture (map name -> JSON file).
    #[serde(default)]
    pub maps: BTreeMap<String, PathBuf>,
    /// Offload profiles and whether the program is expected to be compatible.
    #[serde(default)]
    pub offload: BTreeMap<String, bool>,
}

impl ProgramConfig {
    pub fn label(&self) -> String {
        match &self.section {
            Some(s) => format!("{}:{s}", self.object.display()),
            None => self.object.display().to_string(),
        }
    }
}

/// Reads and validates the configuration; paths become relative to its
/// directory. Errors name the file and, for syntax and unknown keys, the line.
pub fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading configuration {}", path.display()))?;
    let mut cfg: Config = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    cfg.captures.iter_mut().for_each(fix);
    for p in &mut cfg.programs {
        fix(&mut p.object);
        p.maps.values_mut().for_each(fix);
    }
    for c in &cfg.captures {
        if !c.is_file() {
            bail!("{}: capture {} does not exist", path.display(), c.display());
        }
    }
    for p in &cfg.programs {
        if !p.object.is_file() {
            bail!("{}: program object {} does not exist", path.display(), p.object.display());
        }
        for (m, f) in &p.maps {
            if !f.is_file() {
                bail!("{}: map file {} for map '{m}' of {} does not exist", path.display(), f.display(), p.label());
            }
        }
        for prof in p.offload.keys() {
            if nic_model::Profile::load(prof).is_err() {
                bail!("{}: {}: unknown offload profile '{prof}' (built in: {})", path.display(), p.label(), nic_model::Profile::builtin_names().join(", "));
            }
        }
    }
    if cfg.programs.is_empty() {
        bail!("{}: no [[program]] entries", path.display());
    }
    Ok(cfg)
}
