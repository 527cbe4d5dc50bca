#!/usr/bin/env bash
# Runs the cargo-fuzz targets for `make fuzz`, `make fuzz-smoke` and `make fuzz-regressions`
# (fuzz/README.md). Every target runs; the script fails at the end if any of them crashed.
#
#   fuzz/run.sh regressions TARGET...            replay fuzz/regressions/<target>/* once each
#   fuzz/run.sh fuzz SECONDS CORPUS TARGET...    fuzz each target for SECONDS, new inputs in
#                                                CORPUS/<target> (relative to fuzz/), seeds from
#                                                corpus/<target>; FUZZ_JOBS targets at a time
#
# Environment: CARGO (cargo), FUZZ_FLAGS (the cargo-fuzz build flags, which must be the same for
# every command or cargo rebuilds), FUZZ_LIBFUZZER (options for every libFuzzer run), FUZZ_JOBS
# (targets fuzzed at once; default: the number of CPUs).
set -euo pipefail
cd "$(dirname "$0")"

CARGO=${CARGO:-cargo}
read -r -a flags <<<"${FUZZ_FLAGS:--O --sanitizer none --codegen-units 16}"
read -r -a libfuzzer <<<"${FUZZ_LIBFUZZER:--timeout=10 -rss_limit_mb=2048}"
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
logs=target/fuzz-logs
mkdir -p "$logs"

# The interesting end of a failed run's output: the panic or libFuzzer's report onwards.
report() {
    sed -n '/panicked at\|ERROR: libFuzzer\|==ERROR\|^Error:/,$p' "$1" | head -n "${2:-80}" >&2
}

regressions() {
    local failed=() t input log
    for t in "$@"; do
        [ -d "regressions/$t" ] || continue
        mapfile -t inputs < <(find "regressions/$t" -type f ! -name '*.md' | sort)
        [ ${#inputs[@]} -gt 0 ] || continue
        echo "fuzz: $t: replaying ${#inputs[@]} regression input(s)"
        for input in "${inputs[@]}"; do
            log=$logs/$t.regression.log
            if ! "$CARGO" fuzz run "${flags[@]}" "$t" "$input" -- "${libfuzzer[@]}" >"$log" 2>&1; then
                echo "fuzz: $t crashes on fuzz/$input:" >&2
                report "$log" 40
                failed+=("fuzz/$input")
            fi
        done
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz: failing regression inputs: ${failed[*]}" >&2
        return 1
    fi
}

# One target for $1 seconds into corpus dir $2; its exit status is the run's.
fuzz_one() {
    local t=$1 seconds=$2 corpus=$3 log=$logs/$1.log
    local extra=()
    [ -f "dicts/$t.dict" ] && extra+=("-dict=dicts/$t.dict")
    mkdir -p "$corpus"
    local dirs=("$corpus")
    [ "$corpus" -ef "corpus/$t" ] || dirs+=("corpus/$t")
    if "$CARGO" fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" "${libfuzzer[@]}" "${extra[@]}" >"$log" 2>&1; then
        echo "fuzz: $t ok: $(grep -E '^Done [0-9]+ runs' "$log" || tail -n 1 "$log")"
    else
        echo "fuzz: $t FAILED (log: fuzz/$log; input: fuzz/artifacts/$t/):" >&2
        report "$log"
        return 1
    fi
}

fuzz() {
    local seconds=$1 root=$2
    shift 2
    # Build first, once: concurrent `cargo fuzz run`s would only wait on each other's build.
    "$CARGO" fuzz build "${flags[@]}"
    echo "fuzz: ${*} for ${seconds} s each, ${jobs} at a time"
    local failed=() t
    for t in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
            wait -n || true
        done
        rm -f "$logs/$t.status"
        (
            rc=0
            fuzz_one "$t" "$seconds" "$root/$t" || rc=$?
            echo "$rc" >"$logs/$t.status"
        ) &
    done
    wait
    for t in "$@"; do
        [ "$(cat "$logs/$t.status" 2>/dev/null)" = 0 ] || failed+=("$t")
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz: crashed: ${failed[*]}" >&2
        return 1
    fi
}

case "${1:-}" in
    regressions) shift; regressions "$@" ;;
    fuzz) shift; fuzz "$@" ;;
    *) echo "usage: $0 regressions TARGET... | fuzz SECONDS CORPUS TARGET..." >&2; exit 2 ;;
esac
