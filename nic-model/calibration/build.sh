#!/usr/bin/env bash
# Builds the calibration programs (ISA v3: no store-immediate, which the NFP
# JIT cannot translate). The objects are checked in; rerun after editing.
set -euo pipefail
CLANG=${CLANG:-clang-19}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
multiarch=${MULTIARCH:-$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")}
for c in *.c; do
  "$CLANG" -O2 -g -target bpf -mcpu=v3 -Wall -Werror "-I/usr/include/$multiarch" \
    "-fdebug-prefix-map=$here=." "-ffile-prefix-map=$here=." -c "$c" -o "${c%.c}.o"
done
