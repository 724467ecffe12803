// An object with a program but no XDP program.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int only_socket(struct __sk_buff *skb)
{
	return 0;
}

char _license[] SEC("license") = "Dual MIT/GPL";
