/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * hostile.h - shared by the hostile programs in this folder.
 *
 * These programs are ATTACKS on the harness, not examples: each one tries to
 * make xdpqual read or write host memory, crash, hang or exhaust memory. The
 * kernel's verifier refuses most of them; xdpqual must run them anyway (the
 * engine does not rely on the verifier) and turn every attempt into a
 * per-packet fault or a clear refusal. cli/tests/hostile_programs.rs runs
 * each one through every command under a memory and time limit.
 *
 * SELECT: programs that try several attacks pick one per packet from the
 * byte at offset 14 (the first byte after the Ethernet header). The test's
 * capture numbers its frames 0, 1, 2, ... in that byte, so every attack of a
 * program runs once per pass over the capture.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* A value that looks like a host pointer to nobody: if it ever shows up in
 * a report, a program reached it through host memory it should not see. */
#define WILD 0x4141414141414141ULL
#define HUGE64 0xfffffffffffffff8ULL

/* The attack selector: byte 14 of the frame, or -1 when the frame is short.
 * Written so clang keeps the bounds check the verifier wants. */
static __always_inline int selector(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;

	if (data + 15 > end)
		return -1;
	return data[14];
}
