// A typed __ksym variable that is not per-CPU, resolved against
// ksym_target.btf (built from ksym_target.c: this machine's vmlinux BTF
// describes only per-CPU variables). The verifier makes it read-only
// memory of 8 bytes (kernel/bpf/verifier.c __check_pseudo_btf_id).
//   first byte after the Ethernet header 1: writes it (the kernel refuses
//                                           the program; the engine faults)
//   otherwise: DROP when it reads non-zero, else PASS
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const unsigned long jiffies __ksym;

SEC("xdp")
int ksym_plain(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if ((void *)(p + 15) > end)
		return XDP_ABORTED;
	if (p[14] == 1) {
		*(volatile unsigned long *)&jiffies = 1;
		return XDP_TX;
	}
	return jiffies ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
