// Not a program: its BTF (ksym_target.btf, dumped from the object by
// build.sh) stands in for a kernel BTF with a plain global variable (as
// vmlinux BTF has when pahole runs with global_var) and a per-CPU one in
// .data..percpu (as every vmlinux BTF has).
unsigned long jiffies = 1;
__attribute__((section(".data..percpu"))) unsigned long this_cpu_off = 1;
