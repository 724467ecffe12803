//! `--map NAME=FILE.json` (initial map contents) and `--dump-maps FILE.json`.
//!
//! Input format, version 1:
//! ```json
//! { "entries": [ { "key": "0a000001", "value": "01" },
//!                { "key": 3, "value": "00000000" },
//!                { "key": 0, "program": "xdp_ipv4" } ] }
//! ```
//! Keys and values are hex byte strings in memory order, or typed fields
//! laid out with the map's BTF (`{"port": 23, "proto": 6}`; see
//! docs/maps-json.md). A number as a key of a map without BTF is a u32
//! (array indices). Integers are written in the byte order the program
//! runs with (`Object::byte_order`): little-endian for a `bpfel` object,
//! big-endian for a `bpfeb` one or on a big-endian machine; hex strings are
//! memory bytes and are taken as they stand. For a PROG_ARRAY, `program` names the
//! XDP program of the same object to put in that slot. For per-CPU maps a
//! single value is written to every CPU.
//!
//! For an ARRAY_OF_MAPS / HASH_OF_MAPS, a slot holds a map: `"map": NAME`
//! puts a map of the object there (it must match the inner-map template,
//! as the kernel checks), and `"inner": { "entries": [...] }` makes a
//! fresh map from the template, named `OUTER[KEY]`, with those entries
//! (given as for any map, typed with the template's BTF key and value):
//! ```json
//! { "entries": [ { "key": 0, "inner": { "entries": [] } },
//!                { "key": 1, "map": "inner_map2" } ] }
//! ```

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, MapEntry};
use crate::loader::btf_types::{object_map_layouts, Layout, MapLayouts};
use crate::program::MapType;
use crate::program::Object;
use crate::util::unhex;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    entries: Vec<EntrySpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    key: serde_json::Value,
    #[serde(default)]
    value: Option<serde_json::Value>,
    #[serde(default)]
    program: Option<String>,
    /// Map-in-map: a map of the object for this slot.
    #[serde(default)]
    map: Option<String>,
    /// Map-in-map: a fresh inner map with these entries for this slot.
    #[serde(default)]
    inner: Option<MapFile>,
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
        let (map, file) =
            s.split_once('=').ok_or_else(|| format!("'{s}' is not NAME=FILE.json"))?;
        Ok(MapInit { map: map.to_string(), file: file.into() })
    }
}

/// Applies map files to the engine's maps, in order. The object's BTF
/// layouts are read once for all of them.
pub fn apply(engine: &mut Engine, obj: &Object, inits: &[MapInit]) -> Result<()> {
    if inits.is_empty() {
        return Ok(());
    }
    let mut layouts = layouts_of(obj)
        .with_context(|| format!("the BTF types of {}'s maps", obj.path.display()))?;
    let big = obj.byte_order.is_big();
    if big {
        // The program's memory is big-endian, whatever the object was
        // built for: so is every integer of its keys and values.
        for (k, v) in layouts.values_mut() {
            all_big_endian(k);
            all_big_endian(v);
        }
    }
    for init in inits {
        let ctx = || format!("map file {} for map '{}'", init.file.display(), init.map);
        let text = crate::util::input::read_text_limited(
            &init.file,
            "map file",
            crate::util::input::MAX_DATA_BYTES,
        )
        .with_context(ctx)?;
        let spec: MapFile = serde_json::from_str(&text).with_context(ctx)?;
        apply_entries(engine, &init.map, &layouts, &spec.entries, big).with_context(ctx)?;
    }
    Ok(())
}

/// Marks every integer of `l` big-endian.
fn all_big_endian(l: &mut Layout) {
    match l {
        Layout::Int { big_endian, .. } => *big_endian = true,
        Layout::Array { elem, .. } => all_big_endian(elem),
        Layout::Struct { members, .. } => {
            members.iter_mut().for_each(|m| all_big_endian(&mut m.layout))
        }
        Layout::Opaque { .. } => {}
    }
}

