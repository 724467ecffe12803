// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * globals.c - configuration in .rodata, initialised state in .data and
 * zeroed counters in .bss.
 *
 * SHOWS: global variables, which libbpf and the kernel back with one-entry
 * ARRAY maps (".rodata" frozen read-only, ".data", ".bss") and which the
 * program reaches through lddw with BPF_PSEUDO_MAP_VALUE plus an offset.
 *
 * GLOBALS (initial values as compiled; a loader may override .rodata
 * before load, which is what `const volatile` is for):
 *   .rodata  u16 blocked_port = 9       UDP destination port to act on
 *            u8  enforce      = 1       1: drop it; 0: only count it
 *   .data    u32 ttl_floor    = 2       IPv4 TTL below this is dropped
 *   .bss     u64 packets_seen = 0       +1 for every packet
 *            u64 dropped      = 0       +1 for every XDP_DROP
 *            u64 port_hits    = 0       +1 for every UDP packet to
 *                                       blocked_port, enforced or not
 *   (The counters are plain, non-atomic increments.)
 *
 * PROGRAM: section "xdp", function xdp_globals. Verdicts: XDP_PASS or
 * XDP_DROP; the packet is never modified.
 *
 * WHAT IT DOES (offsets from frame start; L = frame length; no VLAN), after
 * packets_seen += 1:
 *   1. L < 14                                      -> DROP (dropped += 1).
 *   2. ethertype (big-endian u16 at 12) != 0x0800                 -> PASS.
 *   3. L < 34 or IHL (low nibble of byte 14) < 5   -> DROP (dropped += 1).
 *   4. TTL (byte 22) < ttl_floor                   -> DROP (dropped += 1).
 *   5. protocol (byte 23) != 17                                   -> PASS.
 *   6. U = 14 + 4*IHL; U + 4 > L                   -> DROP (dropped += 1).
 *   7. big-endian u16 at U+2 = blocked_port: port_hits += 1; then
 *      enforce != 0                                -> DROP (dropped += 1),
 *      enforce = 0                                                -> PASS.
 *   8. otherwise                                                  -> PASS.
 *   With the compiled-in values: TTL 0 or 1 and UDP to port 9 are dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u16 blocked_port = 9;
const volatile __u8 enforce = 1;

__u32 ttl_floor = 2;

__u64 packets_seen;
__u64 dropped;
__u64 port_hits;

static __always_inline int drop(void)
{
	dropped += 1;
	return XDP_DROP;
}

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__be16 *ports;

	packets_seen += 1;
	if ((void *)(eth + 1) > data_end)
		return drop();
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return drop();
	if (ip->ttl < ttl_floor)
		return drop();
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 2) > data_end)
		return drop();
	if (bpf_ntohs(ports[1]) == blocked_port) {
		port_hits += 1;
		if (enforce)
			return drop();
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
