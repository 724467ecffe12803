/* Randomness carried through a map, the way Cilium's SNAT keeps the source
 * port it drew: the first frame of a flow (flow = byte 0 of the frame)
 * draws a number with bpf_get_prandom_u32 and stores it in `picked`; every
 * later frame of that flow writes the stored number into bytes 4..8 of the
 * frame and returns XDP_TX. Frames whose byte 0 is 0xff never touch the
 * map and return XDP_PASS unchanged.
 *
 * So, engine against kernel (each draws its own numbers):
 * - first frames of a flow: XDP_PASS, unchanged, on both: they agree,
 *   although the run drew a number;
 * - later frames: XDP_TX with different bytes 4..8: they differ, and only
 *   because of the number an earlier run stored, so they are
 *   nondeterministic, not mismatches;
 * - 0xff frames: agree.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} picked SEC(".maps");

SEC("xdp")
int carried_random(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;

	if (data + 8 > end)
		return XDP_ABORTED;
	if (data[0] == 0xff)
		return XDP_PASS;
	__u32 flow = data[0];
	__u32 *v = bpf_map_lookup_elem(&picked, &flow);
	if (!v) {
		__u32 r = bpf_get_prandom_u32();
		bpf_map_update_elem(&picked, &flow, &r, BPF_ANY);
		return XDP_PASS;
	}
	__builtin_memcpy(data + 4, v, 4);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
