#!/usr/bin/env bash
# Dump and restore (SPEC §1 v2): every table and sequence of the extension is a configuration
# table, so pg_dump keeps its rows, and the rows CREATE EXTENSION seeds itself are left out so
# that a restore neither loses nor duplicates them. A database filled through the API
# (tests/lifecycle/fill.sql) is dumped and restored into a new one, and the copy must equal the
# original row for row, verify clean, and go on working: a new transfer, the waiting event's
# callback, a due lien expired and a due retry run by maintenance. The same for pg_dump
# --data-only into a fresh install, for pg_dumpall into a new cluster, and for a dump taken
# while transfers run. cte_verify_ledger() must tell a restore that lost rows from a healthy
# one, and pg_upgrade --check must pass. Prints "ok - ..." / "not ok - ...".
# Usage: tests/dump.sh HOST PORT   (a preloaded test server; a second cluster is made here)
source "$(dirname "$0")/../bin/common.sh"
set +e
host=$1 port=$2
OUT=$(cluster_dir test-logs/dump)
rm -rf "$OUT" && mkdir -p "$OUT" && chmod 777 "$OUT"
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
q() { local db=$1; shift; "$PG_BIN/psql" -X -q -t -A -h "$host" -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"; }
check() { if [ "$(q "$1" -c "$3")" = t ]; then ok "$2"; else not_ok "$2"; fi; }
fingerprint() { (cd "$REPO_ROOT" && q "$1" -f tests/lifecycle/fingerprint.sql) >"$OUT/$1.txt" 2>&1; }
same() { # same WHAT A B: the two databases' rows are equal
    fingerprint "$2"; fingerprint "$3"
    if diff "$OUT/$2.txt" "$OUT/$3.txt" >"$OUT/$3.diff"; then
        ok "$1 ($(wc -l <"$OUT/$2.txt") rows compared)"
    else
        not_ok "$1 (see $OUT/$3.diff)"; head -20 "$OUT/$3.diff"
    fi
}
# keeps_working DB: the copy goes on working (uses q, check and source_digest above).
source "$REPO_ROOT/tests/lifecycle/keeps_working.sh"

for db in cte_dump_src cte_dump_copy cte_dump_data cte_dump_live cte_dump_lost cte_dump_nosequence; do
    q postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done
q postgres -c "CREATE DATABASE cte_dump_src" >/dev/null
(cd "$REPO_ROOT" && q cte_dump_src -f tests/lifecycle/fill.sql) >"$OUT/fill.log" 2>&1 || not_ok "the source database is filled (see $OUT/fill.log)"
source_digest=$(q cte_dump_src -c "SELECT cte_ctel.cte_ledger_digest()")
check cte_dump_src "the extension marks its tables and sequences for pg_dump" \
    "SELECT cardinality(extconfig) = 22 FROM pg_extension WHERE extname = 'cte_ctel'"

# pg_dump -Fc, pg_restore into a new database.
dump() { "$PG_BIN/pg_dump" -h "$host" -p "$port" -U postgres "$@"; }
dump -Fc -f "$OUT/src.dump" cte_dump_src || not_ok "pg_dump runs"
q postgres -c "CREATE DATABASE cte_dump_copy" >/dev/null
"$PG_BIN/pg_restore" -h "$host" -p "$port" -U postgres -d cte_dump_copy --exit-on-error "$OUT/src.dump" \
    >"$OUT/restore.log" 2>&1 && ok "pg_restore restores the dump into a new database" \
    || { not_ok "pg_restore restores the dump (see $OUT/restore.log)"; cat "$OUT/restore.log" | head; }
same "the restored copy equals the original: balances, journal, events, steps, liens, history, feed, executors" cte_dump_src cte_dump_copy
check cte_dump_copy "seeded rows are neither lost nor doubled (currencies, system accounts)" \
    "SELECT (SELECT count(*) FROM cte_ctel.cte_currencies WHERE seeded) = 61
        AND (SELECT count(*) FROM cte_ctel.cte_accounts WHERE is_system) = 2"
# Read tenancy (on in the fill) comes back with the dump: its switch is a row pg_dump keeps, the
# policies CREATE EXTENSION's (pg_dump leaves them out, so none is made twice).
tenant_reads_own="SET ROLE life_shop; SELECT array_agg(id ORDER BY id) = '{l-bob}' FROM cte_ctel.cte_accounts"
check cte_dump_copy "read tenancy comes back: the tenant reads only its own account" "$tenant_reads_own"
keeps_working cte_dump_copy

# pg_dump --data-only into a database with a fresh install.
dump --data-only -Fc -f "$OUT/data.dump" cte_dump_src
q postgres -c "CREATE DATABASE cte_dump_data" >/dev/null
q cte_dump_data -c "CREATE EXTENSION cte_ctel" -c "CREATE FUNCTION public.lifecycle_fee(transaction_id uuid, payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql AS \$\$ BEGIN RETURN jsonb_build_object('fee', payload->'fee'); END \$\$" \
    -c "CREATE FUNCTION public.lifecycle_busy(transaction_id uuid, payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '40001'; END \$\$" >/dev/null
"$PG_BIN/pg_restore" -h "$host" -p "$port" -U postgres -d cte_dump_data --exit-on-error "$OUT/data.dump" \
    >"$OUT/restore-data.log" 2>&1 && ok "pg_restore --data-only restores into a fresh install" \
    || { not_ok "pg_restore --data-only restores (see $OUT/restore-data.log)"; head "$OUT/restore-data.log"; }
same "the data-only copy equals the original" cte_dump_src cte_dump_data
check cte_dump_data "read tenancy comes back with a data-only restore too" "$tenant_reads_own"
keeps_working cte_dump_data

# A dump taken while transfers run is consistent (one snapshot).
q postgres -c "CREATE DATABASE cte_dump_live" >/dev/null
(for i in $(seq 300); do q cte_dump_src -c "SELECT cte_ctel.cte_transfer('l-credit', 'l-bob', 0.01, 'USD')" >/dev/null; done) &
load=$!
sleep 0.5
dump -Fc -f "$OUT/live.dump" cte_dump_src
wait $load
"$PG_BIN/pg_restore" -h "$host" -p "$port" -U postgres -d cte_dump_live --exit-on-error "$OUT/live.dump" >/dev/null 2>&1
check cte_dump_live "a dump taken while transfers run restores consistent: it verifies clean" \
    "SELECT count(*) = 0 FROM cte_ctel.cte_verify_ledger()"
check cte_dump_live "and it holds some of the transfers made during it, each whole" \
    "SELECT count(*) > 0 AND count(*) % 2 = 0 FROM cte_ctel.cte_entries WHERE amount IN (0.01, -0.01)"

# A restore that lost rows is told from a healthy one.
"$PG_BIN/pg_restore" -l "$OUT/src.dump" | grep -v "TABLE DATA cte_ctel cte_entries " >"$OUT/lost.list"
q postgres -c "CREATE DATABASE cte_dump_lost" >/dev/null
"$PG_BIN/pg_restore" -h "$host" -p "$port" -U postgres -d cte_dump_lost -L "$OUT/lost.list" "$OUT/src.dump" >/dev/null 2>&1
check cte_dump_lost "cte_verify_ledger() tells a restore that lost the journal: balances and postings missing" \
    "SELECT count(*) FILTER (WHERE check_name = 'balance_mismatch') > 0
        AND count(*) FILTER (WHERE check_name = 'posting_missing') > 0 FROM cte_ctel.cte_verify_ledger()"
"$PG_BIN/pg_restore" -l "$OUT/src.dump" | grep -v "SEQUENCE SET cte_ctel" >"$OUT/nosequence.list"
q postgres -c "CREATE DATABASE cte_dump_nosequence" >/dev/null
"$PG_BIN/pg_restore" -h "$host" -p "$port" -U postgres -d cte_dump_nosequence -L "$OUT/nosequence.list" "$OUT/src.dump" >/dev/null 2>&1
check cte_dump_nosequence "cte_verify_ledger() tells a restore whose sequences did not come back" \
    "SELECT count(*) FILTER (WHERE check_name = 'sequence_behind') > 0 FROM cte_ctel.cte_verify_ledger()"

# pg_dumpall into a new cluster (roles and all), then pg_upgrade --check on it.
other=$(cluster_dir dumpall-cluster)
other_port=$((port + 3))
stop_cluster "$other"; rm -rf "$other"
start_cluster "$other" "$other_port" "cte_ctel.database = 'cte_dump_src'" "cte_ctel.worker_enabled = off"
"$PG_BIN/pg_dumpall" -h "$host" -p "$port" -U postgres -f "$OUT/all.sql"
"$PG_BIN/psql" -X -q -h "$other" -p "$other_port" -U postgres -d postgres -f "$OUT/all.sql" >"$OUT/dumpall.log" 2>&1
for db in cte_dump_src; do
    (cd "$REPO_ROOT" && "$PG_BIN/psql" -X -q -t -A -h "$other" -p "$other_port" -U postgres -d "$db" -f tests/lifecycle/fingerprint.sql) >"$OUT/dumpall-$db.txt" 2>&1
    fingerprint "$db"
    if diff "$OUT/$db.txt" "$OUT/dumpall-$db.txt" >/dev/null; then
        ok "pg_dumpall into a new cluster brings $db back equal"
        [ "$("$PG_BIN/psql" -X -q -t -A -h "$other" -p "$other_port" -U postgres -d "$db" -c "$tenant_reads_own")" = t ] \
            && ok "and its read tenancy holds" || not_ok "and its read tenancy holds"
    else
        not_ok "pg_dumpall into a new cluster brings $db back equal (see $OUT/dumpall-$db.txt)"
    fi
done
stop_cluster "$other"
new=$(cluster_dir upgrade-check-cluster)
rm -rf "$new" && mkdir -p "$new" && chown postgres: "$new" 2>/dev/null; chmod 700 "$new"
as_server_user "$PG_BIN/initdb" -D "$new" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
if (cd "$OUT" && as_server_user "$PG_BIN/pg_upgrade" --check -b "$PG_BIN" -B "$PG_BIN" -d "$other" -D "$new" -U postgres) >"$OUT/pg_upgrade.log" 2>&1; then
    ok "pg_upgrade --check passes on a cluster holding the ledger (no regprocedure column)"
else
    not_ok "pg_upgrade --check passes (see $OUT/pg_upgrade.log)"; tail -20 "$OUT/pg_upgrade.log"
fi
rm -rf "$new" "$other"
[ "$failures" -eq 0 ]
