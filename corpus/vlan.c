// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * vlan.c - push and pop an 802.1Q VLAN tag with bpf_xdp_adjust_head(-4/+4).
 *
 * SHOWS: moving the MAC addresses across an overlapping 4-byte shift (via a
 * stack copy) around adjust_head. Two programs in one object. No maps.
 *
 * Offsets from the start of the frame; L = frame length; E = big-endian u16
 * at 12.
 *
 * PROGRAM "xdp/vlan_push" (function xdp_vlan_push):
 *   1. L < 14                                                 -> XDP_DROP.
 *   2. E = 0x8100 or E = 0x88A8 (already tagged)  -> XDP_PASS, unchanged.
 *   3. bpf_xdp_adjust_head(ctx, -4); if it fails              -> XDP_DROP.
 *   4. New frame (L + 4 bytes): bytes 0..12 = original MACs (bytes 0..12),
 *      bytes 12..14 = 0x81 0x00 (TPID 802.1Q), bytes 14..16 = 0x00 0x64
 *      (TCI: PCP 0, DEI 0, VID 100), bytes 16.. = original bytes 12..L
 *      (the original ethertype, then the payload).
 *   5.                                                        -> XDP_PASS.
 *
 * PROGRAM "xdp/vlan_pop" (function xdp_vlan_pop):
 *   1. L < 14                                                 -> XDP_DROP.
 *   2. E != 0x8100 (only 802.1Q is popped; 0x88A8 is left alone)
 *                                                  -> XDP_PASS, unchanged.
 *   3. L < 18 (tag truncated)                                 -> XDP_DROP.
 *   4. Original bytes 0..12 (MACs) are moved to 4..16, then
 *      bpf_xdp_adjust_head(ctx, +4) (if it fails -> XDP_DROP). New frame
 *      (L - 4 bytes): original bytes 0..12, then original bytes 16..L (so
 *      the inner ethertype follows the MACs). The TCI is discarded; an inner
 *      tag, if any, is not touched.
 *   5.                                                        -> XDP_PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define VLAN_HLEN 4
#define MACS_LEN (2 * ETH_ALEN)
#define PUSH_VID 100

SEC("xdp/vlan_push")
int xdp_vlan_push(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 macs[MACS_LEN];
	__be16 *tag;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) ||
	    eth->h_proto == bpf_htons(ETH_P_8021AD))
		return XDP_PASS;
	__builtin_memcpy(macs, data, MACS_LEN);

	if (bpf_xdp_adjust_head(ctx, -VLAN_HLEN))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + MACS_LEN + VLAN_HLEN > data_end)
		return XDP_DROP;
	__builtin_memcpy(data, macs, MACS_LEN);
	tag = data + MACS_LEN;
	tag[0] = bpf_htons(ETH_P_8021Q);
	tag[1] = bpf_htons(PUSH_VID);
	return XDP_PASS;
}

SEC("xdp/vlan_pop")
int xdp_vlan_pop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 macs[MACS_LEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_8021Q))
		return XDP_PASS;
	if (data + MACS_LEN + VLAN_HLEN + 2 > data_end)
		return XDP_DROP;
	__builtin_memcpy(macs, data, MACS_LEN);
	__builtin_memcpy(data + VLAN_HLEN, macs, MACS_LEN);
	if (bpf_xdp_adjust_head(ctx, VLAN_HLEN))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
