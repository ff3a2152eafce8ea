#!/usr/bin/env bash
# The change feed and its wake-up, on a real server with the library preloaded (the worker
# serves database cte_worker every 200 ms and is woken at commit). A consumer LISTENs on
# cte_events, reads cte_changes(after) from its cursor, and: gets a notification from the worker
# (not from the committing session) naming the newest position; finds the transfer's five
# changes there, and none of a transaction that has not committed; a transaction that changed
# things can be prepared (two-phase commit), which NOTIFY in it would forbid.
# Usage: tests/notify.sh HOST PORT
set -uo pipefail
host=$1 port=$2
PSQL=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
failures=0
q() { "$PSQL" -X -q -t -A -h "$host" -p "$port" -U postgres -d cte_worker -v ON_ERROR_STOP=1 "$@"; }
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
check() { if [ "$(q -c "$2")" = t ]; then ok "$1"; else not_ok "$1"; fi; }

"$PSQL" -X -q -h "$host" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS cte_worker WITH (FORCE)" -c "CREATE DATABASE cte_worker"
q -c "CREATE EXTENSION cte_ctel" -c "SET search_path = cte_ctel" \
  -c "SELECT cte_create_account('n-alice', ARRAY['USD'])" -c "SELECT cte_create_account('n-bob', ARRAY['USD'])" \
  -c "SELECT cte_deposit('n-alice', 100, 'USD')" >/dev/null
worker_pid="SELECT pid FROM pg_stat_activity WHERE backend_type = 'cte_ctel feed' AND datname = 'cte_worker'"
for _ in $(seq 150); do [ -n "$(q -c "$worker_pid")" ] && break; sleep 0.2; done
# Let the worker sequence the setup, then take the cursor.
for _ in $(seq 50); do [ "$(q -c 'SELECT count(*) FROM cte_ctel.cte_change_outbox')" = 0 ] && break; sleep 0.1; done
cursor=$(q -c "SELECT COALESCE(max(position), 0) FROM cte_ctel.cte_changes(0, 10000)")
worker=$(q -c "$worker_pid")

heard=$(q 2>&1 <<SQL
LISTEN cte_events;
SELECT 'listener ' || pg_backend_pid();
SELECT 'transfer ' || cte_ctel.cte_transfer('n-alice', 'n-bob', 5, 'USD', 'feed-pay');
DO \$\$ BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM cte_ctel.cte_changes($cursor, 100) WHERE reference = 'feed-pay');
        PERFORM pg_sleep(0.02);
    END LOOP;
END \$\$;
SELECT pg_sleep(0.3) \g /dev/null
SELECT 1 \g /dev/null
SQL
)
listener=$(echo "$heard" | sed -n 's/^listener //p')
event=$(echo "$heard" | sed -n 's/^transfer //p')
notices=$(echo "$heard" | grep 'Asynchronous notification "cte_events"')
if [ -n "$notices" ] && echo "$notices" | grep -q "PID $worker\." && ! echo "$notices" | grep -q "PID $listener\."; then
    ok "a listener on cte_events is woken by the worker, not by the transaction that committed"
else
    not_ok "a listener on cte_events is woken by the worker (worker $worker, listener $listener): $heard"
fi
newest=$(echo "$notices" | sed -n 's/.*with payload "\([0-9]*\)".*/\1/p' | tail -n 1)
check "the notification's payload is the newest position, and the transfer's changes are at or before it" \
    "SELECT ${newest:-0} >= max(position) FROM cte_ctel.cte_changes($cursor, 100) WHERE event_id = '$event'"
check "the consumer's cursor finds the transfer's five changes, in order" \
    "SELECT array_agg(coalesce(old_status, '') || '>' || new_status ORDER BY position)
            = '{>created,created>running,pending>running,running>completed,running>completed}'
       FROM cte_ctel.cte_changes($cursor, 100) WHERE event_id = '$event'"

# Nothing is visible before it commits: an open transaction's transfer is not in the feed.
q <<SQL >/dev/null 2>&1 &
BEGIN;
SELECT cte_ctel.cte_transfer('n-alice', 'n-bob', 1, 'USD', 'uncommitted-pay');
SELECT pg_sleep(2);
ROLLBACK;
SQL
open_pid=$!
sleep 1
q -c "SELECT cte_ctel.cte_run_maintenance()" >/dev/null
check "a change is not in the feed before its transaction commits" \
    "SELECT NOT EXISTS (SELECT 1 FROM cte_ctel.cte_changes($cursor, 1000) WHERE reference = 'uncommitted-pay')"
wait $open_pid

# Two-phase commit: nothing in a transfer's transaction notifies, so it can be prepared.
if q -c "BEGIN" -c "SELECT cte_ctel.cte_transfer('n-alice', 'n-bob', 2, 'USD', 'prepared-pay')" \
     -c "PREPARE TRANSACTION 'cte_feed_test'" >/dev/null 2>&1 \
   && q -c "COMMIT PREPARED 'cte_feed_test'" >/dev/null 2>&1; then
    ok "a transaction that ran cte_transfer can be prepared and committed (PREPARE TRANSACTION)"
else
    not_ok "a transaction that ran cte_transfer can be prepared and committed (PREPARE TRANSACTION)"
    q -c "ROLLBACK PREPARED 'cte_feed_test'" >/dev/null 2>&1
fi
for _ in $(seq 50); do
    [ "$(q -c "SELECT count(*) FROM cte_ctel.cte_changes($cursor, 1000) WHERE reference = 'prepared-pay'")" -gt 0 ] && break
    sleep 0.1
done
check "the prepared transfer's changes reach the feed once committed" \
    "SELECT count(*) = 2 FROM cte_ctel.cte_changes($cursor, 1000) WHERE reference = 'prepared-pay'"
check "cte_verify_ledger() is clean" "SELECT count(*) = 0 FROM cte_ctel.cte_verify_ledger()"
[ "$failures" -eq 0 ]
