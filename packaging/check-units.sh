#!/usr/bin/env bash
# Verifies the systemd units in config/ offline (no running systemd needed):
#   1. `systemd-analyze verify` on copies of mcpgw.service and mcpgw.socket whose ExecStart
#      names the built binary (the real units name /usr/bin/mcpgw, which verify requires to
#      exist). verify exits 0 even on unknown keys or bad values, so any output is a failure.
#   2. `systemd-analyze security --offline=true` on the unit as shipped; fails when the
#      overall exposure is above MAX_EXPOSURE (default 2.0).
# Usage: packaging/check-units.sh   (run from anywhere; `make check-units` runs it)
# Env:   MCPGW_BIN     the binary to put in ExecStart (default: target/debug/mcpgw, built if missing)
#        MAX_EXPOSURE  the highest acceptable exposure (default 2.0)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
max=${MAX_EXPOSURE:-2.0}
bin=${MCPGW_BIN:-$root/target/debug/mcpgw}

if ! command -v systemd-analyze >/dev/null; then
    echo "check-units: systemd-analyze not found (Debian/Ubuntu: apt-get install systemd)" >&2
    exit 2
fi
if [[ ! -x $bin ]]; then
    echo "check-units: $bin missing; building it" >&2
    (cd "$root" && cargo build -p mcpgw)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. syntax and references --------------------------------------------------------------
grep -q '^ExecStart=/usr/bin/mcpgw ' "$root/config/mcpgw.service" || {
    echo "check-units: config/mcpgw.service: ExecStart must start with /usr/bin/mcpgw (install rewrites it)" >&2
    exit 1
}
sed "s|^ExecStart=/usr/bin/mcpgw |ExecStart=$bin |" "$root/config/mcpgw.service" >"$tmp/mcpgw.service"
cp "$root/config/mcpgw.socket" "$tmp/mcpgw.socket"
out=$(cd "$tmp" && systemd-analyze verify --man=no mcpgw.service mcpgw.socket 2>&1) || status=$?
if [[ -n $out || ${status:-0} -ne 0 ]]; then
    echo "$out" >&2
    echo "check-units: systemd-analyze verify FAILED" >&2
    exit 1
fi
echo "check-units: systemd-analyze verify: mcpgw.service, mcpgw.socket OK"

# ---- 2. exposure ---------------------------------------------------------------------------
report=$(systemd-analyze security --offline=true "$root/config/mcpgw.service" 2>&1) || true
line=$(grep -E 'Overall exposure level' <<<"$report" || true)
exposure=$(sed -nE 's/.*Overall exposure level for [^:]+: ([0-9]+\.[0-9]+).*/\1/p' <<<"$line")
if [[ -z $exposure ]]; then
    echo "$report" >&2
    echo "check-units: no exposure figure in the security report" >&2
    exit 1
fi
# Lines the analyser marks as exposed (✗), for the record.
grep -E '^✗' <<<"$report" | sed 's/^/check-units:   /' || true
if awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e > m) }'; then
    echo "check-units: exposure $exposure is above $max: FAILED" >&2
    exit 1
fi
echo "check-units: systemd-analyze security --offline=true: exposure $exposure (max $max) OK"
