// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * ratelimit.c - per-flow token bucket for TCP and UDP over IPv4, refilled
 * from bpf_ktime_get_ns().
 *
 * SHOWS: LRU_HASH keyed by packet fields, insert-on-miss with
 * bpf_map_update_elem, in-place value updates, 64-bit unsigned division,
 * time-dependent verdicts (a backend must feed bpf_ktime_get_ns from the
 * capture's timestamps to reproduce them).
 *
 * PROGRAM: section "xdp", function xdp_ratelimit. Verdicts: XDP_PASS or
 * XDP_DROP; the packet is never modified.
 *
 * MAPS:
 *   buckets  LRU_HASH, max 4096, starts empty.
 *            key 8 bytes = struct flow_key { u32 saddr (IPv4 source, wire
 *            order); u16 dport (HOST order); u16 pad = 0 } -- the protocol
 *            is NOT part of the key: TCP and UDP to the same port share a
 *            bucket.
 *            value 16 bytes = struct bucket { u64 tokens; u64 last_ns; }.
 *            (The verdict sequence below assumes no LRU eviction, i.e. far
 *            fewer than 4096 flows; the kernel's LRU may evict somewhat
 *            before max_entries is reached.)
 *
 * CLASSIFICATION (offsets from frame start; L = frame length; no VLAN):
 *   1. L < 14                                                 -> DROP.
 *   2. ethertype (big-endian u16 at 12) != 0x0800              -> PASS.
 *   3. L < 34, or IHL (low nibble of byte 14) < 5              -> DROP.
 *   4. protocol (byte 23) not 6 and not 17                     -> PASS.
 *   5. fragment offset (low 13 bits of big-endian u16 at 20) != 0
 *      (non-first fragment, no ports)                          -> PASS.
 *   6. U = 14 + 4*IHL; U + 4 > L (ports truncated)             -> DROP.
 *   7. key = {saddr = bytes 26..30, dport = big-endian u16 at U+2}; go on
 *      to the bucket. Version and checksums are not checked.
 *
 * BUCKET (BURST = 4 tokens, PERIOD = 100000000 ns, i.e. 10 packets/s
 * sustained; now = bpf_ktime_get_ns() read once per packet):
 *   a. no entry for key: insert {tokens = BURST - 1 = 3, last_ns = now}
 *                                                              -> PASS.
 *      (If the insert fails the packet still passes.)
 *   b. entry {tokens, last_ns}: if now > last_ns, n = (now - last_ns) /
 *      PERIOD (integer division); if n > 0: last_ns += n * PERIOD (the
 *      remainder is kept, not lost) and tokens = min(tokens + n, BURST).
 *      If now <= last_ns nothing is refilled.
 *   c. tokens > 0: tokens -= 1                                 -> PASS.
 *      tokens = 0                                              -> DROP.
 *   So a new flow passes 4 packets in a burst, then one more per full
 *   100 ms since the bucket's last_ns, never banking more than 4.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define BURST 4
#define PERIOD_NS 100000000ULL

struct flow_key {
	__u32 saddr;
	__u16 dport;
	__u16 pad;
};

struct bucket {
	__u64 tokens;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, struct bucket);
} buckets SEC(".maps");

static __always_inline int take_token(struct flow_key *key)
{
	__u64 now = bpf_ktime_get_ns();
	struct bucket *b = bpf_map_lookup_elem(&buckets, key);
	__u64 n;

	if (!b) {
		struct bucket fresh = { .tokens = BURST - 1, .last_ns = now };

		bpf_map_update_elem(&buckets, key, &fresh, BPF_ANY);
		return XDP_PASS;
	}
	if (now > b->last_ns) {
		n = (now - b->last_ns) / PERIOD_NS;
		if (n > 0) {
			b->last_ns += n * PERIOD_NS;
			b->tokens = n >= BURST || b->tokens + n >= BURST ?
					    BURST : b->tokens + n;
		}
	}
	if (b->tokens == 0)
		return XDP_DROP;
	b->tokens -= 1;
	return XDP_PASS;
}

SEC("xdp")
int xdp_ratelimit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct flow_key key = {};
	__be16 *ports;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end || ip->ihl < 5)
		return XDP_DROP;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(0x1FFF))
		return XDP_PASS;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 2) > data_end)
		return XDP_DROP;
	key.saddr = ip->saddr;
	key.dport = bpf_ntohs(ports[1]);
	return take_token(&key);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
