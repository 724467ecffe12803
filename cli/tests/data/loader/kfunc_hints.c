// The XDP metadata kfuncs (net/core/xdp.c). Under BPF_PROG_TEST_RUN the
// program is not bound to a device, so the kernel runs their default
// bodies, which return -EOPNOTSUPP (-95) and leave the out-arguments alone.
// The program writes each return value and out-argument into the frame:
// bytes 0-3 rx_timestamp's return, 4-11 the timestamp, 12-15 rx_hash's
// return, 16-19 the hash, 20-23 the hash type, 24-27 rx_vlan_tag's return,
// 28-29 the vlan protocol, 30-31 the tci. The out-arguments start as
// 0x11..., 0x22..., 0x33..., 0x44..., 0x55..., so leaving them alone shows.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum xdp_rss_hash_type { XDP_RSS_TYPE_NONE = 0 };

extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym;
extern int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, __u32 *hash,
				    enum xdp_rss_hash_type *rss_type) __ksym;
extern int bpf_xdp_metadata_rx_vlan_tag(const struct xdp_md *ctx, __be16 *vlan_proto,
					__u16 *vlan_tci) __ksym;

SEC("xdp")
int xdp_hints(struct xdp_md *ctx)
{
	__u64 ts = 0x1111111111111111ULL;
	__u32 hash = 0x22222222;
	enum xdp_rss_hash_type type = (enum xdp_rss_hash_type)0x33333333;
	__be16 proto = 0x4444;
	__u16 tci = 0x5555;
	int r_ts, r_hash, r_vlan;
	unsigned char *data, *end;

	r_ts = bpf_xdp_metadata_rx_timestamp(ctx, &ts);
	r_hash = bpf_xdp_metadata_rx_hash(ctx, &hash, &type);
	r_vlan = bpf_xdp_metadata_rx_vlan_tag(ctx, &proto, &tci);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + 32 > end)
		return XDP_ABORTED;
	__builtin_memcpy(data + 0, &r_ts, 4);
	__builtin_memcpy(data + 4, &ts, 8);
	__builtin_memcpy(data + 12, &r_hash, 4);
	__builtin_memcpy(data + 16, &hash, 4);
	__builtin_memcpy(data + 20, &type, 4);
	__builtin_memcpy(data + 24, &r_vlan, 4);
	__builtin_memcpy(data + 28, &proto, 2);
	__builtin_memcpy(data + 30, &tci, 2);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
