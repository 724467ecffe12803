// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * v4ops.c - arithmetic on packet bytes that makes the -mcpu=v4 build use the
 * ISA v4 instructions: sign-extending loads (LDSX), sign-extending moves
 * (MOVSX), signed division and modulo (SDIV/SMOD, 64- and 32-bit) and
 * unconditional byte swaps (BSWAP 16/32/64).
 *
 * SHOWS: the same C compiled three ways. Before v4 there is no signed
 * division in BPF (clang refuses it), so the v2/v3 builds use the
 * unsigned-division fallbacks below, which give the same results; loads and
 * moves are sign-extended with shifts and bytes are swapped with the
 * endianness instructions. All three builds must give identical verdicts
 * and packets. Not exercised: gotol (needs a jump over more than 32767
 * instructions). No maps.
 *
 * PROGRAM: section "xdp", function xdp_v4ops.
 *
 * WHAT IT DOES (offsets from frame start; L = frame length; all loads are
 * little-endian, as on the little-endian BPF target these objects are for;
 * "/" and "%" truncate toward zero, the remainder taking the sign of the
 * dividend, as in C):
 *   1. L < 30                                                 -> XDP_DROP.
 *   2. a = byte 14 as s8;             b = bytes 16..18 as s16 (LE);
 *      c = bytes 18..22 as s32 (LE);  e = byte 15 as s8.
 *   3. q = (s64)c / (s64)(a | 1)           (64-bit signed division; the
 *                                           divisor is odd, never 0)
 *      r = (s32)b % (s32)(e | 1)           (32-bit signed modulo)
 *      m = (s64)(s8)(q & 0xFF)             (low byte of q sign-extended)
 *   4. rewrite (all reads above happen first):
 *      bytes 16..18 := (u16)r   big-endian
 *      bytes 18..22 := (u32)m   big-endian
 *      bytes 22..30 := (u64)q   big-endian
 *      (bytes 14 and 15 and everything else are unchanged)
 *   5. r < 0 -> XDP_TX, otherwise -> XDP_PASS.
 *   Worked example: bytes 14..22 = fd 03 f6 ff 64 00 00 00: a = -3, e = 3,
 *   b = -10, c = 100; q = 100 / -3 = -33, r = -10 % 3 = -1, m = -33;
 *   bytes 16..30 become ff ff | ff ff ff df | ff ff ff ff ff ff ff df;
 *   verdict XDP_TX.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#if __BPF_CPU_VERSION__ >= 4
static __always_inline __s64 sdiv64(__s64 x, __s64 y)
{
	return x / y;
}

static __always_inline __s32 smod32(__s32 x, __s32 y)
{
	return x % y;
}
#else
/* Same results as C's "/" and "%" for the operand ranges used here (no
 * INT_MIN / -1), built on unsigned division. */
static __always_inline __s64 sdiv64(__s64 x, __s64 y)
{
	__u64 ux = x < 0 ? -(__u64)x : (__u64)x;
	__u64 uy = y < 0 ? -(__u64)y : (__u64)y;
	__u64 q = ux / uy;

	return (x < 0) != (y < 0) ? -(__s64)q : (__s64)q;
}

static __always_inline __s32 smod32(__s32 x, __s32 y)
{
	__u32 ux = x < 0 ? -(__u32)x : (__u32)x;
	__u32 uy = y < 0 ? -(__u32)y : (__u32)y;
	__u32 r = ux % uy;

	return x < 0 ? -(__s32)r : (__s32)r;
}
#endif

SEC("xdp")
int xdp_v4ops(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__s64 q, m;
	__s32 r;
	__s8 a, e;
	__s16 b;
	__s32 c;

	if (data + 30 > data_end)
		return XDP_DROP;
	a = *(volatile __s8 *)(data + 14);
	e = *(volatile __s8 *)(data + 15);
	b = *(volatile __s16 *)(data + 16);
	c = *(volatile __s32 *)(data + 18);

	q = sdiv64((__s64)c, (__s64)(a | 1));
	r = smod32((__s32)b, (__s32)(e | 1));
	m = (__s64)(__s8)(q & 0xFF);

	*(__u16 *)(data + 16) = __builtin_bswap16((__u16)r);
	*(__u32 *)(data + 18) = __builtin_bswap32((__u32)m);
	*(__u64 *)(data + 22) = __builtin_bswap64((__u64)q);
	return r < 0 ? XDP_TX : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
