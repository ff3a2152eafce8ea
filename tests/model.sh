#!/usr/bin/env bash
# The model-based checker (tests/stress/src/bin/cte_ctel_model.rs): a reference model of the
# ledger runs beside the extension on a seeded random sequence of calls (replays, conflicting
# keys, captures, releases, escrow checkouts and their refunds, races of several sessions on
# one key) and checks every answer and balance. Two runs: a short one with races, and (given
# PGDATA, the server's data directory) one that kills the postmaster twice and sends the call
# it interrupted again.
# Usage: tests/model.sh HOST_DIR PORT [PGDATA]
# The database (CTE_CTEL_MODEL_DATABASE, default cte_model) is dropped and made anew by each
# run. CTE_CTEL_MODEL_SEED fixes the seed (each run prints it; the crash run uses seed + 1).
# CTE_CTEL_MODEL_CALLS and CTE_CTEL_MODEL_CRASHES size the runs (bin/stress --long: long ones).
# Prints "ok - ..." / "not ok - ..." lines; on a disagreement, the checker's report as comments.
set -uo pipefail
host=$1 port=$2 pgdata=${3:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
seed=${CTE_CTEL_MODEL_SEED:-$((RANDOM * 32768 + RANDOM))}
database=${CTE_CTEL_MODEL_DATABASE:-cte_model}
calls=${CTE_CTEL_MODEL_CALLS:-400}
crashes=${CTE_CTEL_MODEL_CRASHES:-2}
failures=0

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }

cd "$repo" || exit 1
if ! cargo build -q -p cte_ctel_stress --bin cte_ctel_model; then
    not_ok "cte_ctel_model builds"
    exit 1
fi
model=${CARGO_TARGET_DIR:-$repo/target}/debug/cte_ctel_model

# run DESCRIPTION ARGS...: one run of the checker; its last line is the verdict.
run() {
    local what=$1 output status verdict
    shift
    output=$(timeout 300 "$model" --host "$host" --port "$port" --database "$database" "$@" 2>&1)
    status=$?
    verdict=$(printf '%s\n' "$output" | tail -n 1)
    if [ $status -eq 0 ] && [[ $verdict == *", 0 disagreements" ]]; then
        ok "$what: $verdict"
    else
        not_ok "$what (exit $status; rerun with $*)"
        printf '%s\n' "$output" | tail -n 200 | sed 's/^/# /'
    fi
}

run "model agrees, seed $seed, $calls calls, races of 3 sessions" \
    --seed "$seed" --calls "$calls" --threads 3
if [ -n "$pgdata" ]; then
    run "model agrees across crashes, seed $((seed + 1)), $((calls * 3 / 8)) calls, $crashes crashes" \
        --seed "$((seed + 1))" --calls "$((calls * 3 / 8))" --threads 2 --crashes "$crashes" \
        --pgdata "$pgdata"
else
    ok "model across crashes # SKIP no PGDATA given"
fi
exit $((failures > 0))
