// SPDX-License-Identifier: MIT OR Apache-2.0
// hXDP "simple firewall" (OSDI'20 §6, 71/72 eBPF insns in the paper):
// parse Ethernet/IPv4/UDP|TCP, look the 5-tuple up in a flow table; a known
// flow is forwarded (XDP_TX), anything else is dropped. Non-IPv4 passes.
#include "common.h"

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, __u32);
} flows SEC(".maps");

SEC("xdp")
int simple_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *l4 = data + sizeof(*eth) + sizeof(*ip);
	struct flow_key key;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP)
		return XDP_DROP;
	if ((void *)(l4 + 1) > end)
		return XDP_DROP;
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = l4->source;
	key.dport = l4->dest;
	key.proto = ip->protocol;
	if (bpf_map_lookup_elem(&flows, &key))
		return XDP_TX;
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
