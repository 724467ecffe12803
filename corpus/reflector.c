// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * reflector.c - UDP/IPv4 reflector: sends each UDP datagram back where it
 * came from with XDP_TX, answering a "PING" payload with "PONG".
 *
 * SHOWS: in-place packet rewriting (MAC, address and port swaps), TTL
 * rewrite, and incremental checksum updates (RFC 1624 eqn. 3) computed with
 * bpf_csum_diff over 4-byte stack buffers.
 *
 * PROGRAM: section "xdp", function xdp_reflector. Verdicts: XDP_TX for
 * reflected packets, XDP_PASS (packet unchanged) for everything else. No
 * maps.
 *
 * WHICH PACKETS ARE REFLECTED (offsets from the start of the frame; L =
 * frame length). ALL of these must hold, otherwise -> XDP_PASS, unchanged
 * (this includes runts, truncated headers, VLAN-tagged frames, IPv6):
 *   L >= 34; ethertype (big-endian u16 at 12) = 0x0800; version (high nibble
 *   of byte 14) = 4; IHL (low nibble of byte 14) >= 5; protocol (byte 23) =
 *   17; big-endian u16 at 20 has MF (0x2000) clear and fragment offset
 *   (0x1FFF) zero; with U = 14 + 4*IHL, U + 8 <= L.
 *   Neither checksum is validated and the IPv4 total length and UDP length
 *   fields are not looked at.
 *
 * REWRITE of a reflected packet (then -> XDP_TX):
 *   1. bytes 0..6 and 6..12 (destination and source MAC) are swapped;
 *   2. bytes 26..30 and 30..34 (source and destination IPv4) are swapped;
 *   3. bytes U..U+2 and U+2..U+4 (UDP source and destination port) swapped;
 *   4. TTL (byte 22) := 64, and the IPv4 header checksum (bytes 24..26) is
 *      updated incrementally from m = the 16-bit word (old TTL, protocol) to
 *      m' = (64, protocol);
 *   5. if U + 12 <= L and bytes U+8..U+12 are ASCII "PING", they become
 *      "PONG"; then, only if the UDP checksum (bytes U+6..U+8) is not 0, it
 *      is updated incrementally from "PING" to "PONG", and a result of
 *      0x0000 is written as 0xFFFF (RFC 768). A zero UDP checksum ("none")
 *      stays 0.
 *   Swaps 1-3 do not change either checksum (a ones'-complement sum does
 *   not depend on word order), so only steps 4 and 5 touch checksums.
 *
 * INCREMENTAL UPDATE, exactly: over big-endian 16-bit words, with HC the old
 * checksum, m_i the old words and m'_i the new ones (the 4-byte buffers hold
 * two words each; for step 4 the second word is 0 in both),
 *   S  = (0xFFFF - HC) + sum_i (0xFFFF - m_i) + sum_i m'_i   (integer sum),
 *   s  = S mod 0xFFFF, and s = 0xFFFF if that is 0 (S is never 0 here),
 *   HC' = 0xFFFF - s.
 * This is bpf_csum_diff(from, 4, to, 4, seed = ~HC) folded to 16 bits and
 * complemented (see net/core/filter.c bpf_csum_diff). Consequence: an old
 * header checksum of 0xFFFF with TTL already 64 becomes 0x0000.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define REFLECT_TTL 64

/* Fold the helper's 32-bit partial sum to 16 bits and complement it. */
static __always_inline __u16 csum_fold_neg(__s64 partial)
{
	__u32 s = (__u32)partial;

	s = (s & 0xFFFF) + (s >> 16);
	s = (s & 0xFFFF) + (s >> 16);
	return (__u16)~s;
}

/* RFC 1624 eqn. 3 over one 4-byte span; all values in wire byte order. */
static __always_inline __u16 csum_replace4(__u16 old_csum, __u32 from, __u32 to)
{
	__u32 f = from, t = to;

	return csum_fold_neg(bpf_csum_diff(&f, 4, &t, 4, (__u16)~old_csum));
}

SEC("xdp")
int xdp_reflector(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;
	__u8 mac[ETH_ALEN];
	__u32 addr, from, to, payload;
	__u16 port, csum;

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x3FFF))
		return XDP_PASS;
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;

	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;

	from = 0;
	to = 0;
	((__u8 *)&from)[0] = ip->ttl;
	((__u8 *)&from)[1] = ip->protocol;
	((__u8 *)&to)[0] = REFLECT_TTL;
	((__u8 *)&to)[1] = ip->protocol;
	ip->ttl = REFLECT_TTL;
	ip->check = csum_replace4(ip->check, from, to);

	if ((void *)(udp + 1) + 4 <= data_end) {
		__builtin_memcpy(&payload, udp + 1, 4);
		if (payload == *(__u32 *)"PING") {
			__builtin_memcpy(udp + 1, "PONG", 4);
			csum = udp->check;
			if (csum != 0) {
				csum = csum_replace4(csum, *(__u32 *)"PING",
						     *(__u32 *)"PONG");
				udp->check = csum ? csum : 0xFFFF;
			}
		}
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
