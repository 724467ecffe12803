// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * subprogs.c - a port policy written as a chain of BPF-to-BPF calls.
 *
 * SHOWS: __noinline static subprograms taking packet pointers (verified in
 * the caller's context), a global (non-static) function verified on its
 * own from its BTF signature, call depth 4:
 *   xdp_subprogs -> classify -> parse_ipv4 -> parse_l4 -> decide (global).
 * Each call gets its own stack frame, so backends must save/restore R6-R9
 * and the frame pointer per call. No maps.
 *
 * PROGRAM: section "xdp", function xdp_subprogs. Verdicts: XDP_PASS or
 * XDP_DROP; the packet is never modified.
 *
 * WHAT IT DOES (offsets from frame start; L = frame length; no VLAN):
 *   1. L < 14                                                 -> DROP.
 *   2. ethertype (big-endian u16 at 12) != 0x0800              -> PASS.
 *   3. L < 34, or IHL (low nibble of byte 14) < 5              -> DROP.
 *      (Version, fragmentation, checksum are not checked.)
 *   4. p = byte 23, U = 14 + 4*IHL.
 *      p = 6 or p = 17: U + 4 > L -> DROP; port = big-endian u16 at U+2.
 *      any other p: port = 0.
 *   5. decide(p, port):
 *        p is 6 or 17, port < 1024 and port not in {22, 53, 80, 443}
 *                                                              -> DROP
 *        (so TCP/UDP port 0 is dropped);
 *        anything else                                         -> PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Global: verified independently, so it may only take scalars. */
__noinline int decide(__u32 proto, __u32 port)
{
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	if (port >= 1024)
		return XDP_PASS;
	if (port == 22 || port == 53 || port == 80 || port == 443)
		return XDP_PASS;
	return XDP_DROP;
}

static __noinline int parse_l4(__u8 proto, void *l4, void *data_end)
{
	__be16 *ports = l4;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return decide(proto, 0);
	if ((void *)(ports + 2) > data_end)
		return XDP_DROP;
	return decide(proto, bpf_ntohs(ports[1]));
}

static __noinline int parse_ipv4(void *l3, void *data_end)
{
	struct iphdr *ip = l3;

	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return XDP_DROP;
	return parse_l4(ip->protocol, l3 + ip->ihl * 4, data_end);
}

static __noinline int classify(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	return parse_ipv4(eth + 1, data_end);
}

SEC("xdp")
int xdp_subprogs(struct xdp_md *ctx)
{
	return classify((void *)(long)ctx->data, (void *)(long)ctx->data_end);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
