//! Map type numbers and names: UAPI `enum bpf_map_type`
//! (include/uapi/linux/bpf.h), in the lower-case form bpftool prints.

pub const HASH: u32 = 1;
pub const ARRAY: u32 = 2;
pub const PROG_ARRAY: u32 = 3;
pub const PERF_EVENT_ARRAY: u32 = 4;

/// `NAMES[t]` is the name of map type `t`, up to `cgrp_storage` (32).
const NAMES: [&str; 33] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
];

/// `hash` for 1; `type 99` for a number the UAPI list lacks.
pub fn name(t: u32) -> String {
    known_name(t).map(str::to_string).unwrap_or_else(|| format!("type {t}"))
}

/// `hash` for 1; `None` for a number the UAPI list lacks.
pub fn known_name(t: u32) -> Option<&'static str> {
    NAMES.get(t as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_uapi_numbering() {
        // Spot checks against include/uapi/linux/bpf.h's enum order.
        assert_eq!(name(HASH), "hash");
        assert_eq!(name(PERF_EVENT_ARRAY), "perf_event_array");
        assert_eq!(name(12), "array_of_maps");
        assert_eq!(name(27), "ringbuf");
        assert_eq!(name(32), "cgrp_storage");
        assert_eq!(name(33), "type 33");
    }
}
