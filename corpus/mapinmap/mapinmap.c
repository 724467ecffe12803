// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * mapinmap.c - map-in-map (ARRAY_OF_MAPS, HASH_OF_MAPS) and statically
 * initialised slots, for harness/tests/map_in_map.rs. Not part of the main
 * corpus build: the test compiles it (clang -target bpf) with the flags
 * below, and with -DNO_TEMPLATE / -DBAD_TEMPLATE for the bad-input cases.
 *
 * MAPS:
 *   inner_a, inner_b  ARRAY, key u32, value u64, max 4 (the inner-map shape).
 *   outer_arr   ARRAY_OF_MAPS, max 2; slot 0 = inner_a statically
 *               (`.values = { [0] = &inner_a }`), slot 1 empty.
 *   outer_hash  HASH_OF_MAPS, key u32, max 4; key 7 = inner_b statically.
 *   jmp         PROG_ARRAY, max 1; slot 0 = xdp_tail statically.
 *
 * PROGRAM "xdp" (function xdp_mim). E = big-endian u16 at 12, P = byte 23
 * (IPv4 protocol), D = big-endian u16 at 36 (UDP destination port):
 *   1. L < 38, or E != 0x0800                              -> XDP_PASS.
 *   2. P = 6 (TCP): tail call jmp[0]; if it returns        -> XDP_PASS.
 *   3. P != 17                                             -> XDP_PASS.
 *   4. m = outer_hash[7]; if present, m[0] += 1.
 *   5. m = outer_arr[D & 1]; if absent                     -> XDP_PASS.
 *   6. m[0] += 1; m[1] = 1 -> XDP_DROP, else               -> XDP_PASS.
 *
 * PROGRAM "xdp/tail" (function xdp_tail)                   -> XDP_DROP.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

#if defined(NO_TEMPLATE)
/* A map-in-map without `values`: libbpf cannot create it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} outer_arr SEC(".maps");
#elif defined(BAD_TEMPLATE)
/* An inner definition without a map type. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
	__array(values, struct {
		__uint(max_entries, 4);
		__type(key, __u32);
		__type(value, __u64);
	});
} outer_arr SEC(".maps");
#else
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
	__array(values, struct inner);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a },
};
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [7] = &inner_b },
};

SEC("xdp/tail")
int xdp_tail(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* The value size of a PROG_ARRAY with `values`: libbpf fills in 4 when it
 * is left out (-DJMP_VALUE_UNSET, as Cilium's cilium_calls does) and refuses
 * any other (-DJMP_VALUE_8). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
#if defined(JMP_VALUE_8)
	__uint(value_size, 8);
#elif !defined(JMP_VALUE_UNSET)
	__type(value, __u32);
#endif
	__array(values, int (void *));
} jmp SEC(".maps") = {
	.values = { [0] = (void *)&xdp_tail },
};

SEC("xdp")
int xdp_mim(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 k0 = 0, k1 = 1, k7 = 7, slot;
	__u64 *v;
	void *m;

	if (data + 38 > end || data[12] != 0x08 || data[13] != 0x00)
		return XDP_PASS;
	if (data[23] == 6) {
		bpf_tail_call(ctx, &jmp, 0);
		return XDP_PASS;
	}
	if (data[23] != 17)
		return XDP_PASS;
	m = bpf_map_lookup_elem(&outer_hash, &k7);
	if (m) {
		v = bpf_map_lookup_elem(m, &k0);
		if (v)
			*v += 1;
	}
	slot = data[37] & 1;
	m = bpf_map_lookup_elem(&outer_arr, &slot);
	if (!m)
		return XDP_PASS;
	v = bpf_map_lookup_elem(m, &k0);
	if (v)
		*v += 1;
	v = bpf_map_lookup_elem(m, &k1);
	if (v && *v == 1)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
