/* Two XDP programs; the second calls bpf_skb_vlan_push (helper 18), which
 * the verifier offers to tc programs only, so a loader (and the engine)
 * can prepare the first and must leave the second out. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int keep(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int vlan_push(struct xdp_md *ctx)
{
	return bpf_skb_vlan_push((void *)ctx, 0x8100, 1) ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
