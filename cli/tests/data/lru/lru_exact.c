/* Drives three LRU maps from frames, so a capture can fill them past
 * their capacity in a chosen order (cli/tests/lru_exact.rs).
 *
 * Frame layout (60 bytes):
 *   byte 0   op: 'U' update, 'L' lookup, 'D' delete
 *   byte 1   map: 0 = lru (LRU_HASH, 1024 entries, common LRU)
 *                 1 = lru_nocommon (LRU_HASH, 8 entries, BPF_F_NO_COMMON_LRU)
 *                 2 = lru_percpu (LRU_PERCPU_HASH, 1024 entries)
 *                 3 = lru_small (LRU_HASH, 16 entries, like Cilium's example)
 *   byte 2   update flags (BPF_ANY 0, BPF_NOEXIST 1, BPF_EXIST 2)
 *   byte 3   value salt: the value written is key * 16 + salt
 *   4..8     key (u32, little-endian)
 *   8..12    written by the program: the update's or delete's return
 *            code, or the value found (0xffffffff on a miss)
 * Every frame the program understands returns XDP_TX, so the diff compares
 * what it wrote; anything else is XDP_PASS.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u32);
} lru_nocommon SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} lru_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} lru_small SEC(".maps");

SEC("xdp")
int lru_exact(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	void *map;
	__u32 key, value, out;
	__u32 *found;

	if (data + 12 > end)
		return XDP_PASS;
	switch (data[1]) {
	case 0:
		map = &lru;
		break;
	case 1:
		map = &lru_nocommon;
		break;
	case 2:
		map = &lru_percpu;
		break;
	case 3:
		map = &lru_small;
		break;
	default:
		return XDP_PASS;
	}
	key = data[4] | (__u32)data[5] << 8 | (__u32)data[6] << 16 | (__u32)data[7] << 24;
	switch (data[0]) {
	case 'U':
		value = key * 16 + data[3];
		out = bpf_map_update_elem(map, &key, &value, data[2]);
		break;
	case 'L':
		found = bpf_map_lookup_elem(map, &key);
		out = found ? *found : 0xffffffff;
		break;
	case 'D':
		out = bpf_map_delete_elem(map, &key);
		break;
	default:
		return XDP_PASS;
	}
	data[8] = out;
	data[9] = out >> 8;
	data[10] = out >> 16;
	data[11] = out >> 24;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
