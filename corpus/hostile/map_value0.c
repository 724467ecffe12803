// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * map_value0.c - ATTACK: an ARRAY whose values are 0 bytes.
 *
 * Expected: refused with EINVAL, as the kernel's array_map_alloc_check does (value_size == 0).
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__uint(key_size, 4);
	__uint(value_size, 0);
	__uint(map_flags, 0);
} m SEC(".maps");

SEC("xdp")
int map_value0(struct xdp_md *ctx)
{
	char key[8] = {};
	long *v = bpf_map_lookup_elem(&m, key);

	if (v)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
