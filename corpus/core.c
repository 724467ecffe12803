// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * core.c - a CO-RE program: every kernel struct it reads is a local
 * definition with a different layout, and only the CO-RE relocations, resolved
 * against the target kernel's BTF, make the reads land where the kernel
 * keeps the fields.
 *
 * SHOWS: field byte offset relocations on the context (`struct xdp_md`) and
 * on packet headers (`struct ethhdr`, `struct iphdr`); a flavoured type name
 * (`___xq`, ignored when matching, as libbpf does); type-size and
 * field-exists relocations; an unresolvable field access on a path that a
 * field-exists check makes dead, which the loader poisons (libbpf's
 * `call 0xbad2310`) and the verifier never reaches. Written to exercise the
 * loader's CO-RE support: without relocations `data` and `data_end` would be
 * read swapped and the IPv4 fields from the wrong bytes.
 *
 * LOCAL LAYOUTS (deliberately not the kernel's):
 *   xdp_md___xq:  data_end at 0, data at 4   (kernel: data 0, data_end 4)
 *   iphdr___xq:   protocol at 0, ttl at 1, then xq_missing, a field no
 *                 kernel has                 (kernel: ttl 8, protocol 9)
 *
 * PROGRAM: section "xdp", function xdp_core. L = frame length.
 *   1. L < 14                                                   -> XDP_PASS.
 *   2. EtherType (bytes 12-13, big-endian) is not 0x0800        -> XDP_PASS.
 *   3. L < 34 (no room for a 20-byte IPv4 header)               -> XDP_PASS.
 *   4. The target kernel's struct iphdr has a field xq_missing (never
 *      true: the read behind this check is poisoned) -> XDP_ABORTED if it
 *      holds 7, else XDP_DROP.
 *   5. The target kernel's struct iphdr is not 20 bytes         -> XDP_ABORTED.
 *   6. TTL (byte 22) <= 1                                       -> XDP_DROP.
 *   7. Protocol (byte 23) is 17 (UDP): the TTL byte is decremented by one (the
 *      IPv4 checksum is NOT updated), then                      -> XDP_TX.
 *   8. Otherwise                                                -> XDP_PASS.
 * No maps, no helpers.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct xdp_md___xq {
	__u32 data_end;
	__u32 data;
} __attribute__((preserve_access_index));

struct ethhdr___xq {
	unsigned char h_dest[6];
	unsigned char h_source[6];
	__be16 h_proto;
} __attribute__((preserve_access_index));

struct iphdr___xq {
	__u8 protocol;
	__u8 ttl;
	__u32 xq_missing;
} __attribute__((preserve_access_index));

SEC("xdp")
int xdp_core(struct xdp_md *plain_ctx)
{
	struct xdp_md___xq *ctx = (void *)plain_ctx;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr___xq *eth = data;
	struct iphdr___xq *ip = data + 14;

	if (data + 14 > data_end)
		return XDP_PASS;
	if (eth->h_proto != __builtin_bswap16(0x0800))
		return XDP_PASS;
	if (data + 34 > data_end)
		return XDP_PASS;
	if (bpf_core_field_exists(ip->xq_missing))
		return ip->xq_missing == 7 ? XDP_ABORTED : XDP_DROP;
	if (bpf_core_type_size(struct iphdr___xq) != 20)
		return XDP_ABORTED;
	if (ip->ttl <= 1)
		return XDP_DROP;
	if (ip->protocol == 17) {
		ip->ttl -= 1;
		return XDP_TX;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
