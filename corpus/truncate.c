// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * truncate.c - cut every frame longer than 256 bytes down to 256 bytes with
 * bpf_xdp_adjust_tail and bounce it back with XDP_TX (a header sampler).
 *
 * SHOWS: shrinking the packet at the tail (negative adjust_tail delta) and
 * re-reading data_end afterwards. No maps. No header parsing at all.
 *
 * PROGRAM: section "xdp", function xdp_truncate. L = frame length
 * (data_end - data; this is not a frags program, so the whole frame is
 * linear).
 *   1. L <= 256                                   -> XDP_PASS, unchanged.
 *   2. bpf_xdp_adjust_tail(ctx, 256 - L); if it fails          -> XDP_DROP.
 *      (It cannot fail for 256 - L < 0 with a 256-byte result: the kernel
 *      only refuses results shorter than ETH_HLEN; see net/core/filter.c
 *      bpf_xdp_adjust_tail.)
 *   3. The frame is now exactly its first 256 bytes, contents unchanged
 *                                                              -> XDP_TX.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SNAP_LEN 256

SEC("xdp")
int xdp_truncate(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int len = data_end - data;

	if (len <= SNAP_LEN)
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, SNAP_LEN - len))
		return XDP_DROP;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
