// A __kconfig extern: libbpf fills it from the running kernel's config; the
// loader has no such source and must refuse the unresolved symbol.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;

SEC("xdp")
int xdp_kver(struct xdp_md *ctx)
{
	return LINUX_KERNEL_VERSION > 0 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
