#!/usr/bin/env bash
# Loads every object in corpus/build into the running kernel (needs root and
# bpffs at /sys/fs/bpf) so the kernel verifier checks each program, then
# unpins everything again. Usage: corpus/verify.sh [OBJ...]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
objs=("$@")
[ ${#objs[@]} -eq 0 ] && objs=("$here"/build/*.o)
pin=/sys/fs/bpf/xq_test
fail=0
for obj in "${objs[@]}"; do
    rm -rf "$pin"
    if out=$(bpftool prog loadall "$obj" "$pin" type xdp 2>&1); then
        echo "ok   $(basename "$obj") ($(ls "$pin" | tr '\n' ' '))"
    else
        echo "FAIL $(basename "$obj")"; echo "$out" | tail -n 25
        fail=1
    fi
    rm -rf "$pin"
done
exit $fail
