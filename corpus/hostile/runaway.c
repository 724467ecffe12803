// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * runaway.c - ATTACK: run forever, recurse without end, or nest bpf_loop.
 *
 * Per packet, by SELECT (hostile.h):
 *   0: an infinite loop (a jump to itself);
 *   1: a BPF-to-BPF function that calls itself without end;
 *   2: bpf_loop(2^23) whose callback calls bpf_loop(2^23): 2^46 iterations;
 *   3: a backward loop of 2^40 iterations with a load in it;
 *   other: XDP_PASS.
 * Expected on the engine: a budget fault (instructions, call depth) for
 * 0..3, never a hang. The kernel's verifier refuses the program.
 */
#include "hostile.h"

/* The recursion without end is the attack. */
#pragma clang diagnostic ignored "-Winfinite-recursion"

static __attribute__((noinline)) int forever(int n)
{
	asm volatile("" ::: "memory");
	return forever(n + 1) + 1;
}

static long inner(__u32 i, void *c)
{
	return 0;
}

static long outer(__u32 i, void *c)
{
	bpf_loop(1 << 23, inner, c, 0);
	return 0;
}

SEC("xdp")
int runaway(struct xdp_md *ctx)
{
	int s = selector(ctx);

	if (s == 0) {
		asm volatile("1: goto 1b;");
	} else if (s == 1) {
		return forever(s);
	} else if (s == 2) {
		bpf_loop(1 << 23, outer, ctx, 0);
	} else if (s == 3) {
		asm volatile("r1 = 0x10000000000 ll;"
			     "1: r0 = *(u64 *)(r10 - 8);"
			     "r1 += -1;"
			     "if r1 != 0 goto 1b;" ::: "r0", "r1", "memory");
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
