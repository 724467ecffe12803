#!/bin/sh
# Rebuilds the loader test objects. The .o files are committed so tests do
# not need clang; rerun this only when a .c file changes.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
INC="-I/usr/include/$(uname -m)-linux-gnu -fdebug-prefix-map=$(pwd)=."
BPF="$CLANG -O2 -g -target bpf -mcpu=v3 $INC -c"
for src in btf_maps legacy_maps global_data subprogs old_section extern_kconfig socket_only mixed_types untyped devmap_prog check_mtu fib_lookup csum_diff untyped_mixed run_time_size kconfig kfunc_hints kfunc_bad_proto kfunc_unmodelled kfunc_weak carried_random left_out ksym_vars ksym_missing ksym_plain ksym_untyped everything; do
	$BPF "$src.c" -o "$src.o"
done
# A stand-in kernel BTF with a plain (not per-CPU) global variable.
$BPF ksym_target.c -o ksym_target.tmp.o
llvm-objcopy-19 --dump-section .BTF=ksym_target.btf ksym_target.tmp.o
rm -f ksym_target.tmp.o
# Same program for the big-endian BPF target, which the engine does not run.
$CLANG -O2 -g -target bpfeb -mcpu=v3 $INC -c btf_maps.c -o bpfeb.o
# A host object: valid ELF, wrong machine.
$CLANG -O2 -c host.c -o host_x86.o
# The first 1000 bytes of a good object: ELF header intact, rest cut off.
head -c 1000 btf_maps.o > truncated.o
# fuzz_btf_ext.o is a fuzzer-found crash input (a mutated subprogs.o), kept as is.
printf 'this is not an ELF file\n' > not_elf.o
# legacy_maps.o as pre-BTF LLVM wrote it (no BTF, NOTYPE size-0 symbols),
# like the Linux samples/bpf objects of that era.
llvm-objcopy-19 --remove-section .BTF --remove-section .BTF.ext legacy_maps.o pre_btf.tmp.o
python3 pre_btf.py pre_btf.tmp.o pre_btf.o
rm -f pre_btf.tmp.o
