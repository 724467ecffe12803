// A deliberately broken XDP program for the qualify gate test: it reads the
// packet without checking data_end, which the kernel verifier refuses
// ("invalid access to packet").
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_broken(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	return data[12] == 0x08 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
