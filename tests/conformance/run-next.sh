#!/usr/bin/env bash
# Run the newest official MCP conformance suite (@modelcontextprotocol/conformance 0.2.0-alpha.12,
# the npm alias `conformance-next` in package.json) by its frozen requirement sets: `server
# --requirements 2025-11-25` (the handshake era) and `--requirements 2026-07-28` (stateless
# requests), each at its own wire version. The upstream is tests/fixture in its dual-era HTTP mode
# (`mcpgw-fixture --http`: sessions for `initialize`, 2026-07-28 requests served statelessly on
# the same /mcp, as the suite's own everything-server), behind mcpgw as an http upstream.
# `make test-conformance` runs it after run.sh (0.1.16).
#
#   tests/conformance/run-next.sh                 # both sets through mcpgw
#   tests/conformance/run-next.sh 2026-07-28      # one set
#   tests/conformance/run-next.sh --direct        # both sets against the fixture alone (no mcpgw)
#
# Through mcpgw each set is checked against expected-failures-<revision>.yml (scenarios that may
# fail, each with its reason; a listed scenario that passes fails the run, so keep them exact).
# Direct, there is no baseline: the fixture must pass every scored check. Only scored scenarios
# decide the exit status (the suite runs the `not_scored` ones too and reports them apart).
# Each set ends with one line `scored: N scenarios (F not clean), P checks passed, W warned, Q failed`
# (tests/conformance/scored.mjs; a WARNING fails a scenario like a FAILURE).
#
# Environment: as run.sh (MCPGW_BIN, CONFORMANCE_NO_BUILD=1, CONFORMANCE_KEEP=1).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

direct=
revisions=()
for arg in "$@"; do
    case $arg in
        --direct) direct=1 ;;
        2025-11-25 | 2026-07-28) revisions+=("$arg") ;;
        *) echo "run-next.sh: unknown argument $arg (--direct, 2025-11-25, 2026-07-28)" >&2; exit 2 ;;
    esac
done
((${#revisions[@]})) || revisions=(2025-11-25 2026-07-28)

gateway=${MCPGW_BIN:-$root/target/debug/mcpgw}
fixture=$root/target/debug/mcpgw-fixture
node=$here/node_modules/node/bin/node
cli=$here/node_modules/conformance-next/dist/index.js
start_timeout=30 # seconds mcpgw or the fixture may take to report its address

# ---- the suite and its Node 22 (npm packages, pinned in package-lock.json) ---------------------
stamp=$here/node_modules/.installed
if [[ ! -e $stamp || $here/package-lock.json -nt $stamp || $here/package.json -nt $stamp ]]; then
    echo "conformance: npm ci in tests/conformance" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
fi
[[ -x $node && -f $cli ]] || { echo "conformance: $node or $cli is missing; remove $stamp and retry" >&2; exit 1; }

if [[ ${CONFORMANCE_NO_BUILD:-} != 1 ]]; then
    cargo build --quiet -p mcpgw
    cargo build --quiet -p mcpgw-tests --bin mcpgw-fixture
fi
[[ -x $gateway && -x $fixture ]] || { echo "conformance: $gateway or $fixture is missing" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-conformance-next.XXXXXX")
pids=() # what this script started, stopped in reverse order
stop() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    # mcpgw ends its sessions on SIGTERM; give each 10 s.
    timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$? i
    trap - EXIT INT TERM
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop "${pids[i]}"
    done
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

# start NAME REGEX COMMAND...: run COMMAND with its stdout and stderr in $tmp/NAME.log, wait until
# a line of it matches REGEX (its first group is the URL), and set `started_url`.
start() {
    local name=$1 regex=$2 line deadline
    shift 2
    mkfifo "$tmp/$name.fifo"
    "$@" >"$tmp/$name.fifo" 2>&1 &
    pids+=($!)
    exec 3<"$tmp/$name.fifo"
    started_url=
    deadline=$((SECONDS + start_timeout))
    while ((SECONDS < deadline)) && IFS= read -r -t $((deadline - SECONDS)) -u 3 line; do
        printf '%s\n' "$line" >>"$tmp/$name.log"
        if [[ $line =~ $regex ]]; then
            started_url=${BASH_REMATCH[1]}
            break
        fi
    done
    if [[ -z $started_url ]]; then
        echo "conformance: $name did not report its address within ${start_timeout}s; its log:" >&2
        cat "$tmp/$name.log" >&2 || true
        exit 1
    fi
    # Keep draining its output into the log, so it never blocks on a full pipe.
    cat <&3 >>"$tmp/$name.log" &
    pids+=($!)
    exec 3<&-
}

start fixture 'listening on (http://127\.0\.0\.1:[0-9]+/mcp)' "$fixture" --http 127.0.0.1:0
fixture_url=$started_url
url=$fixture_url
if [[ -z $direct ]]; then
    cat >"$tmp/mcpgw.toml" <<EOF
# Written by tests/conformance/run-next.sh: the dual-era fixture as an http upstream.
[server]
listen = "127.0.0.1:0"

[upstreams.fixture]
kind = "http"
url = "$fixture_url"
share = "session"
EOF
    MCPGW_LOG=${MCPGW_LOG:-info} start mcpgw 'listening on (http://127\.0\.0\.1:[0-9]+)' \
        "$gateway" --config "$tmp/mcpgw.toml" --listen 127.0.0.1:0
    url=$started_url/mcp
fi
if [[ -n $direct ]]; then
    echo "conformance-next: the fixture alone on $url" >&2
else
    echo "conformance-next: mcpgw on $url, upstream the fixture on $fixture_url" >&2
fi

# ---- the suite, one requirement set at a time ------------------------------------------------
failed=0
for revision in "${revisions[@]}"; do
    args=(server --url "$url" --requirements "$revision" -o "$tmp/results-$revision")
    if [[ -z $direct ]]; then
        args+=(--expected-failures "$here/expected-failures-$revision.yml")
    fi
    log=$tmp/suite-$revision.log
    set +e
    "$node" "$cli" "${args[@]}" >"$log" 2>&1
    status=$?
    set -e
    echo "== --requirements $revision${direct:+ (direct)}" >&2
    if grep -q '^=== SUMMARY ===' "$log"; then
        sed -n '/^=== SUMMARY ===/,$p' "$log" | grep -v '^✓' >&2
    else
        cat "$log" >&2
    fi
    "$node" "$here/scored.mjs" "$tmp/results-$revision" "$here/node_modules/conformance-next/requirements/$revision.yaml" >&2 ||
        status=1
    if [[ $status -ne 0 ]]; then
        echo "conformance-next: --requirements $revision FAILED (exit $status); full output in $log" >&2
        failed=1
    fi
done
if ((failed)); then
    exit 1
fi
echo "conformance-next: passed" >&2
