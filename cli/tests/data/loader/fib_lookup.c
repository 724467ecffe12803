// bpf_fib_lookup (helper 69) driven by the frame, for cli/tests/fib_lookup.rs.
//
// Frames shorter than 108 bytes, and frames that are neither IPv4 nor IPv6
// (ethertype at 12), get XDP_PASS untouched. Otherwise the lookup's inputs
// come from the frame:
//   family, l4_protocol, src, dst  from the IPv4 / IPv6 header at 14;
//   tos (IPv4)                     the header's TOS byte;
//   tot_len                        IPv4 total length, or IPv6 payload
//                                  length + 40;
//   ifindex                        the source MAC's byte 5 (frame byte 11);
//   flags                          the source MAC's byte 4 (frame byte 10);
//   tbid                           the source MAC's byte 3 (frame byte 9),
//                                  when non-zero.
// The struct's other bytes are zero. After the call, 44 bytes record what
// the helper returned and wrote, at frame offset 64:
//   64 return value (s32)   68 ifindex (u32)     72 rt_metric (u32)
//   76 mtu_result (u16)     78 family (u8)       79 zero
//   80 ipv4_dst or ipv6_dst (16 bytes; IPv4 uses the first 4, rest zero)
//   96 smac (6)             102 dmac (6)
// and the verdict follows the return value:
//   0 (SUCCESS): Ethernet destination := dmac, source := smac; XDP_TX when
//     the output ifindex is the input one, else bpf_redirect(ifindex, 0)
//     (XDP_REDIRECT);
//   1, 2, 3 (blackhole, unreachable, prohibit) and 8 (FRAG_NEEDED): XDP_DROP;
//   negative (an argument error): XDP_ABORTED;
//   any other (NOT_FWDED, FWD_DISABLED, NO_NEIGH, ...): XDP_PASS.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10

SEC("xdp")
int fib_lookup(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpf_fib_lookup p;
	__u8 *rec = (__u8 *)data + 64;
	__u32 in, flags;
	long rc;

	if (data + 108 > end)
		return XDP_PASS;
	__builtin_memset(&p, 0, sizeof(p));
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + 14;

		p.family = AF_INET;
		p.tos = ip->tos;
		p.l4_protocol = ip->protocol;
		p.tot_len = bpf_ntohs(ip->tot_len);
		p.ipv4_src = ip->saddr;
		p.ipv4_dst = ip->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + 14;

		p.family = AF_INET6;
		p.l4_protocol = ip6->nexthdr;
		p.tot_len = bpf_ntohs(ip6->payload_len) + 40;
		__builtin_memcpy(p.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(p.ipv6_dst, &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}
	in = eth->h_source[5];
	p.ifindex = in;
	flags = eth->h_source[4];
	if (eth->h_source[3])
		p.tbid = eth->h_source[3];

	rc = bpf_fib_lookup(ctx, &p, sizeof(p), flags);

	*(__s32 *)(rec + 0) = (__s32)rc;
	*(__u32 *)(rec + 4) = p.ifindex;
	*(__u32 *)(rec + 8) = p.rt_metric;
	*(__u16 *)(rec + 12) = p.mtu_result;
	rec[14] = p.family;
	rec[15] = 0;
	__builtin_memcpy(rec + 16, p.ipv6_dst, 16);
	__builtin_memcpy(rec + 32, p.smac, 6);
	__builtin_memcpy(rec + 38, p.dmac, 6);

	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(eth->h_dest, p.dmac, 6);
		__builtin_memcpy(eth->h_source, p.smac, 6);
		if (p.ifindex == in)
			return XDP_TX;
		return bpf_redirect(p.ifindex, 0);
	}
	if (rc < 0)
		return XDP_ABORTED;
	if (rc == BPF_FIB_LKUP_RET_BLACKHOLE || rc == BPF_FIB_LKUP_RET_UNREACHABLE ||
	    rc == BPF_FIB_LKUP_RET_PROHIBIT || rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
