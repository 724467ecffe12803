// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * encap.c - IPIP (IPv4-in-IPv4, protocol 4) encapsulation and
 * decapsulation with bpf_xdp_adjust_head.
 *
 * SHOWS: growing and shrinking the packet at the front (adjust_head -20 and
 * +20), re-deriving packet pointers after the helper, building a header and
 * its checksum from scratch. Two programs in one object.
 *
 * No maps. Offsets from the start of the frame; L = frame length. Neither
 * program parses VLAN tags (a tagged frame has ethertype 0x8100 and passes).
 *
 * PROGRAM "xdp/encap" (function xdp_ipip_encap):
 *   1. L < 14                                                 -> XDP_DROP.
 *   2. ethertype (big-endian u16 at 12) != 0x0800               -> XDP_PASS,
 *      unchanged.
 *   3. L < 34                                                 -> XDP_DROP.
 *      (Nothing else of the inner header is checked.)
 *   4. bpf_xdp_adjust_head(ctx, -20); if it fails              -> XDP_DROP.
 *   5. The new frame (L + 20 bytes) is:
 *        bytes 0..14   the original Ethernet header, unchanged (same MACs,
 *                      ethertype 0x0800);
 *        bytes 14..34  a new outer IPv4 header:
 *          14: 0x45 (version 4, IHL 5)   15: 0x00 (TOS)
 *          16..18: total length = (inner total length, big-endian u16 at
 *                  original offset 16) + 20, modulo 65536, big-endian
 *          18..20: 0x0000 (ID)   20..22: 0x4000 (DF, offset 0)
 *          22: 64 (TTL)          23: 4 (protocol IPIP)
 *          24..26: header checksum = ones'-complement of the ones'-complement
 *                  sum of the ten big-endian words of bytes 14..34 with the
 *                  checksum field taken as 0 (the standard IPv4 checksum)
 *          26..30: 198.51.100.1 (tunnel source)
 *          30..34: 203.0.113.1 (tunnel destination)
 *        bytes 34..    the original bytes 14..L, unchanged.
 *   6.                                                        -> XDP_TX.
 *
 * PROGRAM "xdp/decap" (function xdp_ipip_decap):
 *   1. L < 14                                                 -> XDP_DROP.
 *   2. ethertype != 0x0800                         -> XDP_PASS, unchanged.
 *   3. L < 34                                                 -> XDP_DROP.
 *   4. byte 23 (protocol) != 4, or byte 14 != 0x45 (version 4 with IHL 5;
 *      outer headers with options are not decapsulated)
 *                                                  -> XDP_PASS, unchanged.
 *   5. L < 54 (no room for an inner IPv4 header)              -> XDP_DROP.
 *   6. The 14 Ethernet bytes are copied to offsets 20..34 and then
 *      bpf_xdp_adjust_head(ctx, +20) removes the first 20 bytes (if it
 *      fails -> XDP_DROP). The new frame (L - 20 bytes) is the original
 *      Ethernet header (ethertype still 0x0800) followed by original bytes
 *      34..L. The inner header is not checked.
 *   7.                                                        -> XDP_PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TUNNEL_SRC 0xC6336401 /* 198.51.100.1 */
#define TUNNEL_DST 0xCB007101 /* 203.0.113.1 */
#define OUTER_LEN ((int)sizeof(struct iphdr))

static __always_inline __u16 ipv4_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xFFFF) + (sum >> 16);
	sum = (sum & 0xFFFF) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp/encap")
int xdp_ipip_encap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *inner = (void *)(eth + 1);
	struct ethhdr eth_copy;
	struct iphdr *outer;
	__u16 inner_len;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(inner + 1) > data_end)
		return XDP_DROP;
	inner_len = bpf_ntohs(inner->tot_len);
	__builtin_memcpy(&eth_copy, eth, sizeof(eth_copy));

	if (bpf_xdp_adjust_head(ctx, -OUTER_LEN))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;

	__builtin_memcpy(eth, &eth_copy, sizeof(*eth));
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons((__u16)(inner_len + OUTER_LEN));
	outer->id = 0;
	outer->frag_off = bpf_htons(0x4000);
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = bpf_htonl(TUNNEL_SRC);
	outer->daddr = bpf_htonl(TUNNEL_DST);
	outer->check = ipv4_csum(outer);
	return XDP_TX;
}

SEC("xdp/decap")
int xdp_ipip_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = (void *)(eth + 1);
	struct ethhdr eth_copy;
	__u8 *first = (void *)outer;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;
	if (outer->protocol != IPPROTO_IPIP || *first != 0x45)
		return XDP_PASS;
	if ((void *)(outer + 1) + sizeof(struct iphdr) > data_end)
		return XDP_DROP;

	__builtin_memcpy(&eth_copy, eth, sizeof(eth_copy));
	__builtin_memcpy((void *)outer + OUTER_LEN - sizeof(*eth), &eth_copy,
			 sizeof(eth_copy));
	if (bpf_xdp_adjust_head(ctx, OUTER_LEN))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
