// XDP dynptrs, case by case, for cli/tests/dynptr.rs. Each frame says what
// to do: byte 14 is the case, bytes 16-17 and 18-19 two little-endian
// arguments A and B; results go to eight little-endian u32 slots at bytes
// 20-51, so the output frame shows every return code and value. Built
// three times: plain; with -DSTALE for the cases that use a dynptr after
// bpf_xdp_adjust_head/_tail; with -DRDWR for bpf_dynptr_slice_rdwr (kept
// apart so that a kernel that refuses one of them does not take the other
// cases down with it: this machine's 6.18 refuses bpf_dynptr_slice_rdwr);
// with -DFRAGS the program is `xdp.frags`, for frames longer than the
// linear area (with the plain cases, or with -DRDWR or -DSTALE_FRAG: a
// hostile case the verifier refuses, for the engine alone).
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_dynptr_from_xdp(struct xdp_md *x, __u64 flags,
			       struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset,
			      void *buffer__opt, __u32 buffer__szk) __ksym;
extern void *bpf_dynptr_slice_rdwr(const struct bpf_dynptr *p, __u32 offset,
				   void *buffer__opt, __u32 buffer__szk) __ksym;
extern int bpf_dynptr_adjust(const struct bpf_dynptr *p, __u32 start, __u32 end) __ksym;
extern bool bpf_dynptr_is_null(const struct bpf_dynptr *p) __ksym;
extern bool bpf_dynptr_is_rdonly(const struct bpf_dynptr *p) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;
extern int bpf_dynptr_clone(const struct bpf_dynptr *p,
			    struct bpf_dynptr *clone__uninit) __ksym;

#define OUT(i, v)                                                          \
	do {                                                               \
		__u32 v_ = (__u32)(v); /* calls first: they may move data */ \
		__u8 *d_ = (void *)(long)ctx->data;                        \
		__u8 *e_ = (void *)(long)ctx->data_end;                    \
		if (d_ + 52 > e_)                                          \
			return XDP_ABORTED;                                \
		((__u32 *)(d_ + 20))[i] = v_;                      \
	} while (0)

/* 0 for NULL, 2 for the caller's buffer, 1 for a pointer into the frame. */
#define WHERE(s, buf) ((s) == 0 ? 0 : ((void *)(s) == (void *)(buf) ? 2 : 1))

static __always_inline __u32 word(const __u8 *s)
{
	return s[0] | s[1] << 8 | s[2] << 16 | (__u32)s[3] << 24;
}

