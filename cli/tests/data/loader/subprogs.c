// BPF-to-BPF calls: __noinline subprograms in .text shared by two XDP
// programs (one xdp.frags), plus a non-XDP program the loader must skip.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__noinline int classify(__u64 len)
{
	if (len < 64)
		return XDP_DROP;
	return XDP_PASS;
}

__noinline int weigh(struct xdp_md *ctx)
{
	__u64 len = ctx->data_end - ctx->data;

	return classify(len + 14); /* CALL_CLASSIFY */
}

SEC("xdp")
int xdp_main(struct xdp_md *ctx)
{
	return weigh(ctx);
}

SEC("xdp.frags")
int xdp_frags(struct xdp_md *ctx)
{
	int v = classify(ctx->data_end - ctx->data);

	return v == XDP_PASS ? weigh(ctx) : v;
}

SEC("socket")
int sock_filter(struct __sk_buff *skb)
{
	return classify(skb->len);
}

char _license[] SEC("license") = "GPL";
