#!/usr/bin/env bash
# Makes what a client library's tests need, as the server's superuser `postgres`: DATABASE
# (dropped and made again), the extension in it, and the login role ROLE, which is not a
# superuser and holds only cte_operator (the role the tests call the API as). Shared by
# clients/python/run-tests.sh and clients/rust/run-tests.sh. Uses $PG_BIN/psql, else psql.
# Usage: clients/make-test-database.sh HOST PORT DATABASE ROLE
set -u
if [ $# -ne 4 ]; then
    echo "usage: $0 HOST PORT DATABASE ROLE" >&2
    exit 2
fi
host=$1 port=$2 database=$3 role=$4
psql_bin=${PG_BIN:-$(dirname "$(command -v psql || echo /usr/bin/psql)")}/psql
[ -x "$psql_bin" ] || psql_bin=psql
admin=(-X -q -h "$host" -p "$port" -U postgres -v ON_ERROR_STOP=1)
"$psql_bin" "${admin[@]}" -d postgres \
    -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" -c "CREATE DATABASE \"$database\"" \
    || exit 1
"$psql_bin" "${admin[@]}" -d "$database" -v role="$role" <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION cte_ctel;
SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'role') AS role_missing
\gset
\if :role_missing
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
\endif
GRANT cte_operator TO :"role";
SQL
