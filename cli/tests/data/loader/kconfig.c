// __kconfig externs as libbpf fills them (tools/lib/bpf/libbpf.c
// bpf_object__resolve_externs): the kernel version, an integer, a bool, a
// tristate, a string and an unset weak option. The program writes each
// value into the packet so a diff compares them byte for byte.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_NF_CONNTRACK __kconfig __weak;
extern char CONFIG_LOCALVERSION[16] __kconfig __weak;
extern int CONFIG_XDPQUAL_NEVER_SET __kconfig __weak;

SEC("xdp")
int xdp_kconfig(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	int i;

	if (data + 32 > end)
		return XDP_ABORTED;
	/* Byte order of the writes: little-endian words at fixed offsets. */
	*(int *)(data + 0) = LINUX_KERNEL_VERSION;
	*(int *)(data + 4) = CONFIG_HZ;
	data[8] = CONFIG_BPF_SYSCALL;
	data[9] = (unsigned char)CONFIG_NF_CONNTRACK;
	*(int *)(data + 10) = CONFIG_XDPQUAL_NEVER_SET;
	for (i = 0; i < 16; i++)
		data[14 + i] = CONFIG_LOCALVERSION[i];
	return LINUX_KERNEL_VERSION >= KERNEL_VERSION(6, 0, 0) ? XDP_TX : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
