// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * map_hash_256mi.c - ATTACK: a HASH of 2^28 entries with BPF_F_NO_PREALLOC (the kernel accepts it and allocates per element).
 *
 * Expected: accepted and allocated lazily: each packet's lookup misses (XDP_PASS), and the process stays far below the memory limit.
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 268435456);
	__uint(key_size, 8);
	__uint(value_size, 8);
	__uint(map_flags, 1);
} m SEC(".maps");

SEC("xdp")
int map_hash_256mi(struct xdp_md *ctx)
{
	char key[8] = {};
	long *v = bpf_map_lookup_elem(&m, key);

	if (v)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
