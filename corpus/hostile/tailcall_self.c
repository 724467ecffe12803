// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * tailcall_self.c - ATTACK: a program that tail-calls itself forever
 * through a PROG_ARRAY initialised with itself (libbpf's static
 * initialisation of a program array).
 *
 * Expected: the kernel stops the chain after MAX_TAIL_CALL_CNT (33) tail
 * calls and the 34th falls through (include/linux/bpf.h); the engine does
 * the same, so every packet returns XDP_DROP, or the object is refused with
 * a clear message if static program-array initialisation is not supported.
 */
#include "hostile.h"

int tailcall_self(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct xdp_md *));
} jmp SEC(".maps") = {
	.values = { [0] = (void *)&tailcall_self },
};

SEC("xdp")
int tailcall_self(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