#ifdef FRAGS
SEC("xdp.frags")
#else
SEC("xdp")
#endif
int xdp_dynptr(struct xdp_md *ctx)
{
	struct bpf_dynptr p, c;
	__u8 buf[16];
	__u8 *d = (void *)(long)ctx->data, *e = (void *)(long)ctx->data_end;
	__u32 a, b, rc;
	__u8 *s;
	__u8 what;

	if (d + 52 > e)
		return XDP_PASS;
	what = d[14];
	a = d[16] | d[17] << 8;
	b = d[18] | d[19] << 8;
	__builtin_memset(buf, 0xaa, sizeof(buf));

#if !defined(STALE) && !defined(RDWR) && !defined(STALE_FRAG)
	switch (what) {
	case 0: /* flags: -EINVAL and a null dynptr that every call refuses */
		rc = bpf_dynptr_from_xdp(ctx, a, &p);
		OUT(0, rc);
		OUT(1, bpf_dynptr_is_null(&p));
		OUT(2, bpf_dynptr_size(&p));
		OUT(3, WHERE(bpf_dynptr_slice(&p, 0, buf, 4), buf));
		OUT(4, bpf_dynptr_read(buf, 4, &p, 0, 0));
		OUT(5, bpf_dynptr_write(&p, 0, buf, 4, 0));
		OUT(6, bpf_dynptr_adjust(&p, 0, 1));
		OUT(7, bpf_dynptr_is_rdonly(&p));
		return XDP_TX;
	case 1: /* an 8-byte slice with no buffer at offset A */
		OUT(0, bpf_dynptr_from_xdp(ctx, 0, &p));
		OUT(1, bpf_dynptr_size(&p));
		OUT(2, bpf_dynptr_is_null(&p) | bpf_dynptr_is_rdonly(&p) << 1);
		s = bpf_dynptr_slice(&p, a, NULL, 8);
		OUT(3, s != 0);
		if (s) {
			OUT(4, word(s));
			OUT(5, word(s + 4));
		}
		return XDP_TX;
	case 2: /* a 16-byte slice with a buffer at offset A */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		s = bpf_dynptr_slice(&p, a, buf, 16);
		OUT(0, WHERE(s, buf));
		if (s) {
			OUT(1, word(s));
			OUT(2, word(s + 12));
		}
		OUT(3, word(buf));
		return XDP_TX;
	case 4: /* bpf_dynptr_write of 6 bytes at A with flags B, read back */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		buf[0] = 'X';
		buf[1] = 'D';
		buf[2] = 'P';
		buf[3] = 'Q';
		buf[4] = 'U';
		buf[5] = 'A';
		OUT(0, bpf_dynptr_write(&p, a, buf, 6, b));
		__builtin_memset(buf, 0x11, 4);
		OUT(1, bpf_dynptr_read(buf, 4, &p, a, b));
		OUT(2, word(buf));
		OUT(3, bpf_dynptr_read(buf, 0, &p, a, 0));
		return XDP_TX;
	case 5: /* bpf_dynptr_adjust(A, B), then read at its new start */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		OUT(0, bpf_dynptr_adjust(&p, a, b));
		OUT(1, bpf_dynptr_size(&p));
		s = bpf_dynptr_slice(&p, 0, NULL, 4);
		OUT(2, s ? word(s) : 0xffffffff);
		OUT(3, bpf_dynptr_read(buf, 4, &p, 0, 0));
		OUT(4, word(buf));
		OUT(5, bpf_dynptr_write(&p, 2, buf, 2, 0));
		return XDP_TX;
	case 6: /* clone, adjust the clone, the original is untouched */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		OUT(0, bpf_dynptr_clone(&p, &c));
		OUT(1, bpf_dynptr_adjust(&c, a, b));
		OUT(2, bpf_dynptr_size(&p));
		OUT(3, bpf_dynptr_size(&c));
		OUT(4, bpf_dynptr_read(buf, 4, &c, 0, 0));
		OUT(5, word(buf));
		bpf_dynptr_from_xdp(ctx, 1, &p);
		OUT(6, bpf_dynptr_clone(&p, &c));
		OUT(7, bpf_dynptr_is_null(&c));
		return XDP_TX;
	}
	return XDP_PASS;
#elif defined(STALE_FRAG)
	switch (what) {
	case 9: /* ATTACK (the verifier refuses it): a slice kept across
		 * bpf_xdp_adjust_tail(-B), then read */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		s = bpf_dynptr_slice(&p, a, NULL, 8);
		if (!s)
			return XDP_PASS;
		bpf_xdp_adjust_tail(ctx, -(int)b);
		rc = *(volatile __u32 *)s;
		OUT(0, rc);
		return XDP_TX;
	}
	return XDP_PASS;
#elif defined(RDWR)
	switch (what) {
	case 3: /* write through a 4-byte rdwr slice at A */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		s = bpf_dynptr_slice_rdwr(&p, a, NULL, 4);
		OUT(0, s != 0);
		if (s) {
			s[0] = 0xde;
			s[1] = 0xad;
			s[2] = 0xbe;
			s[3] = 0xef;
		}
		return XDP_TX;
	}
	return XDP_PASS;
#else
	switch (what) {
	case 7: /* shrink the tail by B, then use the dynptr made before */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		OUT(0, bpf_dynptr_size(&p));
		OUT(1, bpf_xdp_adjust_tail(ctx, -(int)b));
		OUT(2, bpf_dynptr_size(&p));
		s = bpf_dynptr_slice(&p, a, buf, 16);
		OUT(3, WHERE(s, buf));
		OUT(4, word(buf));
		OUT(5, word(buf + 12));
		OUT(6, bpf_dynptr_read(buf, 4, &p, a, 0));
		s = bpf_dynptr_slice(&p, a, NULL, 16);
		OUT(7, s != 0);
		return XDP_TX;
	case 8: /* move the head by A, then read at dynptr offset 0 */
		bpf_dynptr_from_xdp(ctx, 0, &p);
		rc = bpf_xdp_adjust_head(ctx, a);
		OUT(0, rc);
		OUT(1, bpf_dynptr_size(&p));
		OUT(2, bpf_dynptr_read(buf, 4, &p, 0, 0));
		OUT(3, word(buf));
		s = bpf_dynptr_slice(&p, 0, NULL, 4);
		OUT(4, s ? word(s) : 0xffffffff);
		return XDP_TX;
	}
	return XDP_PASS;
#endif
}

char _license[] SEC("license") = "GPL";
