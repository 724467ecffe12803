//! `--map NAME=FILE.json` (initial map contents) and `--dump-maps FILE.json`.
//!
//! Input format, version 1:
//! ```json
//! { "entries": [ { "key": "0a000001", "value": "01" },
//!                { "key": 3, "value": "00000000" },
//!                { "key": 0, "program": "xdp_ipv4" } ] }
//! ```
//! Keys and values are hex byte strings in memory order; a number as a key
//! is a little-endian u32 (array indices). For a PROG_ARRAY, `program`
//! names the XDP program of the same object to put in that slot. For per-CPU
//! maps a single value is written to every CPU.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, MapEntry};
use crate::program::MapType;
use crate::util::unhex;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    entries: Vec<EntrySpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    key: KeySpec,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    program: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeySpec {
    Index(u32),
    Hex(String),
}

/// One `--map` argument, parsed.
#[derive(Clone, Debug)]
pub struct MapInit {
    pub map: String,
    pub file: std::path::PathBuf,
}

impl std::str::FromStr for MapInit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (map, file) = s.split_once('=').ok_or_else(|| format!("'{s}' is not NAME=FILE.json"))?;
        Ok(MapInit { map: map.to_string(), file: file.into() })
    }
}

/// Applies a map file to the engine's maps.
pub fn apply(engine: &mut Engine, init: &MapInit) -> Result<()> {
    let ctx = || format!("map file {} for map '{}'", init.file.display(), init.map);
    let text = std::fs::read_to_string(&init.file).with_context(ctx)?;
    let spec: MapFile = serde_json::from_str(&text).with_context(ctx)?;
    for (i, e) in spec.entries.iter().enumerate() {
        apply_entry(engine, &init.map, e).with_context(|| format!("entry {i}")).with_context(ctx)?;
    }
    Ok(())
}

fn apply_entry(engine: &mut Engine, map: &str, e: &EntrySpec) -> Result<()> {
    let key = match &e.key {
        KeySpec::Index(i) => i.to_le_bytes().to_vec(),
        KeySpec::Hex(h) => unhex(h).map_err(|m| anyhow!(m))?,
    };
    if let Some(prog) = &e.program {
        let index = u32::from_le_bytes(key.get(..4).and_then(|k| k.try_into().ok()).ok_or_else(|| anyhow!("PROG_ARRAY keys are 4 bytes"))?);
        return engine.set_prog_array(map, index, prog).map_err(|m| anyhow!(m));
    }
    let m = engine.maps_mut().by_name(map).ok_or_else(|| anyhow!("the object has no map named '{map}'"))?;
    let value = unhex(e.value.as_deref().ok_or_else(|| anyhow!("entry has neither 'value' nor 'program'"))?).map_err(|m| anyhow!(m))?;
    if key.len() != m.def.key_size as usize {
        bail!("key has {} bytes, map '{map}' has key_size {}", key.len(), m.def.key_size);
    }
    if value.len() != m.def.value_size as usize {
        bail!("value has {} bytes, map '{map}' has value_size {}", value.len(), m.def.value_size);
    }
    if matches!(m.def.map_type, MapType::Ringbuf | MapType::PerfEventArray) {
        bail!("map '{map}' ({}) holds no entries", m.def.map_type.name());
    }
    let rc = m.update(&key, &value, 0, None);
    if rc != 0 {
        bail!("update refused with errno {}", -rc);
    }
    Ok(())
}

/// The `--dump-maps` document.
#[derive(Serialize)]
pub struct MapDump<'a> {
    pub schema: &'static str,
    pub maps: Vec<DumpedMap<'a>>,
}

#[derive(Serialize)]
pub struct DumpedMap<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub map_type: String,
    pub entries: Vec<MapEntry>,
}

pub fn dump(engine: &Engine) -> MapDump<'_> {
    MapDump {
        schema: "xdpqual.maps/1",
        maps: engine
            .maps()
            .maps
            .iter()
            .map(|m| DumpedMap { name: &m.def.name, map_type: m.def.map_type.name(), entries: m.entries() })
            .collect(),
    }
}

pub fn write_dump(engine: &Engine, path: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(&dump(engine))?;
    crate::util::write_atomic(path, &json).with_context(|| format!("writing map dump {}", path.display()))
}
