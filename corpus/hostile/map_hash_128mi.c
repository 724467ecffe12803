// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * map_hash_128mi.c - ATTACK: a HASH of 2^27 entries with BPF_F_NO_PREALLOC, the largest power of
 * two the kernel accepts (kernel/bpf/hashtab.c htab_map_alloc refuses more
 * than U32_MAX / sizeof(struct bucket) buckets with E2BIG, so 2^28 is
 * refused); the kernel allocates its 2 GiB bucket array at once and the
 * elements one by one.
 *
 * Expected: either refused at creation under the process-wide map memory cap,
 * naming it, or run with memory allocated lazily (each lookup misses:
 * XDP_PASS); never gigabytes of memory.
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 134217728);
	__uint(key_size, 8);
	__uint(value_size, 8);
	__uint(map_flags, 1);
} m SEC(".maps");

SEC("xdp")
int map_hash_128mi(struct xdp_md *ctx)
{
	char key[8] = {};
	long *v = bpf_map_lookup_elem(&m, key);

	if (v)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
