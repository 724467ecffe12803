// A kfunc the kernel has (kernel/bpf/helpers.c bpf_rcu_read_lock) but the
// engine does not model: the loader resolves it, the engine refuses the
// program naming the kfunc and the instruction.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

SEC("xdp")
int xdp_unmodelled(struct xdp_md *ctx)
{
	if (ctx->ingress_ifindex == 7)
		return XDP_DROP;
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
