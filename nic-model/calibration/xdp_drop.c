// SPDX-License-Identifier: MIT OR Apache-2.0
// hXDP baseline "XDP_DROP" (Brunella et al., OSDI'20 §6): drop every frame.
#include "common.h"

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