/// A 4-byte key or value as the u32 it is in the program's byte order.
fn u32_in_order(b: [u8; 4], big: bool) -> u32 {
    if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

fn apply_entries(
    engine: &mut Engine,
    map: &str,
    layouts: &MapLayouts,
    entries: &[EntrySpec],
    big: bool,
) -> Result<()> {
    let layout = layouts.get(map);
    for (i, e) in entries.iter().enumerate() {
        let r = if e.map.is_some() || e.inner.is_some() {
            apply_slot(engine, map, layouts, e, big)
        } else {
            apply_entry(engine, map, layout, e, big)
        };
        r.with_context(|| format!("entry {i}"))?;
    }
    Ok(())
}

/// One slot of a map-in-map: an existing map of the object, or a fresh
/// inner map from the template with its own entries.
fn apply_slot(
    engine: &mut Engine,
    map: &str,
    layouts: &MapLayouts,
    e: &EntrySpec,
    big: bool,
) -> Result<()> {
    let set = engine.maps_mut();
    let outer = set
        .maps
        .iter()
        .position(|m| m.def.name == map)
        .ok_or_else(|| anyhow!("the object has no map named '{map}'"))?;
    let def = set.maps[outer].def.clone();
    if !def.map_type.is_map_in_map() {
        bail!(
            "'map' and 'inner' fill ARRAY_OF_MAPS and HASH_OF_MAPS slots; map '{map}' is {}",
            def.map_type.name()
        );
    }
    if e.value.is_some() || e.program.is_some() || (e.map.is_some() && e.inner.is_some()) {
        bail!("a map-in-map entry has a 'key' and exactly one of 'map' or 'inner'");
    }
    let key = bytes_of(&e.key, layouts.get(map).map(|l| &l.0), def.key_size as usize, "key", big)?;
    if key.len() != def.key_size as usize {
        bail!("key has {} bytes, map '{map}' has key_size {}", key.len(), def.key_size);
    }
    let inner = match (&e.map, &e.inner) {
        (Some(name), _) => set.maps[..set.objects]
            .iter()
            .position(|m| &m.def.name == name)
            .ok_or_else(|| anyhow!("the object has no map named '{name}' to put in the slot"))?,
        (None, Some(spec)) => {
            let name = inner_name(map, &key, big);
            if set.maps.iter().any(|m| m.def.name == name) {
                bail!("slot {name} is given twice");
            }
            let idx = set.add_inner(outer, &name).map_err(|e| anyhow!("{e}"))?;
            let mut inner_layouts = MapLayouts::new();
            if let Some(l) = layouts.get(&format!("{map}.inner")) {
                inner_layouts.insert(name.clone(), l.clone());
            }
            apply_entries(engine, &name, &inner_layouts, &spec.entries, big)
                .with_context(|| format!("inner map {name}"))?;
            idx
        }
        (None, None) => unreachable!("checked by the caller"),
    };
    engine.maps_mut().set_inner(outer, &key, inner).map_err(|e| anyhow!(e))
}

/// The name of an inner map made for slot `key` of `outer`: `outer[3]`
/// for 4-byte keys (array indices, in the program's byte order: `big`),
/// `outer[hex]` otherwise.
pub fn inner_name(outer: &str, key: &[u8], big: bool) -> String {
    match <[u8; 4]>::try_from(key) {
        Ok(k) => format!("{outer}[{}]", u32_in_order(k, big)),
        Err(_) => {
            format!("{outer}[{}]", key.iter().map(|b| format!("{b:02x}")).collect::<String>())
        }
    }
}

/// Key/value layouts from the object's BTF (empty without BTF).
fn layouts_of(obj: &Object) -> Result<MapLayouts> {
    let bytes = crate::util::input::read_limited(
        &obj.path,
        "BPF object",
        crate::util::input::MAX_OBJECT_BYTES,
    )
    .with_context(|| format!("reading {}", obj.path.display()))?;
    object_map_layouts(&bytes).map_err(|e| anyhow!("{}: {e}", obj.path.display()))
}

fn bytes_of(
    v: &serde_json::Value,
    layout: Option<&Layout>,
    size: usize,
    what: &str,
    big: bool,
) -> Result<Vec<u8>> {
    match (v, layout) {
        (serde_json::Value::String(h), _) if unhex(h).is_ok_and(|b| b.len() == size) => Ok(unhex(h).expect("checked")),
        (serde_json::Value::Number(n), None) if size == 4 => {
            let i = n.as_u64().filter(|i| *i <= u32::MAX as u64).ok_or_else(|| anyhow!("{what} {n} is not a u32"))? as u32;
            Ok(if big { i.to_be_bytes() } else { i.to_le_bytes() }.to_vec())
        }
        (v, Some(l)) => encode(v, l, what),
        (v, None) => bail!("{what} {v} must be a hex string of {size} bytes (the map has no BTF type information for typed fields)"),
    }
}

/// Encodes a typed JSON value with a BTF layout.
pub fn encode(v: &serde_json::Value, layout: &Layout, what: &str) -> Result<Vec<u8>> {
    use serde_json::Value as V;
    let size = layout.size();
    let mut out = vec![0u8; size];
    match (v, layout) {
        (V::String(s), _) if s.parse::<std::net::Ipv4Addr>().is_ok() && size == 4 => {
            out.copy_from_slice(&s.parse::<std::net::Ipv4Addr>().expect("checked").octets());
        }
        (V::String(s), _) if s.parse::<std::net::Ipv6Addr>().is_ok() && size == 16 => {
            out.copy_from_slice(&s.parse::<std::net::Ipv6Addr>().expect("checked").octets());
        }
        (V::String(s), _) => {
            let b = unhex(s).map_err(|e| anyhow!("{what}: {e}"))?;
            if b.len() != size {
                bail!("{what}: hex '{s}' has {} bytes, the type has {size}", b.len());
            }
            out = b;
        }
        (V::Number(n), Layout::Int { size, signed, big_endian }) => {
            let bits = *size * 8;
            let raw: u64 = if let Some(u) = n.as_u64() {
                if bits < 64 && u >> bits != 0 {
                    bail!("{what}: {u} does not fit in {size} bytes");
                }
                u
            } else if let (Some(i), true) = (n.as_i64(), *signed) {
                if bits < 64 && (i < -(1i64 << (bits - 1)) || i >= 1i64 << (bits - 1)) {
                    bail!("{what}: {i} does not fit in a signed {size}-byte integer");
                }
                i as u64
            } else {
                bail!(
                    "{what}: {n} is not a valid {}integer of {size} bytes",
                    if *signed { "" } else { "unsigned " }
                );
            };
            let le = raw.to_le_bytes();
            out.copy_from_slice(&le[..*size]);
            if *big_endian {
                out.reverse();
            }
        }
        (V::Array(items), Layout::Array { elem, len, .. }) => {
            if items.len() != *len {
                bail!("{what}: {} elements given, the array has {len}", items.len());
            }
            let es = elem.size();
            for (i, item) in items.iter().enumerate() {
                let b = encode(item, elem, &format!("{what}[{i}]"))?;
                out[i * es..(i + 1) * es].copy_from_slice(&b);
            }
        }
        (V::Object(fields), Layout::Struct { members, .. }) => {
            for (name, val) in fields {
                let m = members.iter().find(|m| &m.name == name).ok_or_else(|| {
                    let known: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                    anyhow!("{what}: no field '{name}' (fields: {})", known.join(", "))
                })?;
                let b = encode(val, &m.layout, &format!("{what}.{name}"))?;
                out[m.offset..m.offset + b.len()].copy_from_slice(&b);
            }
        }
        (v, l) => bail!("{what}: {v} does not match the BTF type ({l:?})"),
    }
    Ok(out)
}

/// The per-CPU values of a PERCPU_ARRAY / PERCPU_HASH / LRU_PERCPU_HASH
/// entry, when `value` is a list of them rather than one value. A JSON list
/// is one value only where the value type is itself an array: then a list
/// of lists is per CPU.
fn per_cpu_list<'a>(
    map_type: MapType,
    value: &'a serde_json::Value,
    layout: Option<&Layout>,
) -> Option<&'a Vec<serde_json::Value>> {
    let serde_json::Value::Array(items) = value else { return None };
    if !map_type.is_percpu() {
        return None;
    }
    match layout {
        Some(Layout::Array { .. }) => {
            items.iter().all(|i| matches!(i, serde_json::Value::Array(_))).then_some(items)
        }
        _ => Some(items),
    }
}

