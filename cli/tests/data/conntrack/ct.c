// Conntrack kfuncs against the table of the namespace the program runs in:
// looks each IPv4 TCP packet's tuple up; a miss on a SYN allocates and
// inserts a connection, a hit reads status and mark, bumps the mark and
// changes timeout and status. What each packet saw goes to the array map
// `ct_log`, one record per packet, so that the diff compares it.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
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
extern void bpf_ct_set_timeout(struct nf_conn___init *, __u32) __ksym;
extern int bpf_ct_change_timeout(struct nf_conn *, __u32) __ksym;
extern int bpf_ct_set_status(const struct nf_conn___init *, __u32) __ksym;
extern int bpf_ct_change_status(struct nf_conn *, __u32) __ksym;

#define IPS_SEEN_REPLY 2
#define IPS_ASSURED 4

struct rec {
	__s32 lookup_err;  // opts.error after the lookup (-2 on a miss)
	__u32 found;       // 1 when the lookup found a connection
	__u32 dir;         // opts.dir on a hit
	__u32 zone_dir;    // opts.ct_zone_dir after the lookup (0 written as 3)
	__u32 status;      // ct->status (low 32 bits) on a hit
	__u32 mark;        // ct->mark on a hit, before the program bumps it
	__s32 change_timeout_rc;
	__s32 change_status_rc;   // setting ASSURED
	__s32 clear_assured_rc;   // clearing ASSURED again: -EBUSY
	__s32 set_status_rc;      // on a new connection
	__u32 inserted;           // 1 inserted, 2 insert refused (exists)
	__u32 ins_status;         // status after insertion
	__s32 probe_tuple_err;    // lookup with a 10-byte tuple: -EAFNOSUPPORT
	__s32 probe_proto_err;    // lookup with l4proto ICMP: -EPROTO
	__s32 probe_size_err;     // opts__sz 12 with ct_zone_id set: -EINVAL
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct rec);
} ct_log SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ct_count SEC(".maps");

SEC("xdp")
int ct(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return XDP_PASS;

	__u32 zero = 0;
	__u32 *n = bpf_map_lookup_elem(&ct_count, &zero);
	if (!n)
		return XDP_ABORTED;
	__u32 idx = *n;
	*n = idx + 1;
	struct rec *r = bpf_map_lookup_elem(&ct_log, &idx);
	if (!r)
		return XDP_ABORTED;

	struct bpf_sock_tuple t = {};
	t.ipv4.saddr = ip->saddr;
	t.ipv4.daddr = ip->daddr;
	t.ipv4.sport = tcp->source;
	t.ipv4.dport = tcp->dest;
	struct bpf_ct_opts o = { .netns_id = -1, .l4proto = IPPROTO_TCP };

	struct bpf_ct_opts p = { .netns_id = -1, .l4proto = IPPROTO_TCP };
	struct nf_conn *x = bpf_xdp_ct_lookup(ctx, &t, 10, &p, sizeof(p));
	if (x)
		bpf_ct_release(x);
	r->probe_tuple_err = p.error;
	struct bpf_ct_opts q = { .netns_id = -1, .l4proto = IPPROTO_ICMP };
	x = bpf_xdp_ct_lookup(ctx, &t, sizeof(t.ipv4), &q, sizeof(q));
	if (x)
		bpf_ct_release(x);
	r->probe_proto_err = q.error;
	struct bpf_ct_opts s = { .netns_id = -1, .l4proto = IPPROTO_TCP, .ct_zone_id = 1 };
	x = bpf_xdp_ct_lookup(ctx, &t, sizeof(t.ipv4), &s, 12);
	if (x)
		bpf_ct_release(x);
	r->probe_size_err = s.error;

	struct nf_conn *c = bpf_xdp_ct_lookup(ctx, &t, sizeof(t.ipv4), &o, sizeof(o));
	r->lookup_err = o.error;
	r->zone_dir = o.ct_zone_dir;
	int action = XDP_DROP;
	if (c) {
		r->found = 1;
		r->dir = o.dir;
		__u32 status = c->status;
		r->status = status;
		r->mark = c->mark;
		c->mark = c->mark + 1;
		r->change_timeout_rc = bpf_ct_change_timeout(c, 60000);
		r->change_status_rc = bpf_ct_change_status(c, status | IPS_ASSURED);
		r->clear_assured_rc = bpf_ct_change_status(c, status & ~IPS_ASSURED);
		bpf_ct_release(c);
		action = XDP_TX;
	}
	if (tcp->syn) {
		struct bpf_ct_opts a = { .netns_id = -1, .l4proto = IPPROTO_TCP };
		struct nf_conn___init *ni = bpf_xdp_ct_alloc(ctx, &t, sizeof(t.ipv4), &a, sizeof(a));
		if (!ni)
			return XDP_ABORTED;
		bpf_ct_set_timeout(ni, 30000);
		r->set_status_rc = bpf_ct_set_status(ni, IPS_SEEN_REPLY);
		struct nf_conn *ins = bpf_ct_insert_entry(ni);
		if (ins) {
			r->inserted = 1;
			r->ins_status = ins->status;
			ins->mark = 42;
			bpf_ct_release(ins);
		} else {
			r->inserted = 2;
		}
		if (action == XDP_DROP)
			action = XDP_PASS;
	}
	return action;
}

char _license[] SEC("license") = "GPL";
