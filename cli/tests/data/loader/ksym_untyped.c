// Untyped and weak absent __ksym variables only: what this machine's kernel
// accepts. (Its kallsyms lists no data symbols, CONFIG_KALLSYMS_ALL being
// off, so the verifier refuses any typed variable: kernel/bpf/verifier.c
// __check_pseudo_btf_id, "ldimm64 failed to find the address for kernel
// symbol".) Verdict by the first byte after the Ethernet header:
//   0: a weak typed variable the kernel lacks: bpf_ksym_exists -> 0, PASS
//   1: a weak untyped symbol the kernel lacks: -> 0, PASS
//   2: an untyped symbol the kernel has (schedule): non-zero address, TX
//   3: the address's low 12 bits are those of /proc/kallsyms' address
//      (compared with the value in the second and third bytes): TX, else DROP
//   else PASS
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define bpf_ksym_exists(sym) ({ \
	_Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak"); \
	!!sym; })

extern const void schedule __ksym __weak;
extern const int xdpqual_absent_var __ksym __weak;
extern const void xdpqual_absent_sym __ksym __weak;

SEC("xdp")
int ksym_untyped(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if ((void *)(p + 17) > end)
		return XDP_ABORTED;
	switch (p[14]) {
	case 0:
		return bpf_ksym_exists(&xdpqual_absent_var) ? XDP_DROP : XDP_PASS;
	case 1:
		return bpf_ksym_exists(&xdpqual_absent_sym) ? XDP_DROP : XDP_PASS;
	case 2:
		return bpf_ksym_exists(&schedule) ? XDP_TX : XDP_DROP;
	case 3:
		return ((unsigned long)&schedule & 0xfff) == (p[15] | (p[16] << 8)) ?
			XDP_TX : XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
