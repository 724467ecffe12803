#!/usr/bin/env bash
# Builds every corpus program for BPF ISA v2, v3 and v4, deterministically.
#
# Usage: corpus/build.sh [OUT_DIR]    (default OUT_DIR: corpus/build)
#
# Also builds the hostile programs (corpus/hostile/*.c: attacks on the harness,
# see corpus/hostile/hostile.h) into OUT_DIR/hostile/, for cpu v3 only: they
# test the sandbox, not the instruction set.
#
# Determinism: the script always compiles from inside the corpus directory with
# relative source names, and maps the working directory to "." in debug info
# (-fdebug-prefix-map / -ffile-prefix-map), so the bytes do not depend on where
# the checkout lives. The only absolute paths left in the objects are system
# header paths (/usr/include/...), which depend on the installed packages, not
# on the checkout. cli/tests/corpus_build.rs rebuilds with this script and
# compares bytes, so flags live here and nowhere else.
set -euo pipefail

CLANG=${CLANG:-clang-19}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/build}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"

# <linux/types.h> pulls in <asm/types.h>, which Debian keeps under the
# multiarch include directory; -target bpf does not search it by itself.
multiarch=${MULTIARCH:-$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")}

flags=(-O2 -g -target bpf -Wall -Werror
       "-I/usr/include/$multiarch"
       "-fdebug-prefix-map=$here=." "-ffile-prefix-map=$here=.")

"$CLANG" --version | head -n1 > "$out/CLANG_VERSION"

for src in *.c; do
    name=${src%.c}
    for v in 2 3 4; do
        "$CLANG" "${flags[@]}" "-mcpu=v$v" -c "$src" -o "$out/$name.v$v.o"
    done
done

mkdir -p "$out/hostile"
for src in hostile/*.c; do
    name=$(basename "${src%.c}")
    "$CLANG" "${flags[@]}" -mcpu=v3 -c "$src" -o "$out/hostile/$name.o"
done
