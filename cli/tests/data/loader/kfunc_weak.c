// A weak kfunc the kernel may lack, called only when the kernel config says
// the feature is built in: the pattern libbpf supports for optional kfuncs.
// Where CONFIG_NF_FLOW_TABLE is unset, libbpf poisons the call
// (tools/lib/bpf/libbpf.c poison_kfunc_call) and the verifier, reading the
// frozen .kconfig map, sees it is dead code; the program passes every frame.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_flowtable_opts { __s32 error; };

extern void *bpf_xdp_flow_lookup(struct xdp_md *, struct bpf_fib_lookup *,
				 struct bpf_flowtable_opts *, __u32) __ksym __weak;
extern _Bool CONFIG_NF_FLOW_TABLE __kconfig __weak;

SEC("xdp")
int xdp_weak(struct xdp_md *ctx)
{
	struct bpf_fib_lookup tuple = { .family = 2 };
	struct bpf_flowtable_opts opts = {};

	if (CONFIG_NF_FLOW_TABLE && bpf_xdp_flow_lookup(ctx, &tuple, &opts, sizeof(opts)))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
