// Two untyped sections in the Linux samples style: `xdp_vlan_drop` is an
// XDP program, `tc_vlan_push` a tc one (it reads the packet with
// bpf_skb_load_bytes, helper 26, which XDP programs may not call), as in
// prototype-kernel's xdp_vlan01_kern.o. With --type xdp both are offered
// as XDP; the tc one cannot run as XDP, and running the XDP one must not
// fail because of it (a kernel loader loads the one asked for).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp_vlan_drop")
int drop_tagged(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_ABORTED;
	// 802.1Q: drop tagged frames, pass the rest.
	return ((__u8 *)data)[12] == 0x81 && ((__u8 *)data)[13] == 0x00 ? XDP_DROP : XDP_PASS;
}

SEC("tc_vlan_push")
int push_tag(struct __sk_buff *skb)
{
	__u8 b[4];
	if (bpf_skb_load_bytes(skb, 12, b, 4) < 0)
		return 2;
	return b[0] == 0x81 ? 2 : 0;
}

char _license[] SEC("license") = "GPL";
