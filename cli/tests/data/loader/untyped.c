// Sections whose names declare no program type under libbpf 1.0 (the
// xdp-tutorial / Linux samples style `xdp1`, and Cilium's `2/1`): refused
// unless the user says they are XDP (--type xdp or PROG.o:SECTION), as
// `bpftool prog load untyped.o F type xdp` loads them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp1")
int xdp_drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("2/1")
int tail_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
