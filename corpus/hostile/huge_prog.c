// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * huge_prog.c - ATTACK: a program of 999,999 instructions, one under the
 * kernel's BPF_COMPLEXITY_LIMIT_INSNS for privileged loaders), with a
 * branch and a stack store in every group of three, which makes a JIT's
 * register allocation and block layout work hard.
 *
 * Expected: the engine either refuses it with a clear message or runs it in
 * the interpreter (the JIT's compile bound) within the time limit; each
 * packet returns XDP_PASS (r0 ends at 333,332, then the verdict is set).
 */
#include "hostile.h"

SEC("xdp")
int huge_prog(struct xdp_md *ctx)
{
	asm volatile("r0 = 0;"
		     ".rept 333332\n"
		     "r0 += 1\n"
		     "if r0 > 0x7fffffff goto +0\n"
		     "*(u64 *)(r10 - 8) = r0\n"
		     ".endr\n" ::: "r0", "memory");
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
