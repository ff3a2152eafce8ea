#!/usr/bin/env bash
# The background worker, on a real server with the library preloaded, serving database
# cte_worker every 200 ms (bin/test starts the server so). Nobody calls cte_run_maintenance()
# here: each check waits, with a bound, for the worker to do it.
# Usage: tests/worker.sh HOST PORT
set -uo pipefail
host=$1 port=$2
PSQL=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
failures=0

q() { "$PSQL" -X -q -t -A -h "$host" -p "$port" -U postgres -d cte_worker -v ON_ERROR_STOP=1 "$@"; }
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }

# wait_for SECONDS DESCRIPTION SQL: passes as soon as SQL returns t, fails after SECONDS.
wait_for() {
    local seconds=$1 what=$2 sql=$3 tries
    for ((tries = 0; tries < seconds * 5; tries++)); do
        if [ "$(q -c "$sql" 2>/dev/null)" = t ]; then ok "$what"; return 0; fi
        sleep 0.2
    done
    not_ok "$what (nothing after ${seconds}s)"
    return 1
}

# check DESCRIPTION SQL: SQL must return t now.
check() {
    if [ "$(q -c "$2")" = t ]; then ok "$1"; else not_ok "$1"; fi
}

worker_pid="SELECT pid FROM pg_stat_activity WHERE backend_type = 'cte_ctel maintenance'"
feed_pid="SELECT pid FROM pg_stat_activity WHERE backend_type = 'cte_ctel feed'"

"$PSQL" -X -q -h "$host" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS cte_worker WITH (FORCE)" -c "CREATE DATABASE cte_worker"
q -c "CREATE EXTENSION cte_ctel" -c "SET search_path = cte_ctel" \
  -c "SELECT cte_create_account('w-alice', ARRAY['USD'])" -c "SELECT cte_create_account('w-bob', ARRAY['USD'])" \
  -c "SELECT cte_deposit('w-alice', 10, 'USD')" >/dev/null

# The postmaster restarts a worker that could not connect every 5 s, so it may take a while.
wait_for 30 "the worker runs in cte_worker and shows its name in pg_stat_activity" \
    "SELECT EXISTS ($worker_pid AND datname = 'cte_worker')"
wait_for 30 "so does the feed worker, a process of its own" \
    "SELECT EXISTS ($feed_pid AND datname = 'cte_worker')"

lien=$(q -c "SELECT cte_ctel.ctel_create_lien(NULL, 'w-alice', 4, 'USD', now() + interval '1 second')")
check "the lien holds its funds until it expires" "SELECT cte_ctel.cte_available_balance('w-alice', 'USD') = 6"
wait_for 15 "a lien with a short expiry is expired with nobody calling maintenance" \
    "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE id = '$lien'"
check "its funds are available again" "SELECT cte_ctel.cte_available_balance('w-alice', 'USD') = 10"

event=$(q -c "SELECT cte_ctel.cte_create_event('overdue', timeout => '1 second')")
q -c "SELECT cte_ctel.cte_add_transaction('$event', 'pay', 'wallet.transfer',
        '{\"source_account_id\": \"w-alice\", \"destination_account_id\": \"w-bob\", \"amount\": 3, \"currency\": \"USD\"}')" \
  -c "SELECT cte_ctel.cte_add_transaction('$event', 'approval', 'external', '{}')" \
  -c "SELECT cte_ctel.cte_start_event('$event')" >/dev/null
check "the event waits with its first step done" "SELECT cte_ctel.cte_balance('w-bob', 'USD') = 3"
wait_for 15 "at its deadline the worker asks the step it waits on to compensate (its outcome is unknown)" \
    "SELECT e.status = 'compensating' AND e.error = 'deadline passed' AND t.status = 'compensating'
       FROM cte_ctel.cte_events e JOIN cte_ctel.cte_transactions t ON t.event_id = e.id
      WHERE e.id = '$event' AND t.type = 'external'"
check "the transfer before it stands until that compensation is reported" \
    "SELECT cte_ctel.cte_balance('w-bob', 'USD') = 3"
q -c "SELECT cte_ctel.cte_complete_compensation(id) FROM cte_ctel.cte_transactions
       WHERE event_id = '$event' AND type = 'external'" >/dev/null
check "reported, the event is compensated and its transfer undone" \
    "SELECT status = 'compensated' FROM cte_ctel.cte_events WHERE id = '$event'
        AND cte_ctel.cte_balance('w-bob', 'USD') = 0"

