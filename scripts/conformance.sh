#!/usr/bin/env bash
# Runs the official MCP conformance suite (pinned in
# tests/conformance/package.json, with Node 22 from npm) against the real
# sidecar, through tests/conformance/client.mjs, for both requirement sets.
# Gate: every auth scenario of each set passes with zero failures and zero
# warnings. The sets also score non-auth MCP client scenarios (tool calls,
# elicitation, SSE retry, …) that are the editor's business, not this
# sidecar's; their summary is printed, not gated.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh
suite="$root/tests/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js"

status=0
for spec in "2025-11-25:14" "2026-07-28:25"; do
  req=${spec%%:*}
  expected=${spec##*:}
  # The suite's results, replaced on each run (not a temp folder: they
  # are what to read when a scenario fails).
  out=$root/target/test-logs/conformance-$req
  rm -rf "$out" && mkdir -p "$out"
  node "$suite" client --command "node $root/tests/conformance/client.mjs" \
    --requirements "$req" -o "$out" >"$out/summary.txt" 2>"$out/stderr.txt" || true
  echo "conformance --requirements $req (all scenarios, auth and non-auth):"
  grep -E '^(Total|Running)' "$out/summary.txt" | sed 's/^/  /' || true
  node tests/conformance/check.mjs "$req" "$out" "$expected" ||
    { status=1; echo "conformance --requirements $req: results in $out"; }
done
exit $status
