// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * legacy.c - a map-in-map from a legacy `maps` section, as the kernel's
 * old samples (samples/bpf/bpf_load.c) declared them: the word after
 * map_flags is inner_map_idx, the position in the section of the map
 * that serves as the inner-map template. For harness/tests/map_in_map.rs.
 *
 * MAPS (section order): inner (ARRAY, key u32, value u64, max 4),
 *   outer (ARRAY_OF_MAPS, max 2, inner_map_idx 0).
 * PROGRAM "xdp" (xdp_legacy): m = outer[0]; if present, m[0] += 1.
 *   Every packet -> XDP_PASS.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* -DINNER_IDX=N for the bad-input cases (1: the map itself, 5: none). */
#ifndef INNER_IDX
#define INNER_IDX 0
#endif

struct legacy_map_def {
	unsigned int type, key_size, value_size, max_entries, map_flags;
	unsigned int inner_map_idx, numa_node;
};

struct legacy_map_def SEC("maps") inner = {
	.type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 4,
};

struct legacy_map_def SEC("maps") outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS, .key_size = 4, .value_size = 4, .max_entries = 2,
	.inner_map_idx = INNER_IDX,
};

SEC("xdp")
int xdp_legacy(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v;
	void *m = bpf_map_lookup_elem(&outer, &k);

	if (m) {
		v = bpf_map_lookup_elem(m, &k);
		if (v)
			*v += 1;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
