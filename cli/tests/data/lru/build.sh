#!/bin/sh
# Rebuilds lru_exact.o (committed, so the tests need no clang).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
INC="-I/usr/include/$(uname -m)-linux-gnu -fdebug-prefix-map=$(pwd)=."
$CLANG -O2 -g -target bpf -mcpu=v3 $INC -c lru_exact.c -o lru_exact.o