fn apply_entry(
    engine: &mut Engine,
    map: &str,
    layout: Option<&(Layout, Layout)>,
    e: &EntrySpec,
    big: bool,
) -> Result<()> {
    let key_size = engine
        .maps_mut()
        .by_name(map)
        .map(|m| m.def.key_size as usize)
        .ok_or_else(|| anyhow!("the object has no map named '{map}'"))?;
    let key = bytes_of(&e.key, layout.map(|l| &l.0), key_size, "key", big)?;
    if let Some(prog) = &e.program {
        let index = u32_in_order(
            key.get(..4)
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| anyhow!("PROG_ARRAY keys are 4 bytes"))?,
            big,
        );
        return engine.set_prog_array(map, index, prog).map_err(|m| anyhow!(m));
    }
    let m = engine
        .maps_mut()
        .by_name(map)
        .ok_or_else(|| anyhow!("the object has no map named '{map}'"))?;
    let value_json = e.value.as_ref().ok_or_else(|| {
        anyhow!("entry has neither 'value' nor 'program' (nor, for a map-in-map, 'map' or 'inner')")
    })?;
    if key.len() != m.def.key_size as usize {
        bail!("key has {} bytes, map '{map}' has key_size {}", key.len(), m.def.key_size);
    }
    let vs = m.def.value_size as usize;
    let value_layout = layout.map(|l| &l.1);
    let value = match per_cpu_list(m.def.map_type, value_json, value_layout) {
        // One value per CPU the run models, as BPF_MAP_UPDATE_ELEM takes
        // them from user space: each rounded up to 8 bytes
        // (kernel/bpf/syscall.c bpf_map_value_size, round_up(value_size, 8)
        // * num_possible_cpus()).
        Some(items) => {
            let ncpus = m.stride / m.per_cpu.max(1);
            if items.len() != ncpus {
                bail!(
                    "map '{map}' ({}), key {}: {} values given, but a per-CPU list needs one per \
                     CPU the run models, {ncpus} here (the machine's possible CPUs for diff, live \
                     and the kernel; one per worker for replay --threads), or a single value for \
                     every CPU",
                    m.def.map_type.name(),
                    e.key,
                    items.len()
                );
            }
            let mut out = vec![0u8; m.per_cpu * ncpus];
            for (c, item) in items.iter().enumerate() {
                let v = bytes_of(item, value_layout, vs, &format!("value for CPU {c}"), big)?;
                if v.len() != vs {
                    bail!(
                        "value for CPU {c} has {} bytes, map '{map}' has value_size {vs}",
                        v.len()
                    );
                }
                out[c * m.per_cpu..c * m.per_cpu + vs].copy_from_slice(&v);
            }
            out
        }
        // A single value: the engine writes it to every CPU, as bpftool
        // does when given one value for a per-CPU map.
        None => {
            let value = bytes_of(value_json, value_layout, vs, "value", big)?;
            if value.len() != vs {
                bail!("value has {} bytes, map '{map}' has value_size {vs}", value.len());
            }
            value
        }
    };
    if m.def.map_type.is_map_in_map() {
        bail!(
            "map '{map}' ({}) holds maps: give each slot as {{\"key\": K, \"inner\": {{\"entries\": [...]}}}} \
             or {{\"key\": K, \"map\": \"NAME\"}}",
            m.def.map_type.name()
        );
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

/// The `--dump-maps` document: schema `xdpqual.maps/2` with keys and
/// values typed from the object's BTF (the form `--map` files take, so a
/// dumped map can be fed back), or `xdpqual.maps/1`, every key and value in
/// hex, with `--raw`.
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
    pub entries: DumpedEntries,
    /// Map-in-map: which map each slot holds (the entries' values are the
    /// inner maps' positions in this list), e.g. `outer[0]`, whose own
    /// entries are listed as a map of that name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<InnerSlot<'a>>,
}

