#!/usr/bin/env bash
# Opens psf's HTML report of every example manifest in headless Chromium (Debian's
# package), fails on any console message, and saves a full-page screenshot of each
# for review under target/ci/screenshots/.
#
#   tests/browser/html_report.sh target/debug/psf
set -euo pipefail
psf="$1"
chromium="${CHROMIUM:-/usr/bin/chromium}"
out="target/ci/screenshots"
mkdir -p "$out" target/ci/html
status=0
for manifest in examples/*.yaml examples/demo/psf.yaml; do
  name="$(basename "$(dirname "$manifest")")-$(basename "$manifest" .yaml)"
  name="${name#examples-}"
  page="$PWD/target/ci/html/$name.html"
  "$psf" assess --manifest "$manifest" --today 2026-11-23 --format html --fail-on none > "$page"
  log="target/ci/html/$name.chromium.log"
  # A tall window takes the whole page; Chromium logs every console message as
  # `INFO:CONSOLE`, which a self-contained page without scripts must never produce.
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --enable-logging=stderr --v=0 --window-size=1280,7000 \
    --screenshot="$out/report-$name.png" "file://$page" 2> "$log" >/dev/null
  if grep -q "CONSOLE" "$log"; then
    echo "html report $name: console messages:" >&2
    grep "CONSOLE" "$log" >&2
    status=1
  fi
  if [ ! -s "$out/report-$name.png" ]; then
    echo "html report $name: no screenshot was written" >&2
    status=1
  fi
  echo "html report $name: rendered, no console messages, screenshot $out/report-$name.png"
done
exit "$status"
