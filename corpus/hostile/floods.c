// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * floods.c - ATTACK: exhaust memory or time through helpers, not
 * instructions.
 *
 * Per packet, by SELECT (hostile.h):
 *   0: perf_event_output of a 1 MiB record, 2^20 times (1 TiB of events);
 *   1: ringbuf_output of 2 KiB records into a 4 KiB ring, 2^20 times;
 *   2: trace_printk with a width of 99999999999, 2^20 times;
 *   3: hash lookups with a 1 MiB key, 2^20 times (1 TiB hashed);
 *   4: csum_diff over 256 stack bytes, 2^23 times;
 *   5: map_update_elem of fresh 1 MiB keys, 2^20 times (a map that grows);
 *   other: XDP_PASS.
 * Each loop is a bpf_loop of few instructions, so an instruction budget alone
 * would allow hours or terabytes. Expected on the engine: a fault that names
 * the resource that ran out, well inside the memory and time limits.
 */
#include "hostile.h"

#define BIG (1 << 20)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, BIG);
} big SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__uint(key_size, BIG);
	__uint(value_size, 8);
	/* Allocated per element, as the kernel accepts it: preallocated, its
	 * 2^20 elements of 1 MiB would be refused at creation (ENOMEM) and no
	 * flood below would ever run. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} bigkey SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct state {
	struct xdp_md *ctx;
	char *buf;
};

static long perf_cb(__u32 i, struct state *st)
{
	bpf_perf_event_output(st->ctx, &perf, BPF_F_CURRENT_CPU, st->buf, BIG);
	return 0;
}

static long ring_cb(__u32 i, struct state *st)
{
	bpf_ringbuf_output(&rb, st->buf, 2048, 0);
	return 0;
}

static long printk_cb(__u32 i, struct state *st)
{
	char fmt[] = "%99999999999d\n";

	bpf_trace_printk(fmt, sizeof(fmt), i);
	return 0;
}

static long hash_cb(__u32 i, struct state *st)
{
	bpf_map_lookup_elem(&bigkey, st->buf);
	return 0;
}

static long csum_cb(__u32 i, struct state *st)
{
	char b[256] = {};

	bpf_csum_diff((void *)b, 0, (void *)b, 256, i);
	return 0;
}

static long grow_cb(__u32 i, struct state *st)
{
	__u64 v = i;

	*(__u32 *)st->buf = i;
	bpf_map_update_elem(&bigkey, st->buf, &v, 0);
	return 0;
}

SEC("xdp")
int floods(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct state st = { .ctx = ctx };
	int s = selector(ctx);

	st.buf = bpf_map_lookup_elem(&big, &zero);
	if (!st.buf)
		return XDP_ABORTED;
	switch (s) {
	case 0: bpf_loop(BIG, perf_cb, &st, 0); break;
	case 1: bpf_loop(BIG, ring_cb, &st, 0); break;
	case 2: bpf_loop(BIG, printk_cb, &st, 0); break;
	case 3: bpf_loop(BIG, hash_cb, &st, 0); break;
	case 4: bpf_loop(1 << 23, csum_cb, &st, 0); break;
	case 5: bpf_loop(BIG, grow_cb, &st, 0); break;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
