//! Map rules: kernel offload core (kernel/bpf/offload.c), nfp driver
//! (nfp/bpf/offload.c nfp_bpf_map_alloc) with FW limits, netdevsim, hXDP.

use super::Sink;
use crate::opcode::map_type;
use crate::profile::{Family, Profile};
use crate::program::ProgramSpec;
use crate::report::Severity::*;
use crate::rules::RuleId;

fn round8(x: u32) -> u64 {
    (x as u64).div_ceil(8) * 8
}

pub(super) fn check(prog: &ProgramSpec, profile: &Profile, sink: &mut Sink) {
    let m = &profile.maps;
    let fam = profile.profile.family;
    let mut offloaded = 0u32;
    let mut total_entries = 0u64;
    for map in &prog.maps {
        let what = format!(
            "map `{}` ({}, key {} B, value {} B, {} entries, flags {:#x})",
            map.name,
            map_type::name(map.map_type.uapi()),
            map.key_size,
            map.value_size,
            map.max_entries,
            map.flags
        );
        if map.origin == crate::program::MapOrigin::GlobalData {
            if !m.global_data.value {
                let rule = match fam {
                    Family::Nfp => RuleId::P12,
                    Family::Netdevsim => RuleId::NsimM3,
                    Family::Hxdp => RuleId::HxdpM1,
                };
                sink.add(
                    rule,
                    Violates,
                    "global data is not supported for offload".into(),
                    what,
                    None,
                );
            }
            continue;
        }
        let host = m.host_types.value.contains(&map.map_type.uapi());
        if !m.offloadable_types.value.contains(&map.map_type.uapi()) {
            if !host {
                let (rule, msg) = match fam {
                    Family::Nfp => (RuleId::P1, "-EINVAL (map type cannot be offloaded); as a host map: offload device mismatch between prog and map"),
                    Family::Netdevsim => (RuleId::NsimM1, "netdevsim: only ARRAY and HASH maps can be offloaded"),
                    Family::Hxdp => (RuleId::HxdpM1, "map type not assumed available on hXDP"),
                };
                sink.add(rule, Violates, msg.into(), what, None);
            }
            continue;
        }
        offloaded += 1;
        // nfp_bpf_map_alloc checks each map against what is left on the device.
        if let Some(max) = &m.max_total_entries {
            let left = max.value.saturating_sub(total_entries);
            if map.max_entries as u64 > left {
                sink.add(
                    RuleId::P7,
                    Violates,
                    format!("map with too many elements: {}, left: {left}", map.max_entries),
                    format!("{what}; FW max_elems {} over all maps", max.value),
                    None,
                );
            } else {
                total_entries += map.max_entries as u64;
            }
        }
        if !m.device_types.value.contains(&map.map_type.uapi()) && fam == Family::Nfp {
            sink.add(RuleId::P5, Violates, "map type not supported".into(), what.clone(), None);
        }
        if m.flags_must_be_zero.value && map.flags != 0 {
            let (rule, msg) = match fam {
                Family::Netdevsim => (RuleId::NsimM3, "-EINVAL (netdevsim: map_flags must be 0)"),
                _ => (RuleId::P4, "map flags are not supported"),
            };
            sink.add(rule, Violates, msg.into(), what.clone(), None);
        }
        if let Some(max) = &m.max_entries_per_map {
            if map.max_entries > max.value {
                sink.add(
                    RuleId::NsimM2,
                    Violates,
                    "-ENOMEM (netdevsim: more than NSIM_BPF_MAX_KEYS entries)".into(),
                    format!("{what}: limit {}", max.value),
                    None,
                );
            }
        }
        if let Some(max) = &m.max_elem_size {
            let elem = round8(map.key_size) + round8(map.value_size);
            if elem > max.value as u64 {
                sink.add(
                    RuleId::P8,
                    Violates,
                    format!(
                        "map elements too large: {elem}, FW max element size (key+value): {}",
                        max.value
                    ),
                    what.clone(),
                    None,
                );
            }
        }
        if let Some(max) = &m.max_key_size {
            if map.key_size > max.value {
                sink.add(
                    RuleId::P8,
                    Violates,
                    format!("map key size {}, FW max is {}", map.key_size, max.value),
                    what.clone(),
                    None,
                );
            }
        }
        if let Some(max) = &m.max_value_size {
            if map.value_size > max.value {
                sink.add(
                    RuleId::P8,
                    Violates,
                    format!("map value size {}, FW max is {}", map.value_size, max.value),
                    what.clone(),
                    None,
                );
            }
        }
    }
    if let Some(max) = &m.max_maps {
        if offloaded > max.value {
            sink.add(
                RuleId::P6,
                Violates,
                "too many maps for a device".into(),
                format!("{offloaded} offloaded maps, FW max_maps {}", max.value),
                None,
            );
        }
    }
}
