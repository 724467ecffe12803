// One program that uses every loader feature `inspect` reports (issue 14,
// "Done when"): its section's type (`xdp`: CO-RE relocations in a section
// loaded as XDP under another name are refused, see design.md), a CO-RE
// relocation (a field of
// xdp_md___ev, matched to the kernel's struct xdp_md by essential name), a
// kfunc (bpf_xdp_metadata_rx_hash), an untyped __ksym variable (schedule,
// from kallsyms) and a map-in-map whose inner-map template comes from BTF
// with a statically filled slot. For cli/tests/inspect_cli.rs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum xdp_rss_hash_type { XDP_RSS_TYPE_NONE = 0 };

extern int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, __u32 *hash,
				    enum xdp_rss_hash_type *rss_type) __ksym;
extern const void schedule __ksym __weak;

struct xdp_md___ev {
	__u32 rx_queue_index;
} __attribute__((preserve_access_index));

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &counts },
};

SEC("xdp")
int xdp_everything(struct xdp_md *ctx)
{
	__u32 q = ((struct xdp_md___ev *)ctx)->rx_queue_index;
	__u32 hash = 0, k = 0;
	enum xdp_rss_hash_type type;
	__u64 *v;
	void *m;

	if (bpf_xdp_metadata_rx_hash(ctx, &hash, &type) == 0 && hash == q)
		return XDP_DROP;
	if (!&schedule)
		return XDP_ABORTED;
	m = bpf_map_lookup_elem(&outer, &k);
	if (m) {
		v = bpf_map_lookup_elem(m, &k);
		if (v)
			*v += 1;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
