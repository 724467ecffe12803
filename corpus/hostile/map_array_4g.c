// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * map_array_4g.c - ATTACK: an ARRAY of 2^32 - 1 entries of 8 bytes (32 GiB if allocated eagerly).
 *
 * Expected: refused before anything is allocated: the kernel's array_map_alloc_check limits, or the process-wide map memory cap (docs/design.md), with the errno the kernel gives (ENOMEM / E2BIG).
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 0xffffffff);
	__uint(key_size, 4);
	__uint(value_size, 8);
	__uint(map_flags, 0);
} m SEC(".maps");

SEC("xdp")
int map_array_4g(struct xdp_md *ctx)
{
	char key[8] = {};
	long *v = bpf_map_lookup_elem(&m, key);

	if (v)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
