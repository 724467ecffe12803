#!/usr/bin/env bash
# Builds every corpus program for BPF ISA v2, v3 and v4, deterministically.
#
# Usage: corpus/build.sh [OUT_DIR]    (default OUT_DIR: corpus/build)
#
# Also builds every corpus program for big-endian BPF (clang -target bpfeb,
# the byte order of s390x) into OUT_DIR/bpfeb/NAME.v3.bpfeb.o, for cpu v3
# only: the engine's big-endian mode and the s390x matrix cell run them. A
# folder of their own keeps them out of everything that runs corpus/build/*.o
# on this (little-endian) host.
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

common=(-O2 -g -Wall -Werror
       "-fdebug-prefix-map=$here=." "-ffile-prefix-map=$here=.")
flags=(-target bpf "-I/usr/include/$multiarch" "${common[@]}")

# The big-endian builds need a big-endian architecture's <asm/byteorder.h>:
# the host's (x86-64, arm64) defines __LITTLE_ENDIAN_BITFIELD, and struct
# iphdr's ihl/version bitfields would then be laid out little-endian in a
# bpfeb object (clang allocates bitfields from the most significant bit on
# big-endian targets), so `ip->version` would read the wrong nibble. s390x's
# headers come with Debian's linux-libc-dev-s390x-cross (pulled in by
# libc6-dev-s390x-cross, which ci/setup.sh installs for the s390x cell).
be_include=${BE_INCLUDE:-/usr/s390x-linux-gnu/include}
if [[ ! -f $be_include/asm/byteorder.h ]]; then
    echo "corpus/build.sh: $be_include/asm/byteorder.h is missing; install libc6-dev-s390x-cross (or set BE_INCLUDE to a big-endian architecture's include directory)" >&2
    exit 1
fi
be_flags=(-target bpfeb "-I$be_include" "${common[@]}")

"$CLANG" --version | head -n1 > "$out/CLANG_VERSION"

for src in *.c; do
    name=${src%.c}
    for v in 2 3 4; do
        "$CLANG" "${flags[@]}" "-mcpu=v$v" -c "$src" -o "$out/$name.v$v.o"
    done
done

mkdir -p "$out/bpfeb"
for src in *.c; do
    name=${src%.c}
    "$CLANG" "${be_flags[@]}" -mcpu=v3 -c "$src" -o "$out/bpfeb/$name.v3.bpfeb.o"
done

mkdir -p "$out/hostile"
for src in hostile/*.c; do
    name=$(basename "${src%.c}")
    "$CLANG" "${flags[@]}" -mcpu=v3 -c "$src" -o "$out/hostile/$name.o"
done
