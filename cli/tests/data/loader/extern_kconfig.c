// A strong __kconfig extern that no kernel config sets: libbpf refuses the
// object ("extern 'CONFIG_XDPQUAL_NEVER_SET' (strong): not resolved",
// tools/lib/bpf/libbpf.c bpf_object__resolve_externs), and so does xdpqual.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_XDPQUAL_NEVER_SET __kconfig;

SEC("xdp")
int xdp_kver(struct xdp_md *ctx)
{
	return CONFIG_XDPQUAL_NEVER_SET > 0 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