/// A map's entries in one of the two forms.
#[derive(Serialize)]
#[serde(untagged)]
pub enum DumpedEntries {
    /// Hex: `{"key": "...", "values": ["..." per CPU, or one]}`.
    Raw(Vec<MapEntry>),
    /// As a `--map` file takes them: `{"key": K, "value": V}`, with `V` a
    /// list of one value per CPU for per-CPU maps.
    Typed(Vec<TypedEntry>),
}

#[derive(Serialize)]
pub struct TypedEntry {
    pub key: serde_json::Value,
    pub value: serde_json::Value,
}

#[derive(Serialize)]
pub struct InnerSlot<'a> {
    #[serde(with = "crate::util::hex_bytes")]
    pub key: Vec<u8>,
    pub map: &'a str,
}

/// Which form a dump takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpForm {
    /// Typed from BTF where the map has types (hex where it has none).
    Typed,
    /// Hex everywhere (schema `xdpqual.maps/1`).
    Raw,
}

/// The engine's maps as a dump. `layouts` are the object's BTF map types
/// ([`object_map_layouts`]); they are used only for [`DumpForm::Typed`].
pub fn dump<'a>(engine: &'a Engine, layouts: &MapLayouts, form: DumpForm) -> MapDump<'a> {
    let set = engine.maps();
    MapDump {
        schema: match form {
            DumpForm::Typed => "xdpqual.maps/2",
            DumpForm::Raw => "xdpqual.maps/1",
        },
        maps: set
            .maps
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let raw = m.entries();
                let slots = raw
                    .iter()
                    .filter_map(|e| {
                        let inner = set.inner_of(i, &e.values[0])?;
                        Some(InnerSlot { key: e.key.clone(), map: &set.maps[inner].def.name })
                    })
                    .collect();
                // Map-in-map and PROG_ARRAY values are positions, not data
                // of a C type: they stay hex in either form.
                let typed_values =
                    !m.def.map_type.is_map_in_map() && m.def.map_type != MapType::ProgArray;
                let entries = match form {
                    DumpForm::Raw => DumpedEntries::Raw(raw),
                    DumpForm::Typed => {
                        let layout = layouts.get(&m.def.name);
                        let key_layout = layout.map(|l| &l.0);
                        let value_layout = layout.filter(|_| typed_values).map(|l| &l.1);
                        DumpedEntries::Typed(
                            raw.into_iter()
                                .map(|e| TypedEntry {
                                    key: decode_or_hex(&e.key, key_layout),
                                    value: if m.def.map_type.is_percpu() {
                                        serde_json::Value::Array(
                                            e.values
                                                .iter()
                                                .map(|v| decode_or_hex(v, value_layout))
                                                .collect(),
                                        )
                                    } else {
                                        decode_or_hex(&e.values[0], value_layout)
                                    },
                                })
                                .collect(),
                        )
                    }
                };
                DumpedMap { name: &m.def.name, map_type: m.def.map_type.name(), entries, slots }
            })
            .collect(),
    }
}