# A compensation never reported within cte_ctel.compensation_timeout leaves the event failed,
# for an operator, with what it holds still held.
q -c "ALTER SYSTEM SET cte_ctel.compensation_timeout = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
stuck=$(q -c "SELECT cte_ctel.cte_create_event('stuck', timeout => '1 second')")
q -c "SELECT cte_ctel.cte_add_transaction('$stuck', 'hold', 'wallet.withdrawal',
        '{\"account_id\": \"w-alice\", \"amount\": 2, \"currency\": \"USD\"}')" \
  -c "SELECT cte_ctel.cte_add_transaction('$stuck', 'bank', 'external', '{}')" \
  -c "SELECT cte_ctel.cte_start_event('$stuck')" >/dev/null
wait_for 20 "an external compensation never reported leaves its event failed after compensation_timeout" \
    "SELECT status = 'failed' FROM cte_ctel.cte_events WHERE id = '$stuck'"
check "and its withdrawal's hold still held, for an operator" \
    "SELECT cte_ctel.cte_available_balance('w-alice', 'USD') = cte_ctel.cte_balance('w-alice', 'USD') - 2"
q -c "ALTER SYSTEM RESET cte_ctel.compensation_timeout" -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT cte_ctel.cte_resolve_event('$stuck', 'the bank confirmed nothing was paid')" >/dev/null
check "resolved by an operator, the hold is released" \
    "SELECT status = 'resolved' FROM cte_ctel.cte_events WHERE id = '$stuck'
        AND cte_ctel.cte_available_balance('w-alice', 'USD') = cte_ctel.cte_balance('w-alice', 'USD')"

q >/dev/null <<'SQL'
CREATE SEQUENCE flaky_calls;
CREATE FUNCTION flaky(transaction_id uuid, payload jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
        -- Executors run with search_path = pg_catalog, pg_temp: names are qualified.
    IF nextval('public.flaky_calls') = 1 THEN
        RAISE EXCEPTION 'first call conflicts' USING ERRCODE = '40001';
    END IF;
    RETURN '{"ok": true}';
END $$;
-- Registered as SPEC §12 asks: by a role that is not a superuser, which owns the function,
-- pinned to its schema and pg_temp.
DO $do$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'script_registrar') THEN
        CREATE ROLE script_registrar NOLOGIN IN ROLE cte_admin;
    END IF;
END $do$;
GRANT USAGE ON SEQUENCE public.flaky_calls TO script_registrar;
ALTER FUNCTION public.flaky(uuid, jsonb) OWNER TO script_registrar;
ALTER FUNCTION public.flaky(uuid, jsonb) SET search_path = public, pg_temp;
SET ROLE script_registrar;
SELECT cte_ctel.cte_register_executor('flaky.step', 'public.flaky(uuid, jsonb)');
RESET ROLE;
SQL
retry=$(q -c "SET cte_ctel.retry_backoff_ms = 300" -c "SELECT cte_ctel.cte_create_event('retried')" | tail -n 1)
q -c "SET cte_ctel.retry_backoff_ms = 300" \
  -c "SELECT cte_ctel.cte_add_transaction('$retry', 'flaky', 'flaky.step', '{}')" \
  -c "SELECT cte_ctel.cte_start_event('$retry')" >/dev/null
check "a retryable failure leaves the event waiting for its retry" \
    "SELECT status = 'waiting' FROM cte_ctel.cte_events WHERE id = '$retry'"
wait_for 15 "the worker runs the retry when it falls due" \
    "SELECT e.status = 'completed' AND t.attempts = 2 FROM cte_ctel.cte_events e
       JOIN cte_ctel.cte_transactions t ON t.event_id = e.id WHERE e.id = '$retry'"

first_pid=$(q -c "$worker_pid")
first_feed_pid=$(q -c "$feed_pid")
q -c "SELECT pg_terminate_backend($first_pid)" -c "SELECT pg_terminate_backend($first_feed_pid)" >/dev/null
wait_for 30 "after pg_terminate_backend the postmaster starts the worker again" \
    "SELECT EXISTS ($worker_pid AND pid <> $first_pid AND datname = 'cte_worker')"
wait_for 30 "and the feed worker" \
    "SELECT EXISTS ($feed_pid AND pid <> $first_feed_pid AND datname = 'cte_worker')"
lien=$(q -c "SELECT cte_ctel.ctel_create_lien(NULL, 'w-alice', 1, 'USD', now() + interval '500 milliseconds')")
wait_for 15 "the restarted worker expires liens again" \
    "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE id = '$lien'"

