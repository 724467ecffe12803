//! aya-obj map definitions to [`MapDef`]s, in a fixed order.

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
    }
}
