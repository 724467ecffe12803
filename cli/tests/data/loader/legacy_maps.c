// Legacy map definitions: struct bpf_map_def in SEC("maps"), as old
// samples/bpf and iproute2 programs wrote them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def_legacy {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def_legacy blocklist SEC("maps") = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 256,
	.map_flags = BPF_F_NO_PREALLOC,
};

struct bpf_map_def_legacy tx_ports SEC("maps") = {
	.type = BPF_MAP_TYPE_DEVMAP,
	.key_size = 4,
	.value_size = 4,
	.max_entries = 8,
	.map_flags = 0,
};

SEC("xdp")
int xdp_legacy(struct xdp_md *ctx)
{
	__u32 key = ctx->rx_queue_index;
	__u64 *hits = bpf_map_lookup_elem(&blocklist, &key);

	if (hits) {
		*hits += 1;
		return XDP_DROP;
	}
	return bpf_redirect_map(&tx_ports, 0, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
