// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * pointer_leak.c - ATTACK: copy pointer values into places a report shows.
 *
 * Per packet, by SELECT (hostile.h):
 *   0: write r10 (the frame pointer) into packet bytes 16..24;
 *   1: write r1 (the ctx pointer) into packet bytes 16..24;
 *   2: write ctx->data (a packet pointer) into packet bytes 16..24;
 *   3: return r10 as the verdict (its low 32 bits);
 *   other: XDP_PASS untouched.
 * Expected: wherever this runs, what appears is the backend's OWN address
 * for that pointer: an engine address (a region tag in bits 40+) for the
 * engine, the kernel's own (which test-run returns) for the host kernel, and
 * never an address of the xdpqual process. rbpf, whose r10 and r1 are host
 * addresses, must refuse such a program. (No helper is called, so that rbpf's
 * own helper limits do not refuse it first.)
 */
#include "hostile.h"

SEC("xdp")
int pointer_leak(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;
	int s = selector(ctx);

	if (data + 24 > end)
		return XDP_PASS;
	if (s == 0) {
		asm volatile("*(u64 *)(%[p] + 16) = r10;" :: [p] "r"(data) : "memory");
	} else if (s == 1) {
		*(unsigned long long *)(data + 16) = (unsigned long long)(long)ctx;
	} else if (s == 2) {
		*(unsigned long long *)(data + 16) = (unsigned long long)(long)data;
	} else if (s == 3) {
		unsigned long long fp;

		asm volatile("%[fp] = r10;" : [fp] "=r"(fp));
		return (int)fp;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
