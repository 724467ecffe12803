// SPDX-License-Identifier: MIT OR Apache-2.0
// A load balancer of the kind Netronome's bpf-samples l4lb offloads: hash
// the flow, pick one of 32 destinations from an array, encapsulate in IPIP
// (adjust_head -20, a constant: the JIT's fast path), compute the outer
// header checksum, swap MACs, XDP_TX. Written to pass the NFP offload rules
// (ARRAY map, lookup helper only, no MOD, no store-immediate under -mcpu=v3).
#include "common.h"

struct dest {
	__u32 daddr;
	__u32 saddr;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, struct dest);
} dests SEC(".maps");

SEC("xdp")
int l4lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *l4 = data + sizeof(*eth) + sizeof(*ip);
	struct dest *d;
	__u32 h, key;
	__u16 tot;

	if ((void *)(l4 + 1) > end)
		return XDP_DROP;
	if (eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	h = ip->saddr ^ ip->daddr ^ ((__u32)l4->source << 16 | l4->dest);
	h ^= h >> 16;
	h *= 0x45d9f3b;
	h ^= h >> 16;
	key = h & 31;
	d = bpf_map_lookup_elem(&dests, &key);
	if (!d)
		return XDP_DROP;
	tot = ip->tot_len;
	__u32 daddr = d->daddr, saddr = d->saddr;

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	ip = data + sizeof(*eth);
	struct ethhdr *old = data + sizeof(struct iphdr);
	if ((void *)(ip + 1) > end || (void *)(old + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, old->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, old->h_dest, ETH_ALEN);
	eth->h_proto = __builtin_bswap16(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = __builtin_bswap16(__builtin_bswap16(tot) + sizeof(struct iphdr));
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_IPIP;
	ip->check = 0;
	ip->saddr = saddr;
	ip->daddr = daddr;
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
