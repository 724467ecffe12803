// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * wild_memory.c - ATTACK: loads, stores and atomics through addresses no
 * region owns, and through pointers with a forged region.
 *
 * Per packet, by SELECT (hostile.h):
 *   0: load u64 from 0x4141414141414141;
 *   1: store to 0x4141414141414141;
 *   2: load from a kernel text address (0xffffffff81000000);
 *   3: load from address 0x1000 (low user memory);
 *   4: forge: r10 with bit 62 flipped (another "region"), then load;
 *   5: forge: packet pointer + 2^40 (the next engine region), then store;
 *   6: stack: read 8 bytes at r10 - 520 (below the 512-byte frame);
 *   7: stack: write 8 bytes at r10 + 8 (above the frame);
 *   8: ctx: write ctx->data (the verifier forbids ctx writes);
 *   9: ctx: read 8 bytes at ctx + 200 (past struct xdp_md);
 *  10: atomic add at 0x4141414141414141;
 *  11: atomic cmpxchg on ctx;
 *  12: read 1 byte past data_end, no bounds check;
 *  13: read 8 bytes at data - 300 (before the headroom);
 *  other: XDP_PASS.
 * Expected on the engine: a fault naming the region/address for 0..13, the
 * same in interpreter and JIT. The kernel's verifier refuses the program.
 */
#include "hostile.h"

SEC("xdp")
int wild_memory(struct xdp_md *ctx)
{
	int s = selector(ctx);

	switch (s) {
	case 0:
		asm volatile("r1 = 0x4141414141414141 ll; r0 = *(u64 *)(r1 + 0);" ::: "r0", "r1");
		break;
	case 1:
		asm volatile("r1 = 0x4141414141414141 ll; *(u64 *)(r1 + 0) = r1;" ::: "r1", "memory");
		break;
	case 2:
		asm volatile("r1 = 0xffffffff81000000 ll; r0 = *(u64 *)(r1 + 0);" ::: "r0", "r1");
		break;
	case 3:
		asm volatile("r1 = 0x1000; r0 = *(u64 *)(r1 + 0);" ::: "r0", "r1");
		break;
	case 4:
		asm volatile("r1 = r10; r2 = 0x4000000000000000 ll; r1 ^= r2;"
			     "r0 = *(u64 *)(r1 - 8);" ::: "r0", "r1", "r2");
		break;
	case 5:
		asm volatile("r1 = *(u32 *)(%[c] + 0); r2 = 0x10000000000 ll; r1 += r2;"
			     "*(u8 *)(r1 + 0) = r2;" :: [c] "r"(ctx) : "r1", "r2", "memory");
		break;
	case 6:
		asm volatile("r0 = *(u64 *)(r10 - 520);" ::: "r0");
		break;
	case 7:
		asm volatile("r1 = 7; *(u64 *)(r10 + 8) = r1;" ::: "r1", "memory");
		break;
	case 8:
		asm volatile("r1 = 0; *(u32 *)(%[c] + 0) = r1;" :: [c] "r"(ctx) : "r1", "memory");
		break;
	case 9:
		asm volatile("r0 = *(u64 *)(%[c] + 200);" :: [c] "r"(ctx) : "r0");
		break;
	case 10:
		asm volatile("r1 = 0x4141414141414141 ll; r2 = 1;"
			     "lock *(u64 *)(r1 + 0) += r2;" ::: "r1", "r2", "memory");
		break;
	case 11:
		asm volatile("r0 = 0; r2 = 5; r0 = cmpxchg_64(%[c] + 0, r0, r2);"
			     :: [c] "r"(ctx) : "r0", "r2", "memory");
		break;
	case 12:
		asm volatile("r1 = *(u32 *)(%[c] + 4); r0 = *(u8 *)(r1 + 0);"
			     :: [c] "r"(ctx) : "r0", "r1");
		break;
	case 13:
		asm volatile("r1 = *(u32 *)(%[c] + 0); r0 = *(u64 *)(r1 - 300);"
			     :: [c] "r"(ctx) : "r0", "r1");
		break;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
