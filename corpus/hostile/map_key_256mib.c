// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * map_key_256mib.c - ATTACK: a HASH whose key is 256 MiB.
 *
 * Expected: refused with E2BIG, as the kernel's htab_map_alloc_check does (key + value >= KMALLOC_MAX_SIZE - sizeof(struct htab_elem)).
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__uint(key_size, 268435456);
	__uint(value_size, 8);
	__uint(map_flags, 0);
} m SEC(".maps");

SEC("xdp")
int map_key_256mib(struct xdp_md *ctx)
{
	char key[8] = {};
	long *v = bpf_map_lookup_elem(&m, key);

	if (v)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
