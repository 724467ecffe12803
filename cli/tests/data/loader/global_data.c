// Global data: .data, .rodata, .bss and a custom .data.* section.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 seen = 7;                                       /* .data */
const volatile __u32 limits[2] = { 0x11223344, 0x55667788 }; /* .rodata */
__u64 dropped;                                        /* .bss */
__u16 tag SEC(".data.extra") = 0xbeef;                /* .data.extra */

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	__u64 len = ctx->data_end - ctx->data;

	seen += 1;
	if (len > limits[1]) {
		dropped += 1;
		return XDP_DROP;
	}
	if (len > limits[0])
		return tag;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
