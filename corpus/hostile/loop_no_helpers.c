// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * loop_no_helpers.c - ATTACK: an endless loop with no helper call, so that
 * no helper limit of any backend refuses it first: every backend that runs
 * it must bound it by itself (the engine's instruction budget; rbpf, whose
 * interpreter has no budget, must refuse it or run it in a child with a
 * deadline).
 *
 * Per packet: SELECT (hostile.h) 0..7 loop forever; other frames XDP_PASS.
 * Expected on the engine: a budget fault for frames 0..7; never a hang.
 */
#include "hostile.h"

SEC("xdp")
int loop_no_helpers(struct xdp_md *ctx)
{
	if (selector(ctx) < 8)
		asm volatile("1: goto 1b;");
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
