#!/usr/bin/env bash
# Run the official MCP conformance suite (@modelcontextprotocol/conformance, server scenarios)
# against mcpgw, with tests/fixture (mcpgw-fixture) as a stdio upstream for every tool but
# test_reconnection, which tests/python/fixtures/polling_server.py serves as an http upstream: it
# closes the call's SSE reply after the priming event, so mcpgw has to resume it (SEP-1699).
# `make test-conformance` runs both suites.
#
#   tests/conformance/run.sh                 # the active suite, checked against expected-failures.yml
#   tests/conformance/run.sh --suite all     # extra arguments go to `conformance server`
#
# Environment: MCPGW_BIN (the gateway; default target/debug/mcpgw), CONFORMANCE_NO_BUILD=1 (use the
# binaries as they are), CONFORMANCE_KEEP=1 (keep the temporary directory with logs and results),
# CONFORMANCE_PYTHON (a Python with the `mcp` SDK; default .venv/bin/python, from make deps-python).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

gateway=${MCPGW_BIN:-$root/target/debug/mcpgw}
fixture=$root/target/debug/mcpgw-fixture
node=$here/node_modules/node/bin/node
cli=$here/node_modules/@modelcontextprotocol/conformance/dist/index.js
python=${CONFORMANCE_PYTHON:-$root/.venv/bin/python}
polling_server=$root/tests/python/fixtures/polling_server.py
start_timeout=30 # seconds mcpgw may take to print its listening line
polling_start_timeout=60 # seconds the Python upstream may take (importing the SDK is slow)

# ---- the suite and its Node 22 (npm packages, pinned in package-lock.json) ---------------------
stamp=$here/node_modules/.installed
if [[ ! -e $stamp || $here/package-lock.json -nt $stamp || $here/package.json -nt $stamp ]]; then
    echo "conformance: npm ci in tests/conformance" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
fi
[[ -x $node && -f $cli ]] || { echo "conformance: $node or $cli is missing; remove $stamp and retry" >&2; exit 1; }

# ---- the gateway and the fixture ---------------------------------------------------------------
# Two builds, so mcpgw is built with its own features only (as `make build` does), not with the
# rmcp features the fixture adds.
if [[ ${CONFORMANCE_NO_BUILD:-} != 1 ]]; then
    cargo build --quiet -p mcpgw
    cargo build --quiet -p mcpgw-tests --bin mcpgw-fixture
fi
[[ -x $gateway && -x $fixture ]] || { echo "conformance: $gateway or $fixture is missing" >&2; exit 1; }
[[ -x $python ]] || { echo "conformance: $python is missing; run make deps-python" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-conformance.XXXXXX")
gw_pid=
drain_pid=
polling_pid=
polling_drain_pid=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $gw_pid ]] && kill -0 "$gw_pid" 2>/dev/null; then
        kill -TERM "$gw_pid" 2>/dev/null || true
        # mcpgw ends its sessions (and kills the fixture children) on SIGTERM; give it 10 s.
        timeout 10 tail --pid="$gw_pid" -f /dev/null 2>/dev/null || kill -KILL "$gw_pid" 2>/dev/null || true
        wait "$gw_pid" 2>/dev/null || true
    fi
    if [[ -n $drain_pid ]]; then
        # It ends when the last writer of mcpgw's stderr does; bound that too.
        timeout 5 tail --pid="$drain_pid" -f /dev/null 2>/dev/null || kill "$drain_pid" 2>/dev/null || true
        wait "$drain_pid" 2>/dev/null || true
    fi
    # The upstream after mcpgw, which ends its sessions there on the way out.
    if [[ -n $polling_pid ]] && kill -0 "$polling_pid" 2>/dev/null; then
        kill -TERM "$polling_pid" 2>/dev/null || true
        timeout 10 tail --pid="$polling_pid" -f /dev/null 2>/dev/null || kill -KILL "$polling_pid" 2>/dev/null || true
        wait "$polling_pid" 2>/dev/null || true
    fi
    if [[ -n $polling_drain_pid ]]; then
        timeout 5 tail --pid="$polling_drain_pid" -f /dev/null 2>/dev/null || kill "$polling_drain_pid" 2>/dev/null || true
        wait "$polling_drain_pid" 2>/dev/null || true
    fi
    exec 3<&-
    if [[ ${CONFORMANCE_KEEP:-} == 1 || $status -ne 0 ]]; then
        echo "conformance: logs and results kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the http upstream that closes test_reconnection's reply early; read its URL from stdout ----