# SIGHUP: turning the worker off pauses its duties; on again, it catches up.
q -c "ALTER SYSTEM SET cte_ctel.worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
lien=$(q -c "SELECT cte_ctel.ctel_create_lien(NULL, 'w-alice', 1, 'USD', now() + interval '200 milliseconds')")
sleep 2
check "with cte_ctel.worker_enabled off (reloaded on SIGHUP) the worker leaves an expired lien alone" \
    "SELECT status = 'active' FROM cte_ctel.cte_liens WHERE id = '$lien'"
q -c "ALTER SYSTEM RESET cte_ctel.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 15 "switched back on, it expires the lien" \
    "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE id = '$lien'"

# SPEC §12: no executor can hold the worker. A custom step that sleeps 4 s, run by the events
# worker (a scheduled start): meanwhile a lien that falls due is expired, and a transfer that
# commits gets its place in the feed, each within about a second (0.2.0: both waited for it).
q >/dev/null <<'SQL'
CREATE FUNCTION public.slow_step(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep((payload ->> 'seconds')::float8); RETURN '{}'; END $$;
ALTER FUNCTION public.slow_step(uuid, jsonb) OWNER TO script_registrar;
ALTER FUNCTION public.slow_step(uuid, jsonb) SET search_path = public, pg_temp;
SET ROLE script_registrar;
SELECT cte_ctel.cte_register_executor('slow.step', 'public.slow_step(uuid, jsonb)');
RESET ROLE;
SQL
slow=$(q -c "SELECT cte_ctel.cte_create_event('slow')")
q -c "SELECT cte_ctel.cte_add_transaction('$slow', 'sleep', 'slow.step', '{\"seconds\": 4}')" \
  -c "SELECT cte_ctel.cte_start_event('$slow', now() + interval '200 milliseconds')" >/dev/null
wait_for 10 "the events worker is running the slow step" \
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'cte_ctel maintenance'
                     AND wait_event = 'PgSleep')"
lien=$(q -c "SELECT cte_ctel.ctel_create_lien(NULL, 'w-alice', 1, 'USD', now() + interval '300 milliseconds')")
paid=$(q -c "SELECT cte_ctel.cte_transfer('w-alice', 'w-bob', 0.01, 'USD', 'while-slow')")
wait_for 2 "while it sleeps, a lien that falls due is expired" \
    "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE id = '$lien'"
wait_for 2 "and a committed transfer is sequenced into the feed" \
    "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_changes(0, 10000) WHERE event_id = '$paid')"
check "the slow step was still running then" \
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'cte_ctel maintenance'
                     AND wait_event = 'PgSleep')"
wait_for 15 "the slow step completes in its own time (under the 30 s executor_timeout)" \
    "SELECT status = 'completed' FROM cte_ctel.cte_events WHERE id = '$slow'"

# cte_ctel.executor_timeout: a call that runs longer is cancelled as a statement timeout (57014),
# a try-again failure: the step is retried, and fails for good at its last attempt.
q -c "ALTER SYSTEM SET cte_ctel.executor_timeout = '500ms'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
stuck=$(q -c "SELECT cte_ctel.cte_create_event('stuck')")
q -c "SELECT cte_ctel.cte_add_transaction('$stuck', 'sleep', 'slow.step', '{\"seconds\": 30}', max_attempts => 2)" \
  -c "SELECT cte_ctel.cte_start_event('$stuck', now() + interval '100 milliseconds')" >/dev/null
wait_for 15 "a step over executor_timeout is cancelled (57014), retried, then fails for good" \
    "SELECT e.status = 'compensated' AND t.attempts = 2 AND t.error_sqlstate = '57014'
       FROM cte_ctel.cte_events e JOIN cte_ctel.cte_transactions t ON t.event_id = e.id
      WHERE e.id = '$stuck'"
q -c "ALTER SYSTEM RESET cte_ctel.executor_timeout" -c "SELECT pg_reload_conf()" >/dev/null

# No role can stop the feed: an admin's cte_run_maintenance() left open in a transaction does
# not hold the sequencer (the workers' job where they serve the database), nor its state row.
"$PSQL" -X -q -h "$host" -p "$port" -U postgres -d cte_worker \
    -c "BEGIN" -c "SELECT cte_ctel.cte_run_maintenance()" -c "SELECT pg_sleep(6)" -c "COMMIT" \
    >/dev/null 2>&1 &
