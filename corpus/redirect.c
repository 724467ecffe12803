// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * redirect.c - spread packets over up to 4 egress devices through a DEVMAP.
 *
 * SHOWS: bpf_redirect_map with a fallback action in the flags argument, a
 * read of the xdp_md ingress_ifindex context field.
 *
 * PROGRAM: section "xdp", function xdp_redirect_ports. The packet is never
 * modified.
 *
 * MAPS:
 *   tx_ports  DEVMAP, max 4, key u32 = slot 0..3, value u32 = egress
 *             ifindex. Starts EMPTY (fill with --map).
 *
 * WHAT IT DOES (offsets from the start of the frame; L = frame length):
 *   1. slot K:
 *      - UDP over IPv4, untagged: L >= 34, ethertype (big-endian u16 at 12)
 *        = 0x0800, byte 23 = 17, IHL (low nibble of byte 14) >= 5 and, with
 *        U = 14 + 4*IHL, U + 8 <= L: K = (UDP destination port, big-endian
 *        u16 at U+2) % 4. Fragmentation and version are not checked.
 *      - every other packet (including runts): K = ctx->ingress_ifindex % 4.
 *        (BPF_PROG_TEST_RUN without a ctx_in reports the loopback device,
 *        ifindex 1 in the initial network namespace.)
 *   2. return bpf_redirect_map(&tx_ports, K, XDP_PASS):
 *      slot K holds a device -> XDP_REDIRECT (to that device);
 *      slot K is empty       -> XDP_PASS (the fallback in the flags' low
 *                               bits; see net/core/filter.c
 *                               __bpf_xdp_redirect_map / BPF_F_ACTION_MASK).
 *   With the map empty, every packet gets XDP_PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NR_PORTS 4

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, NR_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

static __always_inline int udp_dport(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP ||
	    ip->ihl < 5)
		return -1;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return -1;
	return bpf_ntohs(udp->dest);
}

SEC("xdp")
int xdp_redirect_ports(struct xdp_md *ctx)
{
	int port = udp_dport((void *)(long)ctx->data, (void *)(long)ctx->data_end);
	__u32 key;

	if (port >= 0)
		key = (__u32)port % NR_PORTS;
	else
		key = ctx->ingress_ifindex % NR_PORTS;
	return bpf_redirect_map(&tx_ports, key, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
