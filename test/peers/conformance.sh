#!/usr/bin/env bash
# Run @modelcontextprotocol/conformance server scenarios one at a time.
#   ./conformance.sh URL [SCENARIO...]      (default: every server scenario)
# stdout: "PASS name" / "FAIL name" per scenario, then "N passed, M failed".
# stderr: the failed checks of each failing scenario.
# Env: CONFORMANCE_PACKAGE (the suite: @modelcontextprotocol/conformance, 0.1.16,
#        by default, or conformance-next, 0.2.0-alpha.12),
#      CONFORMANCE_TIMEOUT (seconds per scenario, default 60),
#      BEARER_TOKEN (sent as "Authorization: Bearer ..." on every request),
#      CONFORMANCE_OUT (directory for per-scenario checks.json, default: none).
# Exit status: 0 if every scenario passed, 1 otherwise, 2 on usage errors.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node="$here/node_modules/.bin/node" # Node 22: the CLI needs fs.globSync
cli="$here/node_modules/${CONFORMANCE_PACKAGE:-@modelcontextprotocol/conformance}/dist/index.js"
cmd=("$node" --require "$here/loopback.cjs" --require "$here/bearer.cjs" "$cli")

[ $# -ge 1 ] || { echo "usage: $0 URL [SCENARIO...]" >&2; exit 2; }
[ -x "$node" ] && [ -f "$cli" ] || { echo "run 'npm ci' in $here first" >&2; exit 2; }
url=$1; shift
if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  mapfile -t scenarios < <("${cmd[@]}" list --server | sed -n 's/^  - \([^ ]*\).*/\1/p')
  [ ${#scenarios[@]} -gt 0 ] || { echo "could not list scenarios" >&2; exit 2; }
fi
out=()
[ -n "${CONFORMANCE_OUT:-}" ] && out=(-o "$CONFORMANCE_OUT")

pass=0 fail=0
for s in "${scenarios[@]}"; do
  log=$(NO_COLOR=1 timeout -k 5 "${CONFORMANCE_TIMEOUT:-60}" "${cmd[@]}" server --url "$url" --scenario "$s" "${out[@]}" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "PASS $s"; pass=$((pass + 1))
  else
    echo "FAIL $s"; fail=$((fail + 1))
    [ $rc -eq 124 ] && echo "$s: timed out" >&2
    grep -E '^\s+- \w+: |^\s+Error: |^(Validation|Server test) error|^\s+scenario: ' <<<"$log" |
      sed "s/^ */$s: /" >&2
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
