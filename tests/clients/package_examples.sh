#!/usr/bin/env bash
# Runs the integration examples that `psf export --package` writes for the demo manifest
# against `psf demo`: the official OpenAI Python SDK, the official JavaScript SDK (npm
# `openai`, installed under tests/clients) and curl, each as a user would run it; and
# tests/clients/openai_node.mjs, the npm client through Chat, Responses and embeddings.
#
#   tests/clients/package_examples.sh target/debug/psf target/ci-venv/bin/python
set -euo pipefail
psf="$1"
python="$2"
out="target/ci/package"
rm -rf "$out"
"$psf" export --manifest examples/demo/psf.yaml --package "$out"
# The JavaScript examples import `openai`: Node looks for it in the folders above them.
ln -s "$PWD/tests/clients/node_modules" "$out/node_modules"
work="$(mktemp -d)"
"$psf" demo --listen 127.0.0.1:0 --upstream-latency-ms 5 --store "sqlite://$work/demo.db" > "$work/demo.log" 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do
  grep -q '^API key: ' "$work/demo.log" && break
  sleep 0.1
done
PSF_BASE_URL="$(sed -n 's/^Gateway URL: //p' "$work/demo.log")"
PSF_API_KEY="$(sed -n 's/^API key: //p' "$work/demo.log")"
export PSF_BASE_URL PSF_API_KEY
[ -n "$PSF_BASE_URL" ] && [ -n "$PSF_API_KEY" ] || { echo "psf demo did not start" >&2; cat "$work/demo.log" >&2; exit 1; }
# The official npm client through every front door it speaks.
node tests/clients/openai_node.mjs "$PSF_BASE_URL" "$PSF_API_KEY"
ran=0
for example in "$out"/integration/examples/*; do
  case "$example" in
    *.py) said="$("$python" "$example")" ;;
    *.mjs) said="$(node "$example")" ;;
    *.sh) said="$(sh "$example")" ;;
    *) continue ;;
  esac
  if [ -z "$said" ]; then
    echo "package example $example printed nothing" >&2
    exit 1
  fi
  echo "package example $(basename "$example"): ok ($(printf '%s' "$said" | head -c 80 | tr '\n' ' '))"
  ran=$((ran + 1))
done
[ "$ran" -ge 3 ] || { echo "only $ran package examples ran" >&2; exit 1; }
echo "package examples: $ran ran against psf demo"
