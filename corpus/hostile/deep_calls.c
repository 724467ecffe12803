// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * deep_calls.c - ATTACK: nine nested BPF-to-BPF calls, each with a 448-byte
 * stack buffer: past MAX_CALL_FRAMES (8) and past the 512-byte combined
 * stack the verifier allows.
 *
 * Expected on the engine: a fault when the ninth frame is entered (call
 * depth), never a host stack overflow. The verifier refuses the program.
 */
#include "hostile.h"

#define LEVEL(n, next)                                          \
	static __attribute__((noinline)) int f##n(int x)        \
	{                                                       \
		volatile char b[448];                           \
		b[x & 63] = x;                                  \
		return next(x + 1) + b[(x + 1) & 63];           \
	}

static __attribute__((noinline)) int f9(int x)
{
	volatile char b[448];

	b[x & 63] = x;
	return b[(x + 3) & 63];
}
LEVEL(8, f9)
LEVEL(7, f8)
LEVEL(6, f7)
LEVEL(5, f6)
LEVEL(4, f5)
LEVEL(3, f4)
LEVEL(2, f3)
LEVEL(1, f2)

SEC("xdp")
int deep_calls(struct xdp_md *ctx)
{
	return f1(selector(ctx)) ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
