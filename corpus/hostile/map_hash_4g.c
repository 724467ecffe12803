// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * map_hash_4g.c - ATTACK: a preallocated HASH of 2^32 - 1 entries (a 32 GiB table if allocated eagerly).
 *
 * Expected: refused before allocating: the process-wide map memory cap, with ENOMEM as the kernel gives when preallocation fails.
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 0xffffffff);
	__uint(key_size, 8);
	__uint(value_size, 8);
	__uint(map_flags, 0);
} m SEC(".maps");

SEC("xdp")
int map_hash_4g(struct xdp_md *ctx)
{
	char key[8] = {};
	long *v = bpf_map_lookup_elem(&m, key);

	if (v)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
