// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * names_escape.c - ATTACK: names and program output that try to break the
 * reports and the terminal.
 *
 * - The #line directive below makes the BTF line table name a source file
 *   that holds an ANSI "clear screen", a Markdown heading and table
 *   pipe, and XML/HTML markup; every fault and trace cites that file.
 * - The section name holds a raw ANSI escape, a heading and markup.
 * - CR and LF cannot stand in either (they end the literal): the test puts
 *   them in the object's and the capture's file names instead.
 * - trace_printk emits the same kinds of characters, and NUL.
 * - SELECT 1 faults, so the file name reaches fault messages.
 *
 * Expected: every report stays well-formed (junit.xml parses as XML,
 * summary.md keeps its structure, the dashboard shows the text as text) and
 * no raw control character reaches the terminal.
 */
#include "hostile.h"

#line 1 "[2J # injected | heading </testcase><script>alert(1)</script>.c"
SEC("xdp/[31mred # heading </x>")
int names_escape(struct xdp_md *ctx)
{
	char fmt[] = "\x1b[2J\r\n# printk | </failure><script>x</script>\x01\n";
	int s = selector(ctx);

	bpf_trace_printk(fmt, sizeof(fmt));
	if (s == 1)
		asm volatile("r1 = 0x4141414141414141 ll; r0 = *(u64 *)(r1 + 0);" ::: "r0", "r1");
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
