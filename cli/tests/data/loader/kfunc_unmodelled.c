// A kfunc the kernel has (kernel/bpf/helpers.c bpf_dynptr_from_xdp is in
// net/core/filter.c) but the engine does not model: the loader resolves it,
// the engine refuses the program naming the kfunc and the instruction.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_dynptr_from_xdp(struct xdp_md *x, __u64 flags, struct bpf_dynptr *ptr) __ksym;

SEC("xdp")
int xdp_unmodelled(struct xdp_md *ctx)
{
	struct bpf_dynptr ptr;

	return bpf_dynptr_from_xdp(ctx, 0, &ptr) == 0 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
