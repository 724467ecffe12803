#!/usr/bin/env bash
# Rebuilds the public XDP objects of ../shared/public-xdp/ (MANIFEST.tsv)
# from source checkouts, for machines whose copy of that data has the
# manifest, map fixtures and licences but no objects/ folder.
#
# Usage: corpus/public/rebuild.sh SRC OUT
#   SRC holds one checkout per repository of the manifest, at the manifest's
#   commit, named after the repository: SRC/xdp-tutorial, SRC/xdp-tools,
#   SRC/katran, SRC/bpf-samples (Netronome), SRC/ebpf-samples (vbpf).
#   OUT receives <repo>__<source>.<cpu>.o, the manifest's names.
#
# This is a reconstruction, not the original build: the flags are the ones
# ../shared/public-xdp/README.md gives (clang-19 -O2 -g -target bpf
# -mcpu=<cpu>, plus per project), and where the manifest names a user-space
# file (xdp-tools' xdp-bench, xdp-forward, xdp-trafficgen, xdpsock) the
# BPF source beside it (<name>.bpf.c) is built. vbpf/ebpf-samples ships
# its objects prebuilt; they are copied as they are. Objects that do not
# build from their checkout are listed at the end and left out.
set -euo pipefail
src=$(cd "${1:?usage: rebuild.sh SRC OUT}" && pwd)
out=${2:?usage: rebuild.sh SRC OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest=${MANIFEST:-$here/../../../shared/public-xdp/MANIFEST.tsv}
CLANG=${CLANG:-clang-19}
multiarch=${MULTIARCH:-$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")}
# xdp-tutorial and xdp-tools include <gnu/stubs.h>, which asks for the
# 32-bit stubs under -target bpf; an empty one is all they need.
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
mkdir -p "$stubs/gnu" && : > "$stubs/gnu/stubs-32.h"
base=(-O2 -g -target bpf "-I/usr/include/$multiarch" "-I$stubs")
failed=()

build() { # OBJ CPU DIR FILE EXTRA...
    local obj=$1 cpu=$2 dir=$3 file=$4
    shift 4
    if ! (cd "$dir" && "$CLANG" "${base[@]}" "-mcpu=$cpu" "$@" -c "$file" -o "$out/$obj") 2>/dev/null; then
        failed+=("$obj")
    fi
}

while IFS=$'\t' read -r obj repo _commit source _load; do
    [ "$obj" = object ] && continue
    cpu=${obj##*.}; cpu=${obj%.o}; cpu=${cpu##*.}
    path=${source%% (*}
    case "$repo" in
    vbpf/ebpf-samples)
        cp "$src/ebpf-samples/$path" "$out/$obj" 2>/dev/null || failed+=("$obj") ;;
    xdp-project/xdp-tutorial)
        # The manifest's source column names packet01-parsing for several
        # lessons; the object's name (tut__<lesson>_<file>) names the
        # lesson directory the object was built in, and the manifest's
        # kernel column (OK for basic02, FAIL for the packet01 exercise)
        # agrees with the lesson, not with the column.
        lesson=${obj#tut__}; lesson=${lesson%%_*}
        dir=$(find "$src/xdp-tutorial/" -maxdepth 1 -type d -name "$lesson-*" | head -n1)
        [ "$lesson" = packet ] && dir=$src/xdp-tutorial/packet-solutions
        [ -n "$dir" ] || dir=$src/xdp-tutorial/$(dirname "$path")
        build "$obj" "$cpu" "$dir" "$(basename "$path")" -I../headers -I../common ;;
    xdp-project/xdp-tools)
        dir=$src/xdp-tools/$(dirname "$path"); file=$(basename "$path")
        case "$file" in *.bpf.c) ;; *) [ -f "$dir/${file%.c}.bpf.c" ] && file=${file%.c}.bpf.c ;; esac
        [ "$file" = xdp-forward.c ] && file=xdp_forward.bpf.c
        [ "$file" = xdp-trafficgen.c ] && file=xdp_trafficgen.bpf.c
        build "$obj" "$cpu" "$dir" "$file" -I"$src/xdp-tools/headers" -I"$src/xdp-tools/lib/util" \
            -include stdbool.h -DHAVE_LIBBPF_BPF_PROGRAM__TYPE ;;
    facebookincubator/katran)
        extra=()
        case "$obj" in
        # decap.bpf.c calls tcp_hdr_opt_lookup_server_id, which
        # pckt_parsing.h defines only with TCP_SERVER_ID_ROUTING or
        # DECAP_TPR_STATS; the former also needs the balancer's maps.
        *decap*) extra=(-DDECAP_TPR_STATS) ;;
        *balancer_full*)
            extra=(-DKATRAN_INTROSPECTION -DGUE_ENCAP -DINLINE_DECAP_GUE -DTCP_SERVER_ID_ROUTING
                   -DLPM_SRC_LOOKUP -DGLOBAL_LRU_LOOKUP) ;;
        esac
        build "$obj" "$cpu" "$src/katran/$(dirname "$path")" "$(basename "$path")" \
            -I"$src/katran" -I"$src/katran/katran/lib/bpf" -I"$src/katran/katran/lib/linux_includes" \
            -D__KERNEL__ "${extra[@]}" ;;
    Netronome/bpf-samples)
        build "$obj" "$cpu" "$src/bpf-samples/$(dirname "$path")" "$(basename "$path")" -I../headers ;;
    *) failed+=("$obj") ;;
    esac
done < "$manifest"

echo "built $(find "$out" -name '*.o' | wc -l) objects into $out"
if [ ${#failed[@]} -gt 0 ]; then
    echo "not built (${#failed[@]}): ${failed[*]}"
fi
