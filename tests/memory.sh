#!/usr/bin/env bash
# Memory a drive may cost (issue: every drive parsed every step's payload into a JSON tree,
# a heap allocation per number, and a ~2.7 MB payload of small numbers cost a backend 150 MB).
# The largest event the limits allow (EVENT_PAYLOAD_BYTES_MAX of payloads: a batch of 10,000
# items, an external step whose payload is millions of small numbers, a transfer) is built,
# started, reported on, timed out by the worker and compensated; after each, the peak of the
# process's own resident memory (from /proc: the Rust heap is not in PostgreSQL's memory
# contexts; shared buffers are not its own, below) must stay within 64 MB + 4 x the event's
# payload bytes.
# Usage: tests/memory.sh HOST PORT   (the worker serves cte_worker)
set -uo pipefail
host=$1 port=$2
PSQL=${PG_BIN:-/usr/lib/postgresql/15/bin}/psql
failures=0
q() { "$PSQL" -X -q -t -A -h "$host" -p "$port" -U postgres -d cte_worker -v ON_ERROR_STOP=1 "$@"; }
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
# The peak of a process's own memory, in kB, from /proc/PID/status: its peak resident memory
# (VmHWM) less the shared memory it has mapped (RssShmem: the pages of shared_buffers it touched,
# which are the server's pool, counted once for all backends, and stay mapped once touched). VmHWM
# alone varied by 10 MB for the same work with the buffers a run happened to touch (94 to 103 MB
# reporting the compensation below, of which 31 to 40 MB shared).
OWN_PEAK="(regexp_match(s, 'VmHWM:\s+(\d+) kB'))[1]::int - (regexp_match(s, 'RssShmem:\s+(\d+) kB'))[1]::int"
# peak PID: that process's peak.
peak() { q -c "SELECT $OWN_PEAK FROM pg_read_file('/proc/$1/status') AS s"; }
# in_fresh_backend SQL: runs SQL in a new backend, prints that backend's peak (kB) after it.
in_fresh_backend() {
    q -c "SELECT pg_backend_pid()" -c "$1" \
      -c "SELECT $OWN_PEAK FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') AS s" \
        | tail -n 1
}

"$PSQL" -X -q -h "$host" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS cte_worker WITH (FORCE)" -c "CREATE DATABASE cte_worker"
q -c "CREATE EXTENSION cte_ctel" -c "SET search_path = cte_ctel" \
  -c "SELECT cte_create_account('m-alice', ARRAY['USD'])" -c "SELECT cte_create_account('m-bob', ARRAY['USD'])" \
  -c "SELECT cte_deposit('m-alice', 100, 'USD')" >/dev/null
q >/dev/null <<'SQL'
CREATE TABLE public.big_payloads (name text PRIMARY KEY, payload jsonb);
INSERT INTO public.big_payloads VALUES
    ('batch', jsonb_build_object('transactions', (SELECT jsonb_agg(jsonb_build_object(
        'id', i::text, 'type', 'wallet.deposit',
        'payload', jsonb_build_object('account_id', 'm-alice', 'amount', 1, 'currency', 'USD')))
        FROM generate_series(1, 10000) i))),
    ('transfer', '{"source_account_id": "m-alice", "destination_account_id": "m-bob", "amount": 1, "currency": "USD"}');
-- The external step takes what is left of the event's bound (counted in stored jsonb bytes),
-- in small numbers: the worst case for a parser that builds a tree.
CREATE FUNCTION pg_temp.numbers(n int) RETURNS jsonb LANGUAGE sql AS
    $$ SELECT jsonb_build_object('n', (SELECT jsonb_agg(1) FROM generate_series(1, n))) $$;
WITH left_over AS (
    SELECT 8 * 1024 * 1024 - (SELECT sum(pg_column_size(payload::text::jsonb))
                                FROM public.big_payloads) AS bytes),
per_number AS (SELECT pg_column_size(pg_temp.numbers(10000)) / 10000.0 AS bytes)
INSERT INTO public.big_payloads
SELECT 'numbers', pg_temp.numbers(floor((l.bytes - 1000) / p.bytes)::int) FROM left_over l, per_number p;
SQL
bytes=$(q -c "SELECT sum(pg_column_size(payload::text::jsonb)) FROM public.big_payloads")
bound=$((64 * 1024 + 4 * bytes / 1024))
echo "# the event's payloads: $bytes bytes; bound: $bound kB"
within() { # within WHAT KB
    if [ -n "$2" ] && [ "$2" -le "$bound" ]; then ok "$1: peak $2 kB (bound $bound kB)"; else not_ok "$1: peak ${2:-?} kB (bound $bound kB)"; fi
}

built=
build() { # build NAME TIMEOUT: the largest event, one step added per backend, into $built
    local event
    event=$(q -c "SELECT cte_ctel.cte_create_event('$1', timeout => '$2')")
    for step in batch numbers transfer; do
        local type=wallet.deposit
        case $step in batch) type=batch.operation ;; numbers) type=external ;; transfer) type=wallet.transfer ;; esac
        local kb
        kb=$(in_fresh_backend "SELECT cte_ctel.cte_add_transaction('$event', '$step', '$type',
                 (SELECT payload FROM public.big_payloads WHERE name = '$step'))")
        [ "$1" = reported ] && within "adding its $step step" "$kb"
    done
    built=$event
}

build reported '1 hour'
event=$built
within "starting it (a batch of 10,000 items posts, the external step waits)" \
    "$(in_fresh_backend "SELECT cte_ctel.cte_start_event('$event')")"
within "the callback that completes it (every built-in step planned, the transfer run)" \
    "$(in_fresh_backend "SELECT cte_ctel.cte_complete_transaction(id) FROM cte_ctel.cte_transactions
                         WHERE event_id = '$event' AND type = 'external'")"
if [ "$(q -c "SELECT status FROM cte_ctel.cte_events WHERE id = '$event'")" = completed ]; then
    ok "the largest event completed"
else
    not_ok "the largest event completed"
fi

# The worker's timeout of one: a fresh worker (terminated, then started again by the postmaster)
# so that its peak is this timeout's.
build timed '2 seconds'
timed=$built
q -c "SELECT cte_ctel.cte_start_event('$timed')" >/dev/null
old=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'cte_ctel maintenance'")
[ -n "$old" ] && q -c "SELECT pg_terminate_backend($old)" >/dev/null
for _ in $(seq 100); do
    [ "$(q -c "SELECT status FROM cte_ctel.cte_events WHERE id = '$timed'")" = compensating ] && break
    sleep 0.2
done
worker=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'cte_ctel maintenance'")
if [ "$(q -c "SELECT status FROM cte_ctel.cte_events WHERE id = '$timed'")" = compensating ] && [ -n "$worker" ]; then
    within "the worker's timeout of it" "$(peak "$worker")"
else
    not_ok "the worker timed the largest event out"
fi
within "reporting its compensation (the batch's 10,000 postings reversed)" \
    "$(in_fresh_backend "SELECT cte_ctel.cte_complete_compensation(id) FROM cte_ctel.cte_transactions
                         WHERE event_id = '$timed' AND type = 'external'")"
if [ "$(q -c "SELECT status FROM cte_ctel.cte_events WHERE id = '$timed'")" = compensated ]; then
    ok "the timed-out event is compensated"
else
    not_ok "the timed-out event is compensated"
fi
if [ "$(q -c "SELECT count(*) FROM cte_ctel.cte_verify_ledger()")" = 0 ]; then ok "the ledger verifies"; else not_ok "the ledger verifies"; fi
[ "$failures" -eq 0 ]