admin=$!
sleep 0.5
paid=$(q -c "SELECT cte_ctel.cte_transfer('w-alice', 'w-bob', 0.01, 'USD', 'while-admin-idles')")
wait_for 2 "a transfer committed while an admin's maintenance transaction is open is sequenced" \
    "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_changes(0, 10000) WHERE event_id = '$paid')"
lien=$(q -c "SELECT cte_ctel.ctel_create_lien(NULL, 'w-alice', 1, 'USD', now() + interval '200 milliseconds')")
wait_for 2 "and a lien that falls due meanwhile is expired" \
    "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE id = '$lien'"
wait "$admin"
# The same when that pass folded system deltas (found by the stress run's probe): a deposit in
# the admin's transaction gives its fold a system balance to update, and so to hold; the feed
# worker's own fold, of a deposit committed meanwhile, would wait on that row and its whole pass
# (sequencing, expiries) roll back at the lock timeout, tick after tick (0.3.0 before the fix).
admin_log=$(mktemp)
"$PSQL" -X -q -h "$host" -p "$port" -U postgres -d cte_worker \
    -c "BEGIN" -c "SELECT cte_ctel.cte_deposit('w-alice', 1, 'USD')" \
    -c "SELECT (cte_ctel.cte_run_maintenance() ->> 'system_deltas_folded')::int > 0 AS folded" \
    -c "SELECT pg_sleep(6.5)" -c "COMMIT" >"$admin_log" 2>&1 &
admin=$!
wait_for 3 "an admin's maintenance pass folded, and its transaction sits open" \
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(6.5)')"
q -c "SELECT cte_ctel.cte_deposit('w-bob', 1, 'USD')" >/dev/null
sleep 1.5 # the worker's passes meet the held fold (0.3.0 before the fix: each then rolled back)
waited=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(q -c "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                               WHERE backend_type = 'cte_ctel feed' AND wait_event_type = 'Lock')")" = t ] \
        && waited=$((waited + 1))
    sleep 0.1
done
if [ "$waited" -eq 0 ]; then ok "the feed worker waits on no lock meanwhile (10 looks in 1 s)"
else not_ok "the feed worker waits on no lock meanwhile: waiting at $waited of 10 looks"; fi
paid=$(q -c "SELECT cte_ctel.cte_transfer('w-alice', 'w-bob', 0.01, 'USD', 'while-admin-folds')")
lien=$(q -c "SELECT cte_ctel.ctel_create_lien(NULL, 'w-alice', 1, 'USD', now() + interval '200 milliseconds')")
wait_for 2 "while an admin's open maintenance transaction holds a fold, a transfer is sequenced" \
    "SELECT EXISTS (SELECT 1 FROM cte_ctel.cte_changes(0, 10000) WHERE event_id = '$paid')"
wait_for 2 "and a lien that falls due meanwhile is expired" \
    "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE id = '$lien'"
wait "$admin"
if grep -q "^ t$" "$admin_log"; then ok "(the admin's pass did fold)"; else not_ok "the admin's pass folded (see $admin_log)"; fi
wait_for 5 "after it commits, the deposit made meanwhile is folded too" \
    "SELECT count(*) = 0 FROM cte_ctel.cte_system_deltas"

check "cte_verify_ledger() finds nothing wrong after all the worker did" \
    "SELECT count(*) = 0 FROM cte_ctel.cte_verify_ledger()"

# A DROP EXTENSION that sits uncommitted: the workers' passes wait on its locks, time out and
# fail, and the failure path must not itself fail outside its subtransaction (0.3.0 before the
# fix: the worker ended and was restarted with a new pid). Both workers, events and feed.
pids=$(q -c "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
             WHERE backend_type IN ('cte_ctel maintenance', 'cte_ctel feed')")
q -c "BEGIN" -c "DROP EXTENSION cte_ctel CASCADE" -c "SELECT pg_sleep(4)" -c "ROLLBACK" >/dev/null 2>&1
check "a pass that fails on an uncommitted DROP EXTENSION leaves both workers (maintenance, feed) running" \
    "SELECT string_agg(pid::text, ',' ORDER BY pid) = '$pids' FROM pg_stat_activity
      WHERE backend_type IN ('cte_ctel maintenance', 'cte_ctel feed')"

# Without the extension the worker stays up and does nothing.
pid=$(q -c "$worker_pid")
q -c "DROP EXTENSION cte_ctel CASCADE" >/dev/null 2>&1
sleep 1
check "where the extension is not installed the worker keeps running quietly" \
    "SELECT EXISTS ($worker_pid AND pid = $pid)"


[ "$failures" -eq 0 ]
