// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * firewall.c - parse-and-filter firewall: VLAN tags, IPv4 options, IPv6
 * extension headers, port and source-address blocklists.
 *
 * SHOWS: deep header parsing with bounds checks against data_end, a bounded
 * (not unrolled) loop over IPv6 extension headers, HASH map lookups keyed by
 * packet fields, a PERCPU_ARRAY of verdict counters.
 *
 * PROGRAM: section "xdp", function xdp_firewall. Never returns XDP_ABORTED,
 * XDP_TX or XDP_REDIRECT: every packet gets XDP_PASS or XDP_DROP.
 *
 * MAPS (all start empty; fill them with --map):
 *   blocked_ports  HASH, max 1024, key 4 bytes = struct port_key
 *                  { u16 port (HOST order, i.e. little-endian in the key bytes),
 *                    u8 proto (6 = TCP, 17 = UDP), u8 pad (must be 0) },
 *                  value u8 (ignored: presence blocks).
 *   blocked_v4     HASH, max 1024, key u32 = the 4 IPv4 address bytes in wire
 *                  order (as they appear in the packet), value u8 (ignored).
 *   blocked_v6     HASH, max 1024, key 16 bytes = IPv6 address in wire order,
 *                  value u8 (ignored).
 *   stats          PERCPU_ARRAY, max 5, key u32 = verdict code (1 = DROP,
 *                  2 = PASS; other slots stay 0), value u64 = number of
 *                  packets that got that verdict. Every packet increments
 *                  exactly one slot.
 *
 * WHAT IT DOES (first matching rule wins; offsets are from the start of the
 * frame; L = frame length):
 *  1. L < 14 (no room for an Ethernet header)                  -> DROP.
 *  2. Ethertype E = big-endian u16 at 12, next header at H = 14.
 *     While E is 0x8100 (802.1Q) or 0x88A8 (802.1ad), at most twice:
 *       if H + 4 > L                                          -> DROP;
 *       E = big-endian u16 at H + 2; H += 4.
 *     If E is still 0x8100 or 0x88A8 (a third tag)             -> DROP.
 *  3. E = 0x0806 (ARP)                                         -> PASS.
 *  4. E = 0x0800 (IPv4), header at H:
 *     a. H + 20 > L                                            -> DROP.
 *     b. version (high nibble of byte H) != 4                  -> DROP.
 *     c. IHL (low nibble of byte H) < 5                        -> DROP.
 *     d. H + 4*IHL > L (options truncated)                     -> DROP.
 *     e. source address (bytes H+12..H+16) is 192.0.2.66        -> DROP.
 *     f. source address is a key in blocked_v4                 -> DROP.
 *     g. fragment offset (low 13 bits of big-endian u16 at H+6) != 0,
 *        i.e. a non-first fragment, which carries no L4 header -> DROP.
 *        (First fragments, MF set and offset 0, go on to the L4 checks.)
 *     h. L4 checks below with protocol = byte H+9, L4 header at H + 4*IHL.
 *     The total-length field and the header checksum are NOT checked.
 *  5. E = 0x86DD (IPv6), header at H:
 *     a. H + 40 > L                                            -> DROP.
 *     b. version (high nibble of byte H) != 6                  -> DROP.
 *     c. source address (bytes H+8..H+24) is 2001:db8::66       -> DROP.
 *     d. source address is a key in blocked_v6                 -> DROP.
 *     e. N = next header (byte H+6), P = H + 40. Up to 6 times:
 *        - N in {0 hop-by-hop, 43 routing, 60 destination options}:
 *            if P + 2 > L -> DROP; len = (byte P+1 + 1) * 8;
 *            if P + len > L -> DROP; N = byte P; P += len.
 *        - N = 44 (fragment): if P + 8 > L -> DROP;
 *            if (big-endian u16 at P+2) >> 3 != 0 (non-first fragment)
 *            -> DROP; N = byte P; P += 8.
 *        - anything else: stop walking.
 *        If after 6 headers N is still one of 0, 43, 44, 60     -> DROP.
 *        (Other extension-like protocols, e.g. 51 AH or 50 ESP, are not
 *        walked: they count as "other protocol" below.)
 *     f. L4 checks below with protocol = N, L4 header at P.
 *     The payload-length field is NOT checked.
 *  6. Any other ethertype                                      -> PASS.
 *
 * L4 CHECKS (protocol p, L4 header at P):
 *   p = 6 (TCP):  P + 20 > L -> DROP; dport = big-endian u16 at P+2.
 *   p = 17 (UDP): P + 8 > L  -> DROP; dport = big-endian u16 at P+2.
 *     then: dport in {23, 445, 3389}                          -> DROP;
 *           {port = dport, proto = p, pad = 0} in blocked_ports -> DROP;
 *           otherwise                                         -> PASS.
 *   p = 1 (ICMP) under IPv4 only: P + 4 > L -> DROP;
 *           type (byte P) = 5 (redirect) -> DROP, otherwise PASS.
 *   p = 58 (ICMPv6) under IPv6 only: P + 4 > L -> DROP;
 *           type (byte P) = 137 (redirect) -> DROP, otherwise PASS.
 *   anything else (including 1 under IPv6, 58 under IPv4)     -> PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_8021AD_ 0x88A8
