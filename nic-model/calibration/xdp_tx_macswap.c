// SPDX-License-Identifier: MIT OR Apache-2.0
// hXDP baseline "XDP_TX": swap the Ethernet addresses and send the frame back.
#include "common.h"

SEC("xdp")
int xdp_tx_macswap(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > end)
		return XDP_DROP;
	swap_macs(data);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
