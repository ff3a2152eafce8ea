#!/usr/bin/env bash
# Runs the client examples against a live server with cte_ctel preloaded, in the database its
# worker serves (the feed consumer is woken by the worker): examples/setup.sql as the server's
# superuser, then the Python example (on the client library clients/python, psycopg 3) and the
# Rust one (on clients/rust, tokio-postgres) as the application role shop_app. Each prints
# "ok - ..." / "not ok - ..." per check.
# Usage: examples/run.sh HOST PORT DATABASE   (DATABASE is dropped and made again)
source "$(dirname "$0")/../bin/common.sh"
set +e
host=$1 port=$2 database=$3
status=0
"$PG_BIN/psql" -X -q -h "$host" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database" || exit 1
"$PG_BIN/psql" -X -q -h "$host" -p "$port" -U postgres -d "$database" -v ON_ERROR_STOP=1 \
    -f "$REPO_ROOT/examples/setup.sql" || exit 1
conninfo="host=$host port=$port dbname=$database user=shop_app"

say "examples/python/marketplace.py (clients/python on psycopg 3, as shop_app)"
# Debian's python3 has python3-psycopg; another python3 first on PATH may not.
PYTHONPATH="$REPO_ROOT/clients/python${PYTHONPATH:+:$PYTHONPATH}" \
    /usr/bin/python3 "$REPO_ROOT/examples/python/marketplace.py" "$conninfo" || status=1

say "examples/rust (clients/rust on tokio-postgres, as shop_app)"
(cd "$REPO_ROOT" && cargo run -q -p cte_ctel_example -- "$conninfo") || status=1
exit "$status"
