// A strong __ksym variable no kernel has: libbpf refuses to load the object
// ("extern (var ksym) 'xdpqual_no_such_var': not found in kernel BTF").
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const int xdpqual_no_such_var __ksym;

SEC("xdp")
int ksym_missing(struct xdp_md *ctx)
{
	return xdpqual_no_such_var ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
