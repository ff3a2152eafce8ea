-- Named consumers of the change feed (SPEC §10) and the reads of SPEC §11: steps waiting on the
-- outside world, events found by their metadata, and a statement's summary that agrees with
-- cte_balance_at at its boundaries. pg_regress's database is not the one the workers serve, so
-- cte_run_maintenance() sequences the feed here.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('c-alice', ARRAY['USD']);
SELECT cte_create_account('c-bob', ARRAY['USD']);
SELECT (cte_run_maintenance() ->> 'changes_sequenced') IS NOT NULL AS sequenced;

-- A consumer starts at the newest position; creating it again is a replay; another start is a
-- conflict; an unknown one is refused.
SELECT cte_create_consumer('ledger-export') = cte_feed_head() AS starts_at_the_head;
SELECT cte_create_consumer('ledger-export') = cte_feed_head() AS created_again;
SELECT test.refusal($$SELECT cte_ctel.cte_create_consumer('ledger-export', 0)$$);
-- (Positions depend on how many changes the files before this one made: shown as <n>.)
SELECT regexp_replace(test.refusal($$SELECT cte_ctel.cte_create_consumer('x', -1)$$),
                      '(and|at most|position is) [0-9]+', '\1 <n>', 'g') AS refusal;
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_consumer_next('nobody', 10)$$);
-- New changes: it reads them, the same rows again until it acknowledges them.
SELECT cte_deposit('c-alice', 50, 'USD', 'c-in-1') IS NOT NULL AS deposited;
SELECT (cte_run_maintenance() ->> 'changes_sequenced')::int > 0 AS sequenced;
SELECT count(*) AS changes, count(*) FILTER (WHERE reference = 'c-in-1') AS of_the_deposit
  FROM cte_consumer_next('ledger-export', 100);
SELECT count(*) AS the_same_again FROM cte_consumer_next('ledger-export', 100);
SELECT max(position) AS last FROM cte_consumer_next('ledger-export', 100) \gset
SELECT cte_consumer_ack('ledger-export', :last) = :last AS acknowledged;
SELECT count(*) AS nothing_new FROM cte_consumer_next('ledger-export', 100);
-- Forward only: an older position changes nothing; one past the head is refused.
SELECT cte_consumer_ack('ledger-export', 1) = :last AS kept;
SELECT regexp_replace(
         test.refusal(format($$SELECT cte_ctel.cte_consumer_ack('ledger-export', %s)$$, :last + 1000)),
         '(and|at most|position is) [0-9]+', '\1 <n>', 'g') AS refusal;
SELECT value AS lag FROM cte_stats WHERE metric = 'consumer_lag' AND status = 'ledger-export';
SELECT cte_transfer('c-alice', 'c-bob', 5, 'USD') IS NOT NULL AS moved;
SELECT (cte_run_maintenance() ->> 'changes_sequenced')::int > 0 AS sequenced;
SELECT value > 0 AS lags_behind FROM cte_stats WHERE metric = 'consumer_lag' AND status = 'ledger-export';
SELECT cte_drop_consumer('ledger-export') AS dropped, cte_drop_consumer('ledger-export') AS dropped_again;

-- Steps waiting on the application: one to execute, one to compensate (in doubt).
SELECT event_id AS payout FROM cte_run_event('payout', '[
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "c-alice", "destination_account_id": "c-bob", "amount": 1, "currency": "USD"}},
    {"name": "bank", "type": "external", "payload": {"rail": "sepa"}}]', 'c-payout') \gset
SELECT event_id AS doubt FROM cte_run_event('doubt', '[
    {"name": "bank", "type": "external", "payload": {"rail": "swift"}}]', 'c-doubt') \gset
SELECT cte_cancel_event(:'doubt', 'customer cancelled');
SELECT event_name, name, type, phase, status, event_status, since IS NOT NULL AS since_known
  FROM cte_steps_awaiting WHERE event_id IN (:'payout', :'doubt') ORDER BY event_name;

-- Events by metadata (@>), paged by id.
SELECT cte_create_event('order', metadata => '{"order": 17, "market": "fr"}') IS NOT NULL AS a;
SELECT cte_create_event('order', metadata => '{"order": 18, "market": "fr"}') IS NOT NULL AS b;
SELECT cte_create_event('order', metadata => '{"order": 19, "market": "de"}') IS NOT NULL AS c;
SELECT metadata ->> 'order' AS found FROM cte_find_events('{"market": "fr"}') ORDER BY 1;
SELECT count(*) AS first_page FROM cte_find_events('{"market": "fr"}', NULL, 1);
SELECT count(*) AS after_it FROM cte_find_events('{"market": "fr"}',
    (SELECT id FROM cte_find_events('{"market": "fr"}', NULL, 1)), 10);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_find_events('[1]')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_find_events('{}', NULL, 0)$$);
-- The index serves the filter (the plan of the function's query, sequential scans off).
DO $$
DECLARE
    line text;
    uses boolean := false;
BEGIN
    SET LOCAL enable_seqscan = off;
    FOR line IN EXPLAIN SELECT e.id FROM cte_ctel.cte_events e
                 WHERE e.metadata IS NOT NULL AND e.metadata::jsonb @> '{"market": "fr"}' LOOP
        uses := uses OR line LIKE '%cte_events_metadata_idx%';
    END LOOP;
    RAISE NOTICE 'the metadata index serves the filter: %', uses;
END $$;
RESET enable_seqscan;

-- A statement's summary: its boundaries agree with cte_balance_at, even where an entry is
-- stamped exactly at a boundary (here both ends are entries' own stamps): the range is
-- (from, to], so the first entry is in the opening balance and the last in the range.
SELECT cte_create_account('c-carol', ARRAY['USD']);
SELECT cte_deposit('c-carol', 10, 'USD', 'c-t1') AS d1 \gset
SELECT cte_deposit('c-carol', 20, 'USD', 'c-t2') AS d2 \gset
SELECT cte_transfer('c-carol', 'c-bob', 5, 'USD', 'c-t3') AS t3 \gset
SELECT min(j.created_at) AS t_first, max(j.created_at) AS t_last
  FROM cte_entries j WHERE j.account_id = 'c-carol' \gset
SELECT opening, closing, debits, credits, entries,
       opening = cte_balance_at('c-carol', 'USD', :'t_first') AS opening_agrees,
       closing = cte_balance_at('c-carol', 'USD', :'t_last') AS closing_agrees
  FROM cte_statement_summary('c-carol', 'USD', :'t_first', :'t_last');
-- The statement over the same range lists exactly the entries the summary counts.
SELECT count(*) AS listed, sum(amount) AS moved
  FROM cte_account_statement('c-carol', 'USD', :'t_first', :'t_last');
SELECT regexp_replace(
         test.refusal(format($$SELECT * FROM cte_ctel.cte_statement_summary('c-carol', 'USD', %L, %L)$$, :'t_last', :'t_first')),
         'to is [^;]+; it must not be before from, .*$', 'to is <t_first>; it must not be before from, <t_last>') AS refusal;
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_statement_summary('nobody', 'USD', now(), now())$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
