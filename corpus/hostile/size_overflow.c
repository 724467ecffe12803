// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * size_overflow.c - ATTACK: sizes and offsets near 2^32 and 2^64 in every
 * helper that takes one, with valid pointers, so that only the size is
 * wrong.
 *
 * Per packet, by SELECT (hostile.h), one call:
 *   0: ringbuf_reserve(rb, 2^64 - 8, 0)      1: ringbuf_reserve(rb, 2^32 - 8, 0)
 *   2: ringbuf_output(rb, stack, 2^64 - 8)   3: perf_event_output(.., stack, 2^64 - 8)
 *   4: csum_diff(stack, 2^32 - 4, stack, 4)  5: csum_diff(stack, 4, stack, 2^32 - 4)
 *   6: xdp_load_bytes(ctx, 0, stack, 2^32-1) 7: xdp_store_bytes(ctx, 2^32-16, stack, 32)
 *   8: xdp_load_bytes(ctx, 2^32-8, stack, 16)9: xdp_adjust_head(ctx, INT_MIN)
 *  10: xdp_adjust_tail(ctx, INT_MAX)        11: xdp_adjust_meta(ctx, INT_MIN)
 *  12: trace_printk(fmt, 2^32 - 1)          13: fib_lookup(ctx, stack, 2^31, 0)
 *  14: bpf_loop(2^32 - 1, cb, 0, 0)         15: xdp_adjust_tail(ctx, INT_MIN)
 *  16: xdp_adjust_head(ctx, INT_MAX)        17: ringbuf_reserve(rb, 0, 0)
 *  other: XDP_PASS.
 * Expected on the engine: the kernel's error return (-EINVAL, -E2BIG,
 * -EFAULT, NULL) or a fault, never a panic, overflow or huge allocation.
 */
#include "hostile.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

static long cb(__u32 i, void *c)
{
	return 0;
}

SEC("xdp")
int size_overflow(struct xdp_md *ctx)
{
	char buf[64] = {};
	struct bpf_fib_lookup fib = {};
	char fmt[] = "x\n";
	volatile __u64 h64 = HUGE64;
	volatile __u32 h32 = 0xfffffff8;
	int s = selector(ctx);

	switch (s) {
	case 0: {
		void *p = bpf_ringbuf_reserve(&rb, h64, 0);
		if (p)
			bpf_ringbuf_discard(p, 0);
		break;
	}
	case 1: {
		void *p = bpf_ringbuf_reserve(&rb, h32, 0);
		if (p)
			bpf_ringbuf_discard(p, 0);
		break;
	}
	case 2: bpf_ringbuf_output(&rb, buf, h64, 0); break;
	case 3: bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, buf, h64); break;
	case 4: bpf_csum_diff((void *)buf, 0xfffffffc, (void *)buf, 4, 0); break;
	case 5: bpf_csum_diff((void *)buf, 4, (void *)buf, 0xfffffffc, 0); break;
	case 6: bpf_xdp_load_bytes(ctx, 0, buf, 0xffffffff); break;
	case 7: bpf_xdp_store_bytes(ctx, 0xfffffff0, buf, 32); break;
	case 8: bpf_xdp_load_bytes(ctx, 0xfffffff8, buf, 16); break;
	case 9: bpf_xdp_adjust_head(ctx, -2147483647 - 1); break;
	case 10: bpf_xdp_adjust_tail(ctx, 2147483647); break;
	case 11: bpf_xdp_adjust_meta(ctx, -2147483647 - 1); break;
	case 12: bpf_trace_printk(fmt, 0xffffffff); break;
	case 13: bpf_fib_lookup(ctx, &fib, 0x80000000, 0); break;
	case 14: bpf_loop(0xffffffff, cb, 0, 0); break;
	case 15: bpf_xdp_adjust_tail(ctx, -2147483647 - 1); break;
	case 16: bpf_xdp_adjust_head(ctx, 2147483647); break;
	case 17: {
		void *p = bpf_ringbuf_reserve(&rb, 0, 0);
		if (p)
			bpf_ringbuf_submit(p, 0);
		break;
	}
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
