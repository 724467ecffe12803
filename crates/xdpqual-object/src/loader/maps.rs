//! aya-obj map definitions to [`MapDef`]s, in a fixed order.

use super::btf_types::ValuesDecl;
use super::error::LoadError;
use crate::{MapDef, MapOrigin, MapType};
use aya_obj::{EbpfSectionKind, Map};

/// `BPF_F_RDONLY_PROG` (uapi bpf.h): aya-obj marks `.rodata` with it, as
/// libbpf does, so programs cannot write there.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// The object's maps sorted by name. A map's position in this list is its
/// number in relocated `lddw` instructions (see `program.rs`).
pub(crate) fn sorted<'a>(maps: impl Iterator<Item = (&'a String, &'a Map)>) -> Vec<(String, Map)> {
    let mut v: Vec<(String, Map)> = maps.map(|(n, m)| (n.clone(), m.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub(crate) fn to_def(name: &str, map: &Map) -> MapDef {
    let origin = match map.section_kind() {
        EbpfSectionKind::BtfMaps => MapOrigin::BtfMaps,
        EbpfSectionKind::Data | EbpfSectionKind::Rodata | EbpfSectionKind::Bss => {
            MapOrigin::GlobalData
        }
        _ => MapOrigin::Legacy,
    };
    let global = origin == MapOrigin::GlobalData;
    MapDef {
        name: name.to_string(),
        map_type: MapType::from_uapi(map.map_type()),
        key_size: map.key_size(),
        value_size: map.value_size(),
        max_entries: map.max_entries(),
        flags: map.map_flags(),
        origin,
        initial_data: global.then(|| map.data().to_vec()),
        read_only: map.section_kind() == EbpfSectionKind::Rodata
            || map.map_flags() & BPF_F_RDONLY_PROG != 0,
        inner: None,
        init_slots: Vec::new(),
    }
}

/// Inner-map templates and statically initialised slots of map-in-map and
/// PROG_ARRAY maps, as libbpf reads them (tools/lib/bpf/libbpf.c):
/// - BTF-defined maps: the `values` member (`parse_btf_map_def`) and the
///   relocations in `.rel.maps` that fill its slots
///   (`bpf_object__collect_map_relos`);
/// - legacy `maps` definitions, by the layout their size shows
///   ([`legacy_templates`]): the samples' `inner_map_idx` or iproute2's
///   `inner_id` and `inner_idx`.
///
/// A map-in-map without a template cannot be created (the kernel's
/// `bpf_map_meta_alloc` needs an inner map fd), so it is refused here.
pub(crate) fn attach_values(
    file: &object::File<'_>,
    btf: Option<&[u8]>,
    defs: &mut [MapDef],
    path: &std::path::Path,
) -> Result<(), LoadError> {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
    let err = |map: &str, reason: String| LoadError::InnerMap {
        path: path.to_path_buf(),
        map: map.to_string(),
        reason,
    };
    // A PROG_ARRAY may declare `values` too (static initialisation, and
    // the value size libbpf fills in).
    let wants = defs.iter().any(|d| d.map_type.is_map_in_map() || d.map_type == MapType::ProgArray);
    let maps_sec = file.section_by_name(".maps");
    let has_relocs = maps_sec.as_ref().is_some_and(|s| s.relocations().next().is_some());
    if !wants && !has_relocs {
        return Ok(());
    }
    // BTF-defined maps: templates from `values`.
    let values = match btf {
        Some(b) => crate::loader::btf_types::values_maps(b)
            .map_err(|reason| LoadError::Btf { path: path.to_path_buf(), reason })?,
        None => Vec::new(),
    };
    for v in &values {
        let Some(d) = defs.iter_mut().find(|d| d.name == v.map) else { continue };
        // libbpf parse_btf_map_def: a map with `values` holds 4-byte map or
        // program references, whatever size it left unset; any other size
        // it declared is a conflict.
        let fits = matches!(
            (&v.decl, d.map_type),
            (ValuesDecl::Maps(_), t) if t.is_map_in_map()
        ) || matches!((&v.decl, d.map_type), (ValuesDecl::Programs, MapType::ProgArray));
        if fits {
            if d.value_size != 0 && d.value_size != 4 {
                return Err(err(
                    &d.name,
                    format!(
                        "declares value_size {} but its 'values' member holds 4-byte \
                         references (libbpf: conflicting value size)",
                        d.value_size
                    ),
                ));
            }
            d.value_size = 4;
        }
        match &v.decl {
            ValuesDecl::Maps(inner) if d.map_type.is_map_in_map() => {
                d.inner = Some(Box::new(MapDef {
                    name: format!("{}.inner", d.name),
                    map_type: MapType::from_uapi(inner.map_type),
                    key_size: inner.key_size,
                    value_size: inner.value_size,
                    max_entries: inner.max_entries,
                    flags: inner.map_flags,
                    origin: MapOrigin::BtfMaps,
                    initial_data: None,
                    read_only: false,
                    inner: None,
                    init_slots: Vec::new(),
                }));
            }
            ValuesDecl::Programs if d.map_type == MapType::ProgArray => {}
            decl => {
                return Err(err(
                    &d.name,
                    format!(
                        "its 'values' member declares {} but the map is a {}; libbpf accepts \
                         'values' only on ARRAY_OF_MAPS/HASH_OF_MAPS (an array of map \
                         definitions) and PROG_ARRAY (an array of functions)",
                        match decl {
                            ValuesDecl::Maps(_) => "inner maps",
                            ValuesDecl::Programs => "programs",
                        },
                        d.map_type.name()
                    ),
                ))
            }
        }
    }
    legacy_templates(file, defs, &err)?;
    if let Some(d) = defs.iter().find(|d| d.map_type.is_map_in_map() && d.inner.is_none()) {
        return Err(err(
            &d.name,
            format!(
                "the {} has no inner-map template: declare one with __array(values, struct {{ \
                 __uint(type, ...); __type(key, ...); __type(value, ...); ... }}) in the BTF map \
                 definition, as libbpf needs to create the map (the kernel's map_create takes the \
                 template as inner_map_fd, kernel/bpf/map_in_map.c bpf_map_meta_alloc)",
                d.map_type.name()
            ),
        ));
    }
    // Static slots: relocations inside a map variable's `values`.
    let Some(sec) = maps_sec else { return Ok(()) };
    let sec_index = sec.index();
    let vars: Vec<(String, u64, u64)> = file
        .symbols()
        .filter(|s| s.section_index() == Some(sec_index) && s.size() > 0)
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.address(), s.size())))
        .collect();
    for (off, rel) in sec.relocations() {
        let object::RelocationTarget::Symbol(si) = rel.target() else {
            return Err(LoadError::Link {
                path: path.to_path_buf(),
                reason: format!(".maps relocation at offset {off} does not name a symbol"),
            });
        };
        let target = file
            .symbol_by_index(si)
            .ok()
            .and_then(|s| s.name().ok().map(str::to_string))
            .unwrap_or_else(|| "<?>".into());
        let Some((map, start, _)) =
            vars.iter().find(|(_, a, size)| *a <= off && off + 8 <= a + size)
        else {
            return Err(LoadError::Link {
                path: path.to_path_buf(),
                reason: format!(".maps relocation to '{target}' at offset {off} is in no map"),
            });
        };
        let Some(v) = values.iter().find(|v| &v.map == map) else {
            return Err(err(
                map,
                format!(
                    "a relocation to '{target}' at offset {off} lies outside a 'values' member"
                ),
            ));
        };
        let rel_off = off - start;
        if rel_off < v.values_offset as u64 || !(rel_off - v.values_offset as u64).is_multiple_of(8)
        {
            return Err(err(
                map,
                format!("relocation to '{target}' at offset {off} is not on a slot of 'values'"),
            ));
        }
        let slot = ((rel_off - v.values_offset as u64) / 8) as u32;
        let d = defs.iter_mut().find(|d| &d.name == map).expect("values maps are defs");
        if d.map_type == MapType::HashOfMaps && d.key_size != 4 {
            return Err(err(
                map,
                format!(
                    "a statically initialised HASH_OF_MAPS needs key_size 4 (libbpf), has {}",
                    d.key_size
                ),
            ));
        }
        d.init_slots.retain(|(s, _)| *s != slot);
        d.init_slots.push((slot, target));
    }
    for d in defs.iter_mut() {
        d.init_slots.sort();
    }
    let names: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
    for d in defs.iter().filter(|d| d.map_type.is_map_in_map()) {
        if let Some((slot, t)) = d.init_slots.iter().find(|(_, t)| !names.contains(t)) {
            return Err(err(
                &d.name,
                format!("slot {slot} is initialised with '{t}', which is not a map of the object"),
            ));
        }
    }
    Ok(())
}