# Its retry: is 500 ms. Its stderr (one line per call and per resume) goes to polling.log.
mkfifo "$tmp/polling.stdout"
"$python" "$polling_server" 500 >"$tmp/polling.stdout" 2>"$tmp/polling.log" &
polling_pid=$!
exec 4<"$tmp/polling.stdout"
polling_url=
if IFS= read -r -t "$polling_start_timeout" -u 4 line && [[ $line =~ listening\ on\ (http://127\.0\.0\.1:[0-9]+/mcp) ]]; then
    polling_url=${BASH_REMATCH[1]}
fi
if [[ -z $polling_url ]]; then
    echo "conformance: $polling_server did not report its address within ${polling_start_timeout}s; its log:" >&2
    cat "$tmp/polling.log" >&2 || true
    exit 1
fi
cat <&4 >/dev/null &
polling_drain_pid=$!
exec 4<&-

cat >"$tmp/mcpgw.toml" <<EOF
# Written by tests/conformance/run.sh: the conformance fixture, and test_reconnection from an http
# upstream that closes its reply stream early (each tool from one upstream, so no name collides).
[server]
listen = "127.0.0.1:0"

[upstreams.fixture]
kind = "stdio"
command = "$fixture"
share = "session"
tools_deny = ["test_reconnection"]

[upstreams.polling]
kind = "http"
url = "$polling_url"
share = "session"
tools_allow = ["test_reconnection"]
# A reply stream closed early and resumed (SEP-1699) is the handshake era's; the SDK's server
# speaks 2026-07-28 too, where there is no resumption, and era = "auto" would pick that.
era = "handshake"
EOF

# ---- start mcpgw on a free port; read the port from its log --------------------------------------
mkfifo "$tmp/stderr"
MCPGW_LOG=${MCPGW_LOG:-info} "$gateway" --config "$tmp/mcpgw.toml" --listen 127.0.0.1:0 2>"$tmp/stderr" &
gw_pid=$!
exec 3<"$tmp/stderr"
url=
deadline=$((SECONDS + start_timeout))
while ((SECONDS < deadline)); do
    if ! IFS= read -r -t $((deadline - SECONDS)) -u 3 line; then
        break # EOF (mcpgw exited) or the deadline
    fi
    printf '%s\n' "$line" >>"$tmp/mcpgw.log"
    if [[ $line =~ listening\ on\ (http://127\.0\.0\.1:[0-9]+) ]]; then
        url=${BASH_REMATCH[1]}/mcp
        break
    fi
done
if [[ -z $url ]]; then
    echo "conformance: mcpgw did not report its address within ${start_timeout}s; its log:" >&2
    cat "$tmp/mcpgw.log" >&2 || true
    exit 1
fi
# Keep draining its stderr into the log, so it never blocks on a full pipe.
cat <&3 >>"$tmp/mcpgw.log" &
drain_pid=$!
exec 3<&-
echo "conformance: mcpgw (pid $gw_pid) on $url, upstreams $fixture and $polling_url" >&2

# ---- the suite -------------------------------------------------------------------------------
set +e
"$node" "$cli" server --url "$url" --expected-failures "$here/expected-failures.yml" -o "$tmp/results" "$@" \
    >"$tmp/suite.log" 2>&1
suite_status=$?
set -e

# The suite prints every check of every scenario; show its summary (from "=== SUMMARY ===" on).
if grep -q '^=== SUMMARY ===' "$tmp/suite.log"; then
    sed -n '/^=== SUMMARY ===/,$p' "$tmp/suite.log"
else
    cat "$tmp/suite.log"
fi
if [[ $suite_status -ne 0 ]]; then
    echo "conformance: FAILED (exit $suite_status); full output in $tmp/suite.log" >&2
    # Point at the checks that failed or warned (a WARNING fails a run with a baseline).
    grep -nE '"status": "(FAILURE|WARNING)"|✗|FAILURE|WARNING' "$tmp/suite.log" | head -n 60 >&2 || true
    exit "$suite_status"
fi
# The suite cannot see whether mcpgw resumed test_reconnection's stream (mcpgw answers it as JSON),
# so ask the upstream: each call had its stream closed early and mcpgw came back for the rest.
calls=$(grep -c '^polling-server: test_reconnection called' "$tmp/polling.log" || true)
resumes=$(grep -c '^polling-server: resumed ' "$tmp/polling.log" || true)
if ((calls > 0)); then
    if ((resumes < calls)); then
        echo "conformance: FAILED: test_reconnection ran $calls time(s), mcpgw resumed its stream $resumes time(s)" >&2
        cat "$tmp/polling.log" >&2
        exit 1
    fi
    echo "conformance: test_reconnection's stream closed early $calls time(s), resumed by mcpgw $resumes time(s)" >&2
fi
echo "conformance: passed" >&2
