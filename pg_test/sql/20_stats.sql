-- cte_stats: monitoring gauges, one row per metric and label. Shown as changes from what the
-- earlier files left, for a known set of open events, in-doubt steps and liens, some made to
-- look old or overdue by hand.
SET search_path = cte_ctel, test;
SELECT cte_run_maintenance() IS NOT NULL AS maintained;
BEGIN;
CREATE TEMP TABLE stats_before AS SELECT * FROM cte_stats;
SELECT cte_create_account('st-alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('st-bob', ARRAY['USD']);
SELECT cte_deposit('st-alice', 100, 'USD') IS NOT NULL AS deposited;
SELECT cte_deposit('st-alice', 100, 'EUR') IS NOT NULL AS deposited;

-- One of each open status: created (never started), waiting, compensating (an in-doubt step
-- asked to compensate), failed (its compensation reported failed).
SELECT cte_create_event('st-created') AS created \gset
CREATE FUNCTION pg_temp.payout(name text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE e uuid := cte_ctel.cte_create_event(name);
BEGIN
    PERFORM cte_ctel.cte_add_transaction(e, 'pay', 'wallet.transfer',
        '{"source_account_id": "st-alice", "destination_account_id": "st-bob", "amount": 1, "currency": "USD"}');
    PERFORM cte_ctel.cte_add_transaction(e, 'bank', 'external', '{}');
    PERFORM cte_ctel.cte_start_event(e);
    RETURN e;
END $$;
SELECT pg_temp.payout('st-waiting') AS waiting \gset
SELECT pg_temp.payout('st-doubt') AS doubt \gset
SELECT cte_cancel_event(:'doubt', 'customer cancelled');
SELECT pg_temp.payout('st-failed') AS failed \gset
SELECT cte_cancel_event(:'failed', 'customer cancelled');
SELECT cte_fail_compensation(t.id, 'the bank cannot recall it') FROM cte_transactions t
 WHERE t.event_id = :'failed' AND t.type = 'external';

-- A retry due now (no backoff; a retry never runs in the drive that scheduled it): the event
-- waits for the worker.
CREATE FUNCTION test.st_busy(transaction_id uuid, payload jsonb) RETURNS jsonb LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '40001'; END $$;
SELECT test.register_executor('stats.busy', 'test.st_busy(uuid, jsonb)');
SET LOCAL cte_ctel.retry_backoff_ms = 0;
SELECT cte_start_event(e) FROM (SELECT cte_create_event('st-retry') AS e) x,
       LATERAL cte_add_transaction(x.e, 'busy', 'stats.busy', '{}', max_attempts => 5);

-- Open liens in two currencies, one with an expiry.
SELECT ctel_create_lien(NULL, 'st-alice', 5, 'USD') IS NOT NULL AS held;
SELECT ctel_create_lien(NULL, 'st-alice', 2.50, 'EUR', now() + interval '1 hour') AS eur_lien \gset

-- Time moved on by hand: the waiting event is an hour old, the created one past its start-by
-- deadline, the EUR lien past its expiry (the worker does not serve this database).
UPDATE cte_events SET created_at = now() - interval '1 hour', started_at = now() - interval '1 hour'
 WHERE id = :'waiting';
UPDATE cte_events SET deadline = now() - interval '1 minute' WHERE id = :'created';
UPDATE cte_liens SET expires_at = now() - interval '1 second' WHERE id = :'eur_lien';

-- Every gauge, as the change from before (ages and times as whether they are plausible).
SELECT s.metric, s.status, s.currency,
       CASE WHEN s.metric LIKE '%seconds' THEN (s.value >= 0)::text
            ELSE (s.value - coalesce(b.value, 0))::text END AS change
  FROM cte_stats s
  LEFT JOIN stats_before b ON b.metric = s.metric AND b.status IS NOT DISTINCT FROM s.status
                          AND b.currency IS NOT DISTINCT FROM s.currency
 WHERE s.metric NOT IN ('feed_position', 'journal_last_entry_id', 'feed_backlog')
   AND (s.currency IS NULL OR s.currency IN ('USD', 'EUR'))
 ORDER BY s.metric, s.status, s.currency;
SELECT value >= 3600 AS waiting_an_hour FROM cte_stats
 WHERE metric = 'events_open_oldest_seconds' AND status = 'waiting';
-- Committed changes wait in the outbox for the worker; the journal and the feed only grow.
SELECT (SELECT value FROM cte_stats WHERE metric = 'feed_backlog') > 0 AS backlog,
       (SELECT s.value > b.value FROM cte_stats s JOIN stats_before b USING (metric)
         WHERE metric = 'journal_last_entry_id') AS journal_grew;
-- This database is not the worker's (cte_ctel.database): no worker, but maintenance recorded.
SELECT metric, value FROM cte_stats WHERE metric = 'worker_running';
SELECT count(*) AS worker_pass_rows FROM cte_stats WHERE metric LIKE 'worker_last_pass%';
-- A pass whose item fails records what failed: here the EUR lien's balance is corrupted by
-- hand (its reserve zeroed), so expiring the lien would take the reserve below zero.
UPDATE cte_balances SET reserved = 0 WHERE account_id = 'st-alice' AND currency = 'EUR';
SET LOCAL client_min_messages = error; -- the pass's WARNING names the lien's id
SELECT r -> 'items_failed' AS failed FROM cte_run_maintenance() r;
RESET client_min_messages;
SELECT regexp_replace(last_failure, '[0-9a-f-]{36}', '<uuid>') AS last_failure,
       last_failure_at IS NOT NULL AS failure_time FROM cte_worker_state;
SELECT count(*) AS failure_gauge FROM cte_stats WHERE metric = 'worker_last_failure_age_seconds';
ROLLBACK;

-- A reader may scrape it; a role without the extension's roles may not.
CREATE ROLE stats_scraper LOGIN IN ROLE cte_reader;
CREATE ROLE stats_nobody LOGIN;
SET ROLE stats_scraper;
SELECT count(*) > 0 AS scraped FROM cte_ctel.cte_stats;
SET ROLE stats_nobody;
SELECT count(*) FROM cte_ctel.cte_stats;
RESET ROLE;
DROP ROLE stats_scraper;
DROP ROLE stats_nobody;
