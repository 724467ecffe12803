// A map built with max_entries 0, sized by the project's loader at run time
// (bpf_map__set_max_entries), as xdp-tools' xdp_sample maps are. As built,
// the kernel refuses it (EINVAL); with --map-size counts=N it runs. The
// program counts frames in slot 0 and passes them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 0);
} counts SEC(".maps");

SEC("xdp")
int count_frames(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		*n += 1;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
