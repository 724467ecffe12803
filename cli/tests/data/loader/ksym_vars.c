// __ksym variables of every kind, with a verdict chosen by the first two
// bytes after the Ethernet header (sel, arg):
//   sel 0: a weak typed variable the kernel lacks: bpf_ksym_exists -> 0, PASS
//   sel 1: a weak untyped symbol the kernel lacks: -> 0, PASS
//   sel 2: an untyped symbol the kernel has (schedule; kernels built without
//          CONFIG_KALLSYMS_ALL list only functions in kallsyms): its address,
//          non-zero, TX
//   sel 3: bpf_per_cpu_ptr(&this_cpu_off, arg): NULL when arg >= the number
//          of possible CPUs (DROP), else TX
//   sel 4: the value of this_cpu_off on this CPU (bpf_this_cpu_ptr): TX when
//          non-zero. The kernel's is the CPU's per-CPU offset, non-zero on an
//          SMP x86-64 kernel; the engine cannot know it and reads 0 (DROP),
//          so the run is nondeterministic.
//   sel 5: the same through bpf_per_cpu_ptr(&this_cpu_off, 0).
//   else : PASS
// this_cpu_off is a per-CPU variable (vmlinux BTF lists it in .data..percpu).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// libbpf's bpf_ksym_exists (bpf_helpers.h of libbpf 1.2+); this machine's
// header predates it.
#define bpf_ksym_exists(sym) ({ \
	_Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak"); \
	!!sym; })

extern const unsigned long this_cpu_off __ksym;
extern const void schedule __ksym __weak;
extern const int xdpqual_absent_var __ksym __weak;
extern const void xdpqual_absent_sym __ksym __weak;

SEC("xdp")
int ksym_vars(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	const unsigned long *v;

	if ((void *)(p + 16) > end)
		return XDP_ABORTED;
	switch (p[14]) {
	case 0:
		return bpf_ksym_exists(&xdpqual_absent_var) ? XDP_DROP : XDP_PASS;
	case 1:
		return bpf_ksym_exists(&xdpqual_absent_sym) ? XDP_DROP : XDP_PASS;
	case 2:
		return bpf_ksym_exists(&schedule) ? XDP_TX : XDP_DROP;
	case 3:
		return bpf_per_cpu_ptr(&this_cpu_off, p[15]) ? XDP_TX : XDP_DROP;
	case 4:
		v = bpf_this_cpu_ptr(&this_cpu_off);
		return *v ? XDP_TX : XDP_DROP;
	case 5:
		v = bpf_per_cpu_ptr(&this_cpu_off, 0);
		if (!v)
			return XDP_ABORTED;
		return *v ? XDP_TX : XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
