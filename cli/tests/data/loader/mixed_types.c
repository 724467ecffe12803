// One object with programs of several types, as the kernel selftests
// (test_xdp_vlan, test_xdp_meta, test_check_mtu) and pping ship them: the
// XDP programs load, the others are listed with libbpf's type for their
// section (tools/lib/bpf/libbpf.c section_defs) and never run as XDP.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_keep(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int tc_plain(struct __sk_buff *skb)
{
	return 0;
}

SEC("tc/ingress")
int tc_ingress(struct __sk_buff *skb)
{
	return 0;
}

SEC("classifier")
int cls_old(struct __sk_buff *skb)
{
	return 0;
}

SEC("kprobe/do_sys_open")
int kp(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp(void *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
