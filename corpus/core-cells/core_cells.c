// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * core_cells.c - a CO-RE program whose relocations resolve differently on
 * every kernel of the QEMU matrix, and which writes what they resolved to
 * into the frame, so that the cells visibly differ.
 *
 * It reads no kernel memory (an XDP program cannot reach a net_device):
 * CO-RE field-offset, field-exists and type-size relocations are constants
 * the loader patches into the instructions, from the target kernel's BTF,
 * before the verifier sees them. The local definitions below name only the
 * members used, with `preserve_access_index`, as vmlinux.h marks every
 * struct; their local layout is irrelevant.
 *
 * PROGRAM: section "xdp", function xdp_core_cells. L = frame length.
 *   1. L < 12                                                   -> XDP_PASS.
 *   2. Otherwise the first 12 bytes are overwritten, in the machine's byte
 *      order (every matrix cell is little-endian but s390x):
 *        bytes 0-3   u32  offsetof(struct net_device, ifindex)
 *        bytes 4-7   u32  sizeof(struct net_device)
 *        byte  8     u8   1 if struct net_device has `xdp_features`
 *                         (added in Linux 6.3), else 0
 *        byte  9     u8   1 if struct xdp_buff has `flags` (added in 5.18;
 *                         since 7.0 inside an anonymous union, where
 *                         libbpf's member search still finds it), else 0
 *        bytes 10-11 u16  0xc0de
 *      then                                                     -> XDP_TX.
 * No maps, no helpers.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct net_device {
	int ifindex;
	__u32 xdp_features;
} __attribute__((preserve_access_index));

struct xdp_buff {
	__u32 flags;
} __attribute__((preserve_access_index));

SEC("xdp")
int xdp_core_cells(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;

	if (data + 12 > data_end)
		return XDP_PASS;
	*(__u32 *)p = bpf_core_field_offset(struct net_device, ifindex);
	*(__u32 *)(p + 4) = bpf_core_type_size(struct net_device);
	p[8] = bpf_core_field_exists(struct net_device, xdp_features);
	p[9] = bpf_core_field_exists(struct xdp_buff, flags);
	*(__u16 *)(p + 10) = 0xc0de;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
