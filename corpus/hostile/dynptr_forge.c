// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * dynptr_forge.c - ATTACK: forged and corrupted XDP dynptrs.
 *
 * A dynptr is 16 bytes of the program's stack that only the kfuncs may
 * write; the engine keeps the kernel's layout (a pointer, a size word, an
 * offset) with its own ctx address as the pointer. The kernel's verifier
 * refuses every program that writes those bytes or passes anything but an
 * initialised stack dynptr; the engine must not trust them.
 *
 * Per packet, by SELECT (hostile.h):
 *   0: a dynptr made by hand, pointer WILD, type XDP: bpf_dynptr_read
 *   1: the same, pointer a host-looking address: bpf_dynptr_slice
 *   2: a real dynptr whose size word is forced to 2^24 - 1: read at 60000
 *   3: a real dynptr whose offset is forced to 0xffffff00: read at 0
 *   4: a real dynptr whose offset is forced to 0xfffffffc: a 4-byte slice
 *      at 0 (offset + 0 wraps to 0xfffffffc) and a write through it
 *   5: a packet pointer passed as the dynptr: bpf_dynptr_size
 *   6: a misaligned stack dynptr (fp-12): bpf_dynptr_from_xdp
 *   7: bpf_dynptr_slice with buffer WILD
 *   8: bpf_dynptr_read into WILD
 *   9: bpf_dynptr_write from WILD
 *  10: a slice kept across bpf_xdp_adjust_tail(-40), then read past the
 *      new end through it
 *  11: a real dynptr whose type bits say RINGBUF (2): bpf_dynptr_read
 *  12: a dynptr copied into a map value, passed from there: bpf_dynptr_size
 *  other: XDP_PASS.
 * The return code of a call that does not fault is written to frame bytes
 * 20-23. Expected on the engine: a fault naming the dynptr argument, or the
 * kernel's error return (-EINVAL, -EFAULT, NULL); never host memory.
 */
#include "hostile.h"

extern int bpf_dynptr_from_xdp(struct xdp_md *x, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset,
			      void *buffer__opt, __u32 buffer__szk) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_dynptr);
} stash SEC(".maps");

#define W ((void *)WILD)

static __always_inline int put(struct xdp_md *ctx, long v)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;

	if (data + 24 > end)
		return XDP_ABORTED;
	*(__u32 *)(data + 20) = (__u32)v;
	return XDP_TX;
}

SEC("xdp")
int dynptr_forge(struct xdp_md *ctx)
{
	struct bpf_dynptr p;
	volatile __u64 *raw = (volatile __u64 *)&p;
	volatile __u32 *words = (volatile __u32 *)&p;
	__u8 buf[16] = {};
	__u32 key = 0;
	__u8 *s;
	long rc;
	int sel = selector(ctx);

	switch (sel) {
	case 0:
		raw[0] = WILD;
		raw[1] = (4ULL << 28) | 64;
		return put(ctx, bpf_dynptr_read(buf, 4, &p, 0, 0));
	case 1:
		raw[0] = 0x7ffff7a00000ULL;
		raw[1] = (4ULL << 28) | 64;
		return put(ctx, (long)bpf_dynptr_slice(&p, 0, NULL, 4));
	case 2:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		words[2] = (4U << 28) | 0xffffff;
		return put(ctx, bpf_dynptr_read(buf, 4, &p, 60000, 0));
	case 3:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		words[3] = 0xffffff00;
		return put(ctx, bpf_dynptr_read(buf, 4, &p, 0, 0));
	case 4:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		words[3] = 0xfffffffc;
		s = bpf_dynptr_slice(&p, 0, NULL, 4);
		if (s)
			*(volatile __u32 *)s = 0x41414141;
		return put(ctx, (long)s);
	case 5: {
		void *data = (void *)(long)ctx->data;

		return put(ctx, bpf_dynptr_size(data));
	}
	case 6: {
		__u64 area[4] = {};

		return put(ctx, bpf_dynptr_from_xdp(ctx, 0, (void *)((char *)area + 4)));
	}
	case 7:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		return put(ctx, (long)bpf_dynptr_slice(&p, 0, W, 16));
	case 8:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		return put(ctx, bpf_dynptr_read(W, 8, &p, 0, 0));
	case 9:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		return put(ctx, bpf_dynptr_write(&p, 0, W, 8, 0));
	case 10:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		s = bpf_dynptr_slice(&p, 0, NULL, 16);
		if (!s)
			return XDP_PASS;
		bpf_xdp_adjust_tail(ctx, -40);
		/* s + 30 was inside the frame before the shrink. */
		rc = *(volatile __u8 *)(s + 30);
		return put(ctx, rc);
	case 11:
		bpf_dynptr_from_xdp(ctx, 0, &p);
		words[2] = (2U << 28) | 64;
		return put(ctx, bpf_dynptr_read(buf, 4, &p, 0, 0));
	case 12: {
		struct bpf_dynptr *v = bpf_map_lookup_elem(&stash, &key);

		if (!v)
			return XDP_PASS;
		bpf_dynptr_from_xdp(ctx, 0, &p);
		__builtin_memcpy(v, &p, sizeof(p));
		return put(ctx, bpf_dynptr_size(v));
	}
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