/// Inner-map templates and static slots of a legacy `maps` section, read
/// the way the loader its layout was written for reads them (see
/// [`LegacyLayout`]):
/// - the samples' `inner_map_idx` names the template by its position in
///   the section (samples/bpf/bpf_load.c `load_maps`);
/// - iproute2's `inner_id` names it by its `id`, and any map with an `id`,
///   no `inner_id` and an `inner_idx` other than -1 is put into slot
///   `inner_idx` of every outer map whose `inner_id` is its `id`
///   (`bpf_map_attach` and `bpf_maps_attach_all`, iproute2
///   lib/bpf_legacy.c);
/// - libbpf's 5-word definition has neither, so such a map-in-map is left
///   without a template (and refused by the caller).
fn legacy_templates(
    file: &object::File<'_>,
    defs: &mut [MapDef],
    err: &dyn Fn(&str, String) -> LoadError,
) -> Result<(), LoadError> {
    use super::legacy::{definitions, LegacyLayout};
    let Some((layout, legacy)) = definitions(file) else { return Ok(()) };
    let def_of = |name: &str| defs.iter().find(|d| d.name == name).cloned();
    let mut templates: Vec<(String, MapDef)> = Vec::new();
    let mut slots: Vec<(String, u32, String)> = Vec::new();
    for (pos, outer) in legacy.iter().enumerate() {
        let Some(outer_def) = def_of(&outer.name) else { continue };
        if !outer_def.map_type.is_map_in_map() {
            continue;
        }
        let kind = outer_def.map_type.name();
        let template =
            match layout {
                LegacyLayout::Libbpf => continue,
                LegacyLayout::SamplesBpfLoad => {
                    let idx = outer.words[5] as usize;
                    match legacy.get(idx) {
                        Some(t) if idx != pos => t,
                        found => {
                            return Err(err(
                                &outer.name,
                                format!(
                                "a legacy {kind} definition names map #{idx} of its section as \
                                 inner_map_idx (the word after map_flags), but the section has \
                                 {} maps{}",
                                legacy.len(),
                                if found.is_some() { " and that one is the map itself" } else { "" }
                            ),
                            ))
                        }
                    }
                }
                LegacyLayout::Iproute2 => {
                    let inner_id = outer.words[7];
                    if inner_id == 0 {
                        return Err(err(
                            &outer.name,
                            format!(
                            "an iproute2 {kind} definition (struct bpf_elf_map) needs inner_id, \
                             the id of the map that serves as its template; it is 0 (iproute2 \
                             refuses this too: \"no inner map ID defined\")"
                        ),
                        ));
                    }
                    match legacy.iter().find(|t| t.words[5] == inner_id) {
                        Some(t) if t.name != outer.name => t,
                        found => {
                            return Err(err(
                                &outer.name,
                                format!(
                                "an iproute2 {kind} definition names inner_id {inner_id}, but {}",
                                if found.is_some() {
                                    "that is the map's own id"
                                } else {
                                    "no map of the section has that id"
                                }
                            ),
                            ))
                        }
                    }
                }
            };
        let Some(mut inner) = def_of(&template.name) else { continue };
        if inner.map_type.is_map_in_map() {
            return Err(err(
                &outer.name,
                "its inner map is itself a map-in-map (the kernel allows one level)".into(),
            ));
        }
        inner.name = format!("{}.inner", outer.name);
        templates.push((outer.name.clone(), inner));
        if layout == LegacyLayout::Iproute2 {
            let inner_id = outer.words[7];
            for m in &legacy {
                let (id, m_inner_id, inner_idx) = (m.words[5], m.words[7], m.words[8]);
                if id == inner_id && m_inner_id == 0 && inner_idx != u32::MAX {
                    slots.push((outer.name.clone(), inner_idx, m.name.clone()));
                }
            }
        }
    }
    for (outer, inner) in templates {
        if let Some(d) = defs.iter_mut().find(|d| d.name == outer) {
            d.inner = Some(Box::new(inner));
        }
    }
    for (outer, slot, map) in slots {
        let d = defs.iter_mut().find(|d| d.name == outer).expect("outer maps are defs");
        if d.map_type == MapType::HashOfMaps && d.key_size != 4 {
            return Err(err(
                &outer,
                format!(
                    "iproute2 fills slot {slot} of this HASH_OF_MAPS with '{map}' using a 4-byte \
                     key (inner_idx), but its key_size is {}",
                    d.key_size
                ),
            ));
        }
        d.init_slots.retain(|(s, _)| *s != slot);
        d.init_slots.push((slot, map));
        d.init_slots.sort();
    }
    Ok(())
}
