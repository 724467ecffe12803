// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * counters.c - per-protocol packet/byte counters (per-CPU) and global totals
 * kept with atomic instructions.
 *
 * SHOWS: PERCPU_ARRAY read-modify-write through a value pointer; ARRAY values
 * updated with the __sync_* builtins, which clang turns into BPF atomic
 * instructions:
 *   -mcpu=v2:  only "lock *(u64 *)(r + off) += r" (BPF_ATOMIC|BPF_ADD, no
 *              fetch). The fetch/or/xchg/cmpxchg operations below do not
 *              exist before v3, so the v2 build computes the same results
 *              with ordinary loads and stores (see the #if blocks).
 *   -mcpu=v3+: also BPF_ADD|BPF_FETCH, BPF_OR, BPF_XCHG and BPF_CMPXCHG.
 * Replayed one packet at a time, both builds leave identical map contents.
 *
 * PROGRAM: section "xdp", function xdp_counters. Verdict: ALWAYS XDP_PASS;
 * the packet is never modified.
 *
 * CLASSES (c): L = frame length, E = big-endian u16 at 12 (no VLAN parsing).
 *   IPv4: E = 0x0800 and L >= 34, protocol byte p = byte 23.
 *   IPv6: E = 0x86DD and L >= 54, protocol byte p = byte 20 (the fixed
 *         header's next-header field; extension headers are NOT walked).
 *   For IPv4/IPv6: p = 6 -> c = 1 (TCP), p = 17 -> c = 2 (UDP),
 *                  p = 1 (IPv4 only) or 58 (IPv6 only) -> c = 3 (ICMP),
 *                  other p -> c = 4 (other IP).
 *   Everything else (L < 14, other ethertypes, truncated IP) -> c = 0.
 *
 * MAPS:
 *   proto_stats  PERCPU_ARRAY, max 5, key u32 = c, value struct
 *                { u64 packets; u64 bytes; }. Per packet: slot c gets
 *                packets += 1, bytes += L.
 *   totals       ARRAY, max 1, key u32 = 0, value struct totals
 *                { u64 packets;     +1 per packet (atomic add, no fetch)
 *                  u64 bytes;       +L per packet (atomic add, no fetch)
 *                  u64 ip_packets;  +1 per packet with c != 0, via a
 *                                   fetch-add whose old value is used:
 *                  u64 last_ip_seq; = the value ip_packets had BEFORE this
 *                                   packet's increment (so 0 after the first
 *                                   IP packet, n-1 after the n-th)
 *                  u64 class_mask;  |= (1 << c) per packet (atomic or)
 *                  u64 last_len;    = L of the latest packet (atomic xchg)
 *                  u64 first_len;   = L of the first packet: set by
 *                                   compare-and-swap(expected 0, new L), so
 *                                   it only changes while still 0.
 *                  u64 len_xor;     ^= L per packet (atomic xor)
 *                  u32 runts;       +1 per packet with L < 60 (32-bit
 *                                   atomic add, BPF_W, no fetch)
 *                  u32 pad; }       always 0.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct proto_count {
	__u64 packets;
	__u64 bytes;
};

struct totals {
	__u64 packets;
	__u64 bytes;
	__u64 ip_packets;
	__u64 last_ip_seq;
	__u64 class_mask;
	__u64 last_len;
	__u64 first_len;
	__u64 len_xor;
	__u32 runts;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, struct proto_count);
} proto_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct totals);
} totals SEC(".maps");

static __always_inline __u32 classify_proto(__u8 p, int v6)
{
	if (p == 6)
		return 1;
	if (p == 17)
		return 2;
	if ((!v6 && p == 1) || (v6 && p == 58))
		return 3;
	return 4;
}

static __always_inline __u32 classify(void *data, void *data_end)
{
	__u8 *b = data;
	__u16 eth_type;

	if (data + 14 > data_end)
		return 0;
	eth_type = ((__u16)b[12] << 8) | b[13];
	if (eth_type == ETH_P_IP) {
		if (data + 34 > data_end)
			return 0;
		return classify_proto(b[23], 0);
	}
	if (eth_type == ETH_P_IPV6) {
		if (data + 54 > data_end)
			return 0;
		return classify_proto(b[20], 1);
	}
	return 0;
}

SEC("xdp")
int xdp_counters(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	__u32 c = classify(data, data_end);
	__u32 zero = 0;
	struct proto_count *pc;
	struct totals *t;

	pc = bpf_map_lookup_elem(&proto_stats, &c);
	if (pc) {
		pc->packets += 1;
		pc->bytes += len;
	}

	t = bpf_map_lookup_elem(&totals, &zero);
	if (!t)
		return XDP_PASS;
	__sync_fetch_and_add(&t->packets, 1);
	__sync_fetch_and_add(&t->bytes, len);
	if (len < 60)
		__sync_fetch_and_add(&t->runts, 1);
#if __BPF_CPU_VERSION__ >= 3
	if (c != 0)
		t->last_ip_seq = __sync_fetch_and_add(&t->ip_packets, 1);
	__sync_fetch_and_or(&t->class_mask, 1ULL << c);
	__sync_lock_test_and_set(&t->last_len, len);
	__sync_val_compare_and_swap(&t->first_len, 0, len);
	__sync_fetch_and_xor(&t->len_xor, len);
#else
	if (c != 0) {
		t->last_ip_seq = t->ip_packets;
		__sync_fetch_and_add(&t->ip_packets, 1);
	}
	t->class_mask |= 1ULL << c;
	t->last_len = len;
	if (t->first_len == 0)
		t->first_len = len;
	t->len_xor ^= len;
#endif
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
