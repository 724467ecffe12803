// bpf_xdp_metadata_rx_hash declared with two arguments; the kernel's takes
// three. libbpf refuses the object ("func_proto ... incompatible",
// tools/lib/bpf/libbpf.c bpf_object__resolve_ksym_func_btf_id).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, __u32 *hash) __ksym;

SEC("xdp")
int xdp_bad_proto(struct xdp_md *ctx)
{
	__u32 hash = 0;

	return bpf_xdp_metadata_rx_hash(ctx, &hash) == 0 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