#define MAX_VLAN_TAGS 2
#define MAX_EXT_HDRS 6

struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

struct port_key {
	__u16 port; /* host order */
	__u8 proto;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct port_key);
	__type(value, __u8);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} blocked_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct in6_addr);
	__type(value, __u8);
} blocked_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int count(int action)
{
	__u32 key = action;
	__u64 *n = bpf_map_lookup_elem(&stats, &key);

	if (n)
		*n += 1;
	return action;
}

static __always_inline int is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD_);
}

static __always_inline int port_verdict(__u8 proto, void *l4, void *data_end)
{
	struct port_key key = {};
	__u16 dport;

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return XDP_DROP;
		dport = bpf_ntohs(th->dest);
	} else {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return XDP_DROP;
		dport = bpf_ntohs(uh->dest);
	}
	if (dport == 23 || dport == 445 || dport == 3389)
		return XDP_DROP;
	key.port = dport;
	key.proto = proto;
	if (bpf_map_lookup_elem(&blocked_ports, &key))
		return XDP_DROP;
	return XDP_PASS;
}

static __always_inline int l4_verdict(__u8 proto, void *l4, void *data_end, int v6)
{
	__u8 *type = l4;

	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return port_verdict(proto, l4, data_end);
	case IPPROTO_ICMP:
		if (v6)
			return XDP_PASS;
		if (l4 + 4 > data_end)
			return XDP_DROP;
		return *type == 5 ? XDP_DROP : XDP_PASS;
	case IPPROTO_ICMPV6:
		if (!v6)
			return XDP_PASS;
		if (l4 + 4 > data_end)
			return XDP_DROP;
		return *type == 137 ? XDP_DROP : XDP_PASS;
	default:
		return XDP_PASS;
	}
}

static __always_inline int ipv4_verdict(void *l3, void *data_end)
{
	struct iphdr *ip = l3;
	__u32 saddr, hlen;

	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	if (ip->version != 4 || ip->ihl < 5)
		return XDP_DROP;
	hlen = ip->ihl * 4;
	if (l3 + hlen > data_end)
		return XDP_DROP;
	saddr = ip->saddr;
	if (saddr == bpf_htonl(0xC0000242)) /* 192.0.2.66 */
		return XDP_DROP;
	if (bpf_map_lookup_elem(&blocked_v4, &saddr))
		return XDP_DROP;
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_DROP;
	return l4_verdict(ip->protocol, l3 + hlen, data_end, 0);
}

static __always_inline int is_ext_hdr(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING ||
	       nh == IPPROTO_DSTOPTS || nh == IPPROTO_FRAGMENT;
}

static __always_inline int ipv6_verdict(void *l3, void *data_end)
{
	struct ipv6hdr *ip6 = l3;
	struct in6_addr saddr;
	void *p;
	__u8 nh;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	if (ip6->version != 6)
		return XDP_DROP;
	__builtin_memcpy(&saddr, &ip6->saddr, sizeof(saddr));
	if (saddr.in6_u.u6_addr32[0] == bpf_htonl(0x20010DB8) &&
	    saddr.in6_u.u6_addr32[1] == 0 && saddr.in6_u.u6_addr32[2] == 0 &&
	    saddr.in6_u.u6_addr32[3] == bpf_htonl(0x66))
		return XDP_DROP;
	if (bpf_map_lookup_elem(&blocked_v6, &saddr))
		return XDP_DROP;

	nh = ip6->nexthdr;
	p = ip6 + 1;
#pragma clang loop unroll(disable)
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		__u8 *ext = p;

		if (nh == IPPROTO_FRAGMENT) {
			__be16 *frag_off = p + 2;

			if (p + 8 > data_end)
				return XDP_DROP;
			if (bpf_ntohs(*frag_off) >> 3)
				return XDP_DROP;
			nh = ext[0];
			p += 8;
		} else if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING ||
			   nh == IPPROTO_DSTOPTS) {
			__u32 len;

			if (p + 2 > data_end)
				return XDP_DROP;
			len = ((__u32)ext[1] + 1) * 8;
			nh = ext[0];
			if (p + len > data_end)
				return XDP_DROP;
			p += len;
		} else {
			break;
		}
	}
	if (is_ext_hdr(nh))
		return XDP_DROP;
	return l4_verdict(nh, p, data_end, 1);
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur;
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return count(XDP_DROP);
	proto = eth->h_proto;
	cur = eth + 1;
#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_tag *tag = cur;

		if (!is_vlan(proto))
			break;
		if ((void *)(tag + 1) > data_end)
			return count(XDP_DROP);
		proto = tag->encap_proto;
		cur = tag + 1;
	}
	if (is_vlan(proto))
		return count(XDP_DROP);
	if (proto == bpf_htons(ETH_P_ARP))
		return count(XDP_PASS);
	if (proto == bpf_htons(ETH_P_IP))
		return count(ipv4_verdict(cur, data_end));
	if (proto == bpf_htons(ETH_P_IPV6))
		return count(ipv6_verdict(cur, data_end));
	return count(XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
