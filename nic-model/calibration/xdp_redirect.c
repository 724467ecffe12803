// SPDX-License-Identifier: MIT OR Apache-2.0
// hXDP baseline "redirect": as the kernel sample xdp_redirect, swap the
// Ethernet addresses and redirect to another port with the helper.
#include "common.h"

SEC("xdp")
int xdp_redirect_port(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > end)
		return XDP_DROP;
	swap_macs(data);
	return bpf_redirect(2, 0);
}

char _license[] SEC("license") = "GPL";
