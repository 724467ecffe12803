// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * jit_bomb.c - ATTACK: 60,000 instructions of forward branches and memory
 * operations, a size that the kernel's verifier accepts in principle and
 * that took Cranelift over a minute and a gigabyte to compile.
 *
 * Expected: the engine runs it (in the interpreter above its JIT compile
 * bound, saying so) within the time limit; every packet returns XDP_PASS.
 */
#include "hostile.h"

SEC("xdp")
int jit_bomb(struct xdp_md *ctx)
{
	asm volatile("r0 = 0; r1 = 0;"
		     "*(u64 *)(r10 - 8) = r0;"
		     ".rept 15000\n"
		     "r1 = *(u64 *)(r10 - 8)\n"
		     "if r1 > 3 goto +1\n"
		     "r1 += 1\n"
		     "*(u64 *)(r10 - 8) = r1\n"
		     ".endr\n" ::: "r0", "r1", "memory");
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
