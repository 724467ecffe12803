// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * helper_args.c - ATTACK: wild pointers in every pointer argument of every
 * helper the engine models.
 *
 * Per packet, by SELECT (hostile.h), one call:
 *   0: map_lookup_elem(WILD map, key)        1: map_lookup_elem(map, WILD key)
 *   2: map_update_elem(map, key, WILD value) 3: map_delete_elem(map, WILD key)
 *   4: trace_printk(WILD fmt, 8)             5: perf_event_output(ctx, map, 0, WILD, 8)
 *   6: csum_diff(WILD, 4, 0, 0, 0)           7: csum_diff(0, 0, WILD, 4, 0)
 *   8: xdp_load_bytes(ctx, 0, WILD, 8)       9: xdp_store_bytes(ctx, 0, WILD, 8)
 *  10: ringbuf_output(rb, WILD, 8, 0)       11: ringbuf_submit(WILD, 0)
 *  12: ringbuf_discard(stack pointer, 0)    13: redirect_map(WILD map, 0, 0)
 *  14: fib_lookup(ctx, WILD, 64, 0)         15: spin_lock(WILD)
 *  16: bpf_loop(1, WILD callback, 0, 0)     17: tail_call(ctx, WILD map, 0)
 *  18: map_lookup_elem(ctx as map, key)     19: xdp_adjust_head(WILD ctx, 0)
 *  20: ringbuf_reserve(WILD map, 8, 0)      21: perf_event_output(WILD ctx, map, 0, data, 8)
 *  other: XDP_PASS.
 * Expected on the engine: a fault naming the helper's argument, or the
 * kernel's error return, for each; never host memory. The kernel's verifier
 * refuses the program.
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

#define W ((void *)WILD)

SEC("xdp")
int helper_args(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 val = 1;
	int s = selector(ctx);

	switch (s) {
	case 0: bpf_map_lookup_elem(W, &key); break;
	case 1: bpf_map_lookup_elem(&arr, W); break;
	case 2: bpf_map_update_elem(&arr, &key, W, 0); break;
	case 3: bpf_map_delete_elem(&arr, W); break;
	case 4: bpf_trace_printk(W, 8); break;
	case 5: bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, W, 8); break;
	case 6: bpf_csum_diff(W, 4, 0, 0, 0); break;
	case 7: bpf_csum_diff(0, 0, W, 4, 0); break;
	case 8: bpf_xdp_load_bytes(ctx, 0, W, 8); break;
	case 9: bpf_xdp_store_bytes(ctx, 0, W, 8); break;
	case 10: bpf_ringbuf_output(&rb, W, 8, 0); break;
	case 11: bpf_ringbuf_submit(W, 0); break;
	case 12: bpf_ringbuf_discard(&val, 0); break;
	case 13: bpf_redirect_map(W, 0, 0); break;
	case 14: bpf_fib_lookup(ctx, W, 64, 0); break;
	case 15: bpf_spin_lock(W); break;
	case 16: bpf_loop(1, W, 0, 0); break;
	case 17: bpf_tail_call(ctx, W, 0); break;
	case 18: bpf_map_lookup_elem(ctx, &key); break;
	case 19: bpf_xdp_adjust_head(W, 0); break;
	case 20: bpf_ringbuf_reserve(W, 8, 0); break;
	case 21: bpf_perf_event_output(W, &perf, BPF_F_CURRENT_CPU, &val, 8); break;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
