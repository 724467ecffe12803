// bpf_check_mtu (helper 163) cases, each result written into the frame so
// the diff compares them: at byte 8*i the return value (u32) and then the
// MTU the helper wrote back. Under BPF_PROG_TEST_RUN the device is
// loopback (MTU 65536, 14-byte hard header), so for a frame of L bytes
// (L <= 65550) the kernel's net/core/filter.c bpf_xdp_check_mtu gives:
//   0: ifindex 0, len_diff 0                -> 0, 65536
//   1: ifindex 0, len_diff 65536            -> 1 (FRAG_NEEDED), 65536
//   2: *mtu_len = 65536 in, len_diff 0      -> 0, 65536 (65550 <= 65550)
//   3: *mtu_len = 65537 in, len_diff 0      -> 1, 65536
//   4: flags 1                              -> -EINVAL, 0
//   5: ifindex 1 (loopback), len_diff 0     -> 0, 65536
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __always_inline void put(void *data, void *end, int i, long ret, __u32 mtu)
{
	__u32 *p = (__u32 *)data + 2 * i;
	if ((void *)(p + 2) > end)
		return;
	p[0] = (__u32)ret;
	p[1] = mtu;
}

SEC("xdp")
int check_mtu(struct xdp_md *ctx)
{
	__u32 mtu;
	long r[6];
	__u32 m[6];

	mtu = 0; r[0] = bpf_check_mtu(ctx, 0, &mtu, 0, 0); m[0] = mtu;
	mtu = 0; r[1] = bpf_check_mtu(ctx, 0, &mtu, 65536, 0); m[1] = mtu;
	mtu = 65536; r[2] = bpf_check_mtu(ctx, 0, &mtu, 0, 0); m[2] = mtu;
	mtu = 65537; r[3] = bpf_check_mtu(ctx, 0, &mtu, 0, 0); m[3] = mtu;
	mtu = 0; r[4] = bpf_check_mtu(ctx, 0, &mtu, 0, 1); m[4] = mtu;
	mtu = 0; r[5] = bpf_check_mtu(ctx, 1, &mtu, 0, 0); m[5] = mtu;

	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 48 > end)
		return XDP_PASS;
	for (int i = 0; i < 6; i++)
		put(data, end, i, r[i], m[i]);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
