#!/bin/sh
# Regenerates the README's dashboard screenshots from the history of real
# qualify runs of the shipped corpus (not from a test fixture):
#
#   cargo run --release -- qualify          # results/ + results/history.sqlite
#   docs/screenshots/regenerate.sh [HISTORY]
#
# It renders the dashboard, refuses a page that shows a temporary path
# (the old screenshots showed a test fixture's), and has headless Chromium
# take one screenshot per section (`#only=SECTION` hides the others).
set -eu
cd "$(dirname "$0")/../.."
history=${1:-results/history.sqlite}
xdpqual=${XDPQUAL:-target/release/xdpqual}
chromium=${XDPQUAL_CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome)}
[ -f "$history" ] || { echo "regenerate.sh: no history $history: run 'cargo run --release -- qualify' first" >&2; exit 2; }
"$xdpqual" dashboard --history "$history" --out results/dashboard
page=results/dashboard/index.html
if grep -Eq '/tmp/|xdpqual-dash-|/var/folders/' "$page"; then
    echo "regenerate.sh: $page shows a temporary path; qualify the shipped corpus instead" >&2
    exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
shot() { # section width height
    "$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
        --user-data-dir="$profile/$1" --window-size="$2,$3" \
        --screenshot="docs/screenshots/dashboard-$1.png" "file://$PWD/$page#only=$1" 2>/dev/null
    echo "docs/screenshots/dashboard-$1.png"
}
shot overview 1280 560
shot matrix 1280 900
shot offload 1280 900
shot trends 1280 1000