/// `bytes` typed by `layout`, or as hex when there is no layout or the
/// typed form would lose bytes (bitfields and padding are not named
/// fields): the typed form is used only when encoding it gives `bytes`
/// back, so a dump never says less than the hex does.
pub fn decode_or_hex(bytes: &[u8], layout: Option<&Layout>) -> serde_json::Value {
    let hex = || serde_json::Value::String(crate::util::hex(bytes));
    let Some(l) = layout.filter(|l| l.size() == bytes.len()) else { return hex() };
    let v = decode(bytes, l);
    match encode(&v, l, "value") {
        Ok(b) if b == bytes => v,
        _ => hex(),
    }
}

/// The inverse of [`encode`] for the shapes it takes: integers as numbers
/// (network order for `__be` types), arrays as lists, structs as objects of
/// their named fields, anything else as hex.
fn decode(bytes: &[u8], layout: &Layout) -> serde_json::Value {
    use serde_json::Value as V;
    match layout {
        Layout::Int { size, signed, big_endian } if *size <= 8 && bytes.len() == *size => {
            let mut b = [0u8; 8];
            b[..*size].copy_from_slice(bytes);
            if *big_endian {
                b[..*size].reverse();
            }
            let raw = u64::from_le_bytes(b);
            if *signed && *size > 0 {
                let shift = 64 - 8 * *size as u32;
                V::from(((raw << shift) as i64) >> shift)
            } else {
                V::from(raw)
            }
        }
        Layout::Array { elem, len, .. } => {
            let es = elem.size();
            V::Array(
                (0..*len)
                    .map(|i| bytes.get(i * es..(i + 1) * es).map_or(V::Null, |b| decode(b, elem)))
                    .collect(),
            )
        }
        Layout::Struct { members, .. } => V::Object(
            members
                .iter()
                .filter_map(|m| {
                    let b = bytes.get(m.offset..m.offset + m.layout.size())?;
                    Some((m.name.clone(), decode(b, &m.layout)))
                })
                .collect(),
        ),
        _ => V::String(crate::util::hex(bytes)),
    }
}

