// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * lpm_filter.c - drop IPv4 packets whose source address falls in a prefix
 * stored in an LPM trie.
 *
 * SHOWS: BPF_MAP_TYPE_LPM_TRIE lookups (longest-prefix match) with a key
 * built on the stack from packet bytes.
 *
 * PROGRAM: section "xdp", function xdp_lpm_filter. Verdicts: XDP_PASS or
 * XDP_DROP only.
 *
 * MAPS:
 *   src_prefixes  LPM_TRIE, flags BPF_F_NO_PREALLOC, max 1024,
 *                 key 8 bytes = struct lpm_v4_key { u32 prefixlen (host
 *                 order, 0..32); u8 addr[4] (wire order) },
 *                 value u32 (ignored: any matching prefix drops).
 *                 The trie starts EMPTY: fill it with --map. With an empty
 *                 trie every packet that survives the length checks passes.
 *
 * WHAT IT DOES (offsets from the start of the frame; L = frame length):
 *  1. L < 14                                                  -> DROP.
 *  2. Ethertype (big-endian u16 at 12) != 0x0800               -> PASS.
 *     (No VLAN parsing: tagged frames have ethertype 0x8100 and pass.)
 *  3. L < 34 (IPv4 fixed header does not fit)                  -> DROP.
 *  4. Look up {prefixlen = 32, addr = bytes 26..30 (source address)} in
 *     src_prefixes; any stored prefix that covers the source address
 *     matches (a /0 entry matches everything)                  -> DROP.
 *  5. Otherwise                                                -> PASS.
 *  No IPv4 field other than the source address is looked at (version, IHL,
 *  checksum are ignored).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
} src_prefixes SEC(".maps");

SEC("xdp")
int xdp_lpm_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct lpm_v4_key key;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	key.prefixlen = 32;
	__builtin_memcpy(key.addr, &ip->saddr, 4);
	if (bpf_map_lookup_elem(&src_prefixes, &key))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
