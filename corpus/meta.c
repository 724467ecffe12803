// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * meta.c - reserve 4 bytes of XDP metadata in front of the packet with
 * bpf_xdp_adjust_meta and store a mark there for later consumers (e.g. a TC
 * program reading __sk_buff->data_meta).
 *
 * SHOWS: bpf_xdp_adjust_meta with a negative delta, the data_meta <= data
 * bounds check the verifier requires before writing metadata. No maps.
 *
 * PROGRAM: section "xdp", function xdp_meta. Verdict: ALWAYS XDP_PASS. The
 * packet bytes (data .. data_end) are never modified; only the metadata.
 *
 * WHAT IT DOES (offsets from the start of the frame; L = frame length;
 * E = big-endian u16 at 12; no VLAN parsing):
 *   1. mark M (a u32):
 *        E = 0x0800 and L >= 34: M = byte 23 (IPv4 protocol);
 *        E = 0x86DD and L >= 54: M = byte 20 (IPv6 next header, fixed
 *                                header only);
 *        otherwise (runts, other ethertypes, truncated IP): M = 0.
 *   2. bpf_xdp_adjust_meta(ctx, -4). If it fails (e.g. metadata not
 *      supported by the driver)           -> XDP_PASS without metadata.
 *   3. The 4 metadata bytes (data_meta .. data) := M as a little-endian u32
 *      (these objects are built for little-endian BPF, so it is a native
 *      store).                                               -> XDP_PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

static __always_inline __u32 mark_of(void *data, void *data_end)
{
	__u8 *b = data;
	__u16 eth_type;

	if (data + 14 > data_end)
		return 0;
	eth_type = ((__u16)b[12] << 8) | b[13];
	if (eth_type == ETH_P_IP && data + 34 <= data_end)
		return b[23];
	if (eth_type == ETH_P_IPV6 && data + 54 <= data_end)
		return b[20];
	return 0;
}

SEC("xdp")
int xdp_meta(struct xdp_md *ctx)
{
	__u32 mark = mark_of((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	void *data, *meta;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(__u32)))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	meta = (void *)(long)ctx->data_meta;
	if (meta + sizeof(__u32) > data)
		return XDP_PASS;
	*(__u32 *)meta = mark;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
