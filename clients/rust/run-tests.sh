#!/usr/bin/env bash
# Runs the Rust client's tests (cargo test -p cte_ctel_client) against a live server with
# cte_ctel preloaded. Makes what they need as the server's superuser `postgres`: DATABASE
# (dropped and made again), the extension, and the login role rs_app, which is not a superuser
# and holds only cte_operator; the tests call the API as rs_app and do the administrator's part
# (registering hosted types, maintenance passes) as postgres. Prints one `ok - NAME` or
# `not ok - NAME` line per test (the form bin/test counts) and fails if any test failed or
# would have been skipped. Installs nothing: cargo builds the crate (offline when
# CARGO_NET_OFFLINE=true).
# Usage: clients/rust/run-tests.sh HOST PORT DATABASE [CARGO TEST FILTER]
set -u -o pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 HOST PORT DATABASE" >&2
    exit 2
fi
host=$1 port=$2 database=$3
shift 3  # anything after DATABASE goes to the test binaries (a name filter, --exact, ...)
here=$(cd "$(dirname "$0")" && pwd)
"$here/../make-test-database.sh" "$host" "$port" "$database" rs_app || exit 1
export CTE_CTEL_TEST_DSN="host=$host port=$port dbname=$database user=rs_app"
export CTE_CTEL_TEST_ADMIN_DSN="host=$host port=$port dbname=$database user=postgres"
export CTE_CTEL_TEST_REQUIRED=1  # a test without its server fails here instead of skipping
cd "$here" || exit 1
# Build first, so the timings below are the tests' own and a build error is reported as one.
cargo test -p cte_ctel_client --no-run 2>&1 | tail -n 5 || { echo "not ok - build"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test -p cte_ctel_client --no-fail-fast -- "$@" 2>&1 | tee "$log" \
    | sed -E -e 's/^test (.*) \.\.\. ok$/ok - \1/' -e 's/^test (.*) \.\.\. FAILED$/not ok - \1/' \
    || status=$?
if grep -q '^skipped: ' "$log"; then
    echo "not ok - a test skipped although run-tests.sh set its server"
    status=1
fi
exit "$status"
