// SPDX-License-Identifier: MIT OR Apache-2.0
// Shared definitions for the calibration programs (no libbpf headers needed).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>

#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)23;
static long (*bpf_xdp_adjust_head)(struct xdp_md *ctx, int delta) = (void *)44;

/* As the kernel samples' swap_src_dst_mac (samples/bpf/xdp2_kern.c): three
 * 16-bit words each way. */
static __always_inline void swap_macs(void *data)
{
	unsigned short *p = data;
	unsigned short d0 = p[0], d1 = p[1], d2 = p[2];

	p[0] = p[3];
	p[1] = p[4];
	p[2] = p[5];
	p[3] = d0;
	p[4] = d1;
	p[5] = d2;
}
