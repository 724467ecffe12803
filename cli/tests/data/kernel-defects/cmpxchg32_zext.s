	.text
	.section	xdp,"ax",@progbits
	.globl	cmpxchg32_zext
	.p2align	3
	.type	cmpxchg32_zext,@function
cmpxchg32_zext:
	r9 = r1
	r2 = *(u32 *)(r1 + 0)
	r3 = *(u32 *)(r1 + 4)
	r4 = r2
	r4 += 1
	if r4 > r3 goto drop
	r5 = *(u8 *)(r2 + 0)
	r1 = 0
	*(u64 *)(r10 - 8) = r1
	r4 = 0
	r0 = 0x31ac46da00000000 ll
	w0 = cmpxchg32_32(r10 - 8, w0, w4)
	if r5 s< 16 goto out
	r1 = r9
	r2 = 4
	call 44
out:
	r0 >>= 32
	exit
drop:
	r0 = 1
	exit
.Lfunc_end0:
	.size	cmpxchg32_zext, .Lfunc_end0-cmpxchg32_zext

	.section	license,"aw",@progbits
	.globl	_license
_license:
	.asciz	"GPL"
	.size	_license, 4
