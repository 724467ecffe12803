// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * iproute2.c - a map-in-map declared the way programs loaded with
 * `ip link set dev D xdp obj F` or `tc filter ... bpf obj F` declare them:
 * iproute2's struct bpf_elf_map (include/bpf_elf.h) in SEC("maps"). The
 * outer map names its template by `inner_id`; a map with that `id`, no
 * inner_id and an inner_idx other than -1 is put into that slot of the
 * outer map at load (iproute2 lib/bpf_legacy.c, bpf_maps_attach_all).
 * For cli/tests/map_in_map.rs.
 *
 * MAPS (section order):
 *   inner  ARRAY (key u32, value u64, max 4), id 7, inner_idx 0
 *          -> placed in outer[0];
 *   spare  ARRAY (key u32, value u64, max 4), id 0 -> placed nowhere;
 *   outer  ARRAY_OF_MAPS (max 2), inner_id INNER_ID (7), inner_idx -1.
 * PROGRAM "xdp" (xdp_iproute2): m = outer[0]; if present, m[0] += 1 and
 *   XDP_PASS; otherwise XDP_DROP.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* -DINNER_ID=N for the bad-input cases (0: none, 9: no map has it). */
#ifndef INNER_ID
#define INNER_ID 7
#endif

struct bpf_elf_map {
	unsigned int type, size_key, size_value, max_elem, flags;
	unsigned int id, pinning, inner_id, inner_idx;
};

struct bpf_elf_map SEC("maps") inner = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8, .max_elem = 4,
	.id = 7, .inner_idx = 0,
};

struct bpf_elf_map SEC("maps") spare = {
	.type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8, .max_elem = 4,
};

struct bpf_elf_map SEC("maps") outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS, .size_key = 4, .size_value = 4, .max_elem = 2,
	.inner_id = INNER_ID, .inner_idx = (unsigned int)-1,
};

SEC("xdp")
int xdp_iproute2(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v;
	void *m = bpf_map_lookup_elem(&outer, &k);

	if (!m)
		return XDP_DROP;
	v = bpf_map_lookup_elem(m, &k);
	if (v)
		*v += 1;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