/// Writes the engine's maps to `path` (atomically), typed from the
/// object's BTF unless `form` is [`DumpForm::Raw`].
pub fn write_dump(engine: &Engine, obj: &Object, form: DumpForm, path: &Path) -> Result<()> {
    let layouts = match form {
        DumpForm::Typed => layouts_of(obj)?,
        DumpForm::Raw => MapLayouts::default(),
    };
    let json = serde_json::to_vec_pretty(&dump(engine, &layouts, form))?;
    crate::util::write_atomic(path, &json)
        .with_context(|| format!("writing map dump {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::btf_types::Member;
    use serde_json::json;

    fn int(size: usize, signed: bool, big_endian: bool) -> Layout {
        Layout::Int { size, signed, big_endian }
    }

    #[test]
    fn decoding_is_the_inverse_of_encoding() {
        // struct { __be16 port; __s8 delta; __u8 pad; } = 0x0050, -2, 0.
        let l = Layout::Struct {
            members: vec![
                Member { name: "port".into(), offset: 0, layout: int(2, false, true) },
                Member { name: "delta".into(), offset: 2, layout: int(1, true, false) },
                Member { name: "pad".into(), offset: 3, layout: int(1, false, false) },
            ],
            size: 4,
        };
        let b = [0x00, 0x50, 0xfe, 0x00];
        assert_eq!(decode_or_hex(&b, Some(&l)), json!({"port": 80, "delta": -2, "pad": 0}));
        let arr = Layout::Array { elem: Box::new(int(2, false, false)), len: 2, size: 4 };
        assert_eq!(decode_or_hex(&[1, 0, 2, 0], Some(&arr)), json!([1, 2]));
        assert_eq!(decode_or_hex(&[1, 2], None), json!("0102"));
    }

    /// Bytes no named field covers (padding, bitfields) that are not zero
    /// would be lost by the typed form: the whole value stays hex.
    #[test]
    fn unnamed_bytes_keep_the_value_hex() {
        let l = Layout::Struct {
            members: vec![Member { name: "a".into(), offset: 0, layout: int(1, false, false) }],
            size: 2,
        };
        assert_eq!(decode_or_hex(&[1, 0], Some(&l)), json!({"a": 1}));
        assert_eq!(decode_or_hex(&[1, 5], Some(&l)), json!("0105"));
        // A layout of another size is not this value's type.
        assert_eq!(decode_or_hex(&[1, 0, 0], Some(&l)), json!("010000"));
    }

    /// A `bpfeb` object: its BTF is big-endian, and the integers of a map
    /// file go into its maps big-endian. Expected bytes from the values:
    /// key 2 as a big-endian u32 is 00 00 00 02, value 1 is 00 00 00 01;
    /// the `bpfel` build of the same source gets 02 00 00 00 / 01 00 00 00.
    #[test]
    fn map_files_follow_the_object_byte_order() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = root.join("corpus/maps/redirect-tx_ports.json");
        let inits = [MapInit { map: "tx_ports".into(), file }];
        for (object, two, one) in [
            ("corpus/build/bpfeb/redirect.v3.bpfeb.o", [0, 0, 0, 2], [0, 0, 0, 1]),
            ("corpus/build/redirect.v3.o", [2, 0, 0, 0], [1, 0, 0, 0]),
        ] {
            let obj = crate::loader::load_object(&root.join(object)).unwrap();
            let layouts = layouts_of(&obj).unwrap();
            let (k, _) = &layouts["tx_ports"];
            assert_eq!(
                *k,
                int(4, false, obj.byte_order.is_big()),
                "{object}: a __u32 key in the object's order"
            );
            let mut engine =
                Engine::new(&obj, None, crate::engine::EngineConfig::default()).unwrap();
            apply(&mut engine, &obj, &inits).unwrap();
            let m = engine.maps_mut().by_name("tx_ports").unwrap();
            let e = m.sparse_entries();
            let slot2 =
                e.iter().find(|e| e.key == two).unwrap_or_else(|| panic!("{object}: {e:?}"));
            assert_eq!(slot2.values[0], one, "{object}");
        }
        // An inner map is named by its 4-byte key read in the same order.
        assert_eq!(inner_name("outer", &[0, 0, 0, 3], true), "outer[3]");
        assert_eq!(inner_name("outer", &[3, 0, 0, 0], false), "outer[3]");
    }
}
