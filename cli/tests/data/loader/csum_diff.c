// bpf_csum_diff (helper 28) cases, each result written into the frame as a
// u32 at byte 4*i, so replay shows them and the diff compares them with the
// kernel. The helper changed in Linux 6.13 (commit 6a4794d5a3e2,
// net/core/filter.c): it now folds its result with csum_from32to16 and
// accepts sizes that are not multiples of 4. Worked out by hand from
// arch/x86/lib/csum-partial_64.c (a 64-bit end-around-carry sum of
// little-endian 8-byte words, a short tail zero-padded, finished as
// (t + ror64(t, 32)) >> 32), with b = 01 02 03 04 05 06 07 08:
//
//   case                               6.13 and later   up to 6.12
//   0: to = b[0..8], seed 0            0x1410           0x0c0a0806
//   1: from = b[0..4], to = b[4..8]    0x0808           0x04040404
//   2: from = b[0..4] only             0xf9fb           0xfbfcfdfe
//   3: to = b[0..3] (3 bytes)          0x0204           -EINVAL
//   4: to = b[0..8], seed 0xffff0000   0x1410           0x0c090807
//
// 6.13+: csum_partial(to, seed) gives 0x0c0a0806 for case 0; folded:
// 0x0806 + 0x0c0a = 0x1410. Case 1: csum_sub(0x08070605, 0x04030201) =
// 0x08070605 + 0xfbfcfdfe = 0x1_04040403 -> 0x04040404 -> 0x0808. Case 2:
// ~csum_partial(from, ~0) = ~0x04030201 = 0xfbfcfdfe -> 0xfdfe + 0xfbfc =
// 0x1f9fa -> 0xf9fb. Case 3: 0x00030201 -> 0x0204. Case 4: the seed adds
// 0xffff0000 to the first word: 0x0807060604020201 -> 0x0c090807 -> 0x1410.
// Up to 6.12 the helper sums ~from then to in one buffer, unfolded.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int csum_diff(struct xdp_md *ctx)
{
	__u8 b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	__u32 r[5];

	r[0] = bpf_csum_diff(0, 0, (__be32 *)b, 8, 0);
	r[1] = bpf_csum_diff((__be32 *)b, 4, (__be32 *)(b + 4), 4, 0);
	r[2] = bpf_csum_diff((__be32 *)b, 4, 0, 0, 0);
	r[3] = bpf_csum_diff(0, 0, (__be32 *)b, 3, 0);
	r[4] = bpf_csum_diff(0, 0, (__be32 *)b, 8, 0xffff0000);

	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 20 > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, r, 20);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
