#!/usr/bin/env bash
# The test command from the README: installs what the tests need
# (ci/setup.sh: system packages, Rust targets, actionlint), then runs the
# whole test suite. `.ci/run` calls it too, so a fresh machine and CI run the
# same thing. Extra arguments go to `cargo test` (e.g. `-- --test-threads 1`).
#
# Tests that need something this machine lacks print `SKIP: <reason>` and
# pass; `.ci/run` lists them at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./ci/setup.sh
echo "== cargo test --workspace --release ($(cargo --version))"
exec cargo test --workspace --release "$@"
