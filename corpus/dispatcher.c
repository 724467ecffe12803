// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * dispatcher.c - tail-call dispatcher: the main program hands IPv4 and IPv6
 * packets to per-family programs through a PROG_ARRAY.
 *
 * SHOWS: bpf_tail_call, the fall-through after a failed tail call (empty
 * slot), three programs in one object.
 *
 * MAPS:
 *   jmp_table  PROG_ARRAY, max 4, key u32, value u32 (program fd).
 *              Slot 0 = the "xdp/ipv4" program (xdp_ipv4),
 *              slot 1 = the "xdp/ipv6" program (xdp_ipv6),
 *              slots 2 and 3 unused. The table starts EMPTY: a loader must
 *              fill slots 0 and 1 with this object's own programs. With an
 *              empty table, every packet that reaches a tail call falls
 *              through and gets XDP_PASS.
 *
 * Offsets from the start of the frame; L = frame length; E = big-endian u16
 * at 12 (no VLAN parsing).
 *
 * PROGRAM "xdp" (function xdp_dispatch, the entry point):
 *   1. L < 14                                                 -> XDP_DROP.
 *   2. E = 0x0800: tail call slot 0; if that returns (slot empty) -> XDP_PASS.
 *   3. E = 0x86DD: tail call slot 1; if that returns (slot empty) -> XDP_PASS.
 *   4. any other E                                            -> XDP_PASS.
 *   A successful tail call never returns: the packet's verdict is the
 *   verdict of the called program, run on the same (unchanged) packet.
 *
 * PROGRAM "xdp/ipv4" (function xdp_ipv4, reached through slot 0; it can also
 * run on its own, it re-parses from the frame start):
 *   1. L < 34                                                 -> XDP_DROP.
 *   2. TTL (byte 22) <= 1                                     -> XDP_DROP.
 *   3. otherwise                                              -> XDP_PASS.
 *
 * PROGRAM "xdp/ipv6" (function xdp_ipv6, reached through slot 1):
 *   1. L < 54                                                 -> XDP_DROP.
 *   2. hop limit (byte 21) <= 1                               -> XDP_DROP.
 *   3. otherwise                                              -> XDP_PASS.
 *
 * No program modifies the packet.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SLOT_IPV4 0
#define SLOT_IPV6 1

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jmp_table SEC(".maps");

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &jmp_table, SLOT_IPV4);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		bpf_tail_call(ctx, &jmp_table, SLOT_IPV6);
	return XDP_PASS;
}

SEC("xdp/ipv4")
int xdp_ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *b = data;

	if (data + 34 > data_end)
		return XDP_DROP;
	return b[22] <= 1 ? XDP_DROP : XDP_PASS;
}

SEC("xdp/ipv6")
int xdp_ipv6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *b = data;

	if (data + 54 > data_end)
		return XDP_DROP;
	return b[21] <= 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
