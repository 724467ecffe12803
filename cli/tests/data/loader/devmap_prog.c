// Programs run by DEVMAP and CPUMAP entries (libbpf: `xdp/devmap` loads
// with expected_attach_type BPF_XDP_DEVMAP, `xdp/cpumap` with
// BPF_XDP_CPUMAP). Only a devmap program may read `egress_ifindex`
// (net/core/filter.c xdp_is_valid_access), so the kernel's verifier
// accepts this one only with the devmap attach type. BPF_PROG_TEST_RUN
// refuses both attach types (net/bpf/test_run.c bpf_prog_test_run_xdp:
// -EINVAL).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp/devmap")
int on_egress(struct xdp_md *ctx)
{
	return ctx->egress_ifindex == 7 ? XDP_DROP : XDP_PASS;
}

SEC("xdp/cpumap")
int on_cpu(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
