// Conntrack zones, the 12-byte options, netns ids and the default timeout
// of bpf_xdp_ct_alloc, on IPv4 UDP packets. Each packet's observations go
// to the array map `zlog`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct nf_conn {
	unsigned long status;
	__u32 mark;
} __attribute__((preserve_access_index));
struct nf_conn___init {
	struct nf_conn ct;
} __attribute__((preserve_access_index));

struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u16 ct_zone_id;
	__u8 ct_zone_dir;
	__u8 reserved[3];
};

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *, struct bpf_sock_tuple *, __u32,
					 struct bpf_ct_opts *, __u32) __ksym;
extern struct nf_conn___init *bpf_xdp_ct_alloc(struct xdp_md *, struct bpf_sock_tuple *, __u32,
					       struct bpf_ct_opts *, __u32) __ksym;
extern struct nf_conn *bpf_ct_insert_entry(struct nf_conn___init *) __ksym;
extern void bpf_ct_release(struct nf_conn *) __ksym;
extern int bpf_ct_set_status(const struct nf_conn___init *, __u32) __ksym;

struct zrec {
	__s32 zone5_err;      // lookup in zone 5 (both directions)
	__u32 zone5_dir;      // its opts.ct_zone_dir afterwards
	__u32 zone5_status;   // status when found
	__u32 inserted;       // 1 when this packet inserted a connection
	__u32 ins_status;
	__s32 dflt_err;       // lookup in the default zone, opts__sz 12
	__s32 orig_only_err;  // zone 5 for the original direction only
	__u32 orig_only_dir;
	__s32 reply_only_err; // the reversed tuple, zone 5 for the original only
	__s32 netns0_err;     // netns_id 0
	__s32 netns_bad_err;  // netns_id -2
	__s32 reserved_err;   // opts__sz 16 with reserved[1] set
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct zrec);
} zlog SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} zcount SEC(".maps");

static __always_inline __s32 probe(struct xdp_md *ctx, struct bpf_sock_tuple *t,
				   struct bpf_ct_opts *o, __u32 sz, __u32 *dir)
{
	struct nf_conn *c = bpf_xdp_ct_lookup(ctx, t, sizeof(t->ipv4), o, sz);
	if (c) {
		*dir = o->dir;
		bpf_ct_release(c);
		return 1;
	}
	return o->error;
}

SEC("xdp")
int zones(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return XDP_PASS;
	__u32 zero = 0, dummy = 0;
	__u32 *n = bpf_map_lookup_elem(&zcount, &zero);
	if (!n)
		return XDP_ABORTED;
	__u32 idx = *n;
	*n = idx + 1;
	struct zrec *r = bpf_map_lookup_elem(&zlog, &idx);
	if (!r)
		return XDP_ABORTED;
	struct bpf_sock_tuple t = {}, rev = {};
	t.ipv4.saddr = ip->saddr;
	t.ipv4.daddr = ip->daddr;
	t.ipv4.sport = udp->source;
	t.ipv4.dport = udp->dest;
	rev.ipv4.saddr = ip->daddr;
	rev.ipv4.daddr = ip->saddr;
	rev.ipv4.sport = udp->dest;
	rev.ipv4.dport = udp->source;

	struct bpf_ct_opts o = { .netns_id = -1, .l4proto = IPPROTO_UDP, .ct_zone_id = 5 };
	struct nf_conn *c = bpf_xdp_ct_lookup(ctx, &t, sizeof(t.ipv4), &o, sizeof(o));
	r->zone5_err = o.error;
	r->zone5_dir = o.ct_zone_dir;
	int action = XDP_TX;
	if (c) {
		r->zone5_status = c->status;
		bpf_ct_release(c);
	} else {
		struct bpf_ct_opts a = { .netns_id = -1, .l4proto = IPPROTO_UDP, .ct_zone_id = 5 };
		struct nf_conn___init *ni = bpf_xdp_ct_alloc(ctx, &t, sizeof(t.ipv4), &a, sizeof(a));
		if (!ni)
			return XDP_ABORTED;
		// No bpf_ct_set_timeout: the allocation's 10 s stand.
		bpf_ct_set_status(ni, 4);
		struct nf_conn *ins = bpf_ct_insert_entry(ni);
		if (ins) {
			r->inserted = 1;
			r->ins_status = ins->status;
			bpf_ct_release(ins);
		}
		action = XDP_PASS;
	}
	struct bpf_ct_opts d = { .netns_id = -1, .l4proto = IPPROTO_UDP };
	r->dflt_err = probe(ctx, &t, &d, 12, &dummy);
	struct bpf_ct_opts oo = { .netns_id = -1, .l4proto = IPPROTO_UDP, .ct_zone_id = 5,
				  .ct_zone_dir = 1 };
	r->orig_only_err = probe(ctx, &t, &oo, sizeof(oo), &r->orig_only_dir);
	struct bpf_ct_opts ro = { .netns_id = -1, .l4proto = IPPROTO_UDP, .ct_zone_id = 5,
				  .ct_zone_dir = 1 };
	r->reply_only_err = probe(ctx, &rev, &ro, sizeof(ro), &dummy);
	struct bpf_ct_opts n0 = { .netns_id = 0, .l4proto = IPPROTO_UDP };
	r->netns0_err = probe(ctx, &t, &n0, sizeof(n0), &dummy);
	struct bpf_ct_opts nb = { .netns_id = -2, .l4proto = IPPROTO_UDP };
	r->netns_bad_err = probe(ctx, &t, &nb, sizeof(nb), &dummy);
	struct bpf_ct_opts rs = { .netns_id = -1, .l4proto = IPPROTO_UDP };
	rs.reserved[1] = 1;
	r->reserved_err = probe(ctx, &t, &rs, sizeof(rs), &dummy);
	return action;
}

char _license[] SEC("license") = "GPL";
