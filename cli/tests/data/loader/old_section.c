// Pre-libbpf-1.0 section name: "xdp_prog" is not a program type libbpf or
// the loader knows, so loading must fail naming the section.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp_prog")
int xdp_old(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
