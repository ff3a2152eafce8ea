-- Metadata on transfers (SPEC §11): cte_transfer keeps a JSON object on its event, found by
-- cte_find_events and shown on every entry of the statement; cte_transfers passes each item's.
-- Metadata moves nothing, so it is not part of the request a retry repeats: the same reference
-- with other metadata replays the original transfer, whose metadata stays as it was.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['m-alice', 'm-bob']) a ORDER BY 1;
SELECT cte_deposit('m-alice', 100, 'USD') IS NOT NULL AS funded;
SELECT cte_create_consumer('m-feed-reader') IS NOT NULL AS reader_created;
SELECT cte_transfer('m-alice', 'm-bob', 10, 'USD', 'm-1', '{"order": "o-1", "market": "m-fr"}') AS t1 \gset
SELECT cte_transfer('m-alice', 'm-bob', 10, 'USD', 'm-1', '{"order": "o-other"}') = :'t1' AS replayed;
SELECT metadata FROM cte_events WHERE id = :'t1';
SELECT kind, amount, metadata ->> 'order' AS order_of_entry
  FROM cte_account_statement('m-bob', 'USD') ORDER BY entry_id;
SELECT kind, amount, metadata IS NULL AS deposit_has_none
  FROM cte_account_statement('m-alice', 'USD') ORDER BY entry_id;
-- The feed carries it on each change of the event (pg_regress's database has no worker:
-- cte_run_maintenance() sequences).
SELECT (cte_run_maintenance() ->> 'changes_sequenced') IS NOT NULL AS sequenced;
SELECT kind, new_status, metadata ->> 'order' AS order_in_feed
  FROM cte_changes(0, 10000) WHERE event_id = :'t1' ORDER BY position;
SELECT count(*) AS consumer_sees_it FROM cte_consumer_next('m-feed-reader', 10000)
 WHERE event_id = :'t1' AND metadata ->> 'market' = 'm-fr';
-- Without metadata the event has none; JSON null is none too.
SELECT cte_transfer('m-alice', 'm-bob', 1, 'USD', 'm-2') AS t2 \gset
SELECT cte_transfer('m-alice', 'm-bob', 1, 'USD', 'm-3', 'null') AS t3 \gset
SELECT count(*) AS without FROM cte_events WHERE id IN (:'t2', :'t3') AND metadata IS NULL;
-- Metadata that is not an object, or too large, is refused and posts nothing.
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('m-alice', 'm-bob', 1, 'USD', 'm-4', '[1, 2]')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('m-alice', 'm-bob', 1, 'USD', 'm-4', '"text"')$$);
SELECT test.refusal(format($$SELECT cte_ctel.cte_transfer('m-alice', 'm-bob', 1, 'USD', 'm-4', %L)$$,
                           jsonb_build_object('big', repeat('x', 9000))));
-- 10 MB of metadata: refused the same way, before anything is written.
SELECT test.refusal(format($$SELECT cte_ctel.cte_transfer('m-alice', 'm-bob', 1, 'USD', 'm-4', %L)$$,
                           jsonb_build_object('big', repeat('x', 10 * 1024 * 1024))));
SELECT count(*) AS m4_posted FROM cte_references WHERE reference = 'm-4';
-- In bulk: each item's metadata is its event's; an item with bad metadata is refused alone.
SELECT item, status, reason FROM cte_transfers(jsonb_build_array(
    jsonb_build_object('source_account_id', 'm-alice', 'destination_account_id', 'm-bob',
                       'amount', 2, 'currency', 'USD', 'reference', 'm-5',
                       'metadata', jsonb_build_object('order', 'o-5', 'market', 'm-fr')),
    jsonb_build_object('source_account_id', 'm-alice', 'destination_account_id', 'm-bob',
                       'amount', 2, 'currency', 'USD', 'reference', 'm-6', 'metadata', 7)))
 ORDER BY item;
SELECT metadata ->> 'order' AS found FROM cte_find_events('{"market": "m-fr"}') ORDER BY 1;
SELECT account_id, balance FROM cte_ledger_balances WHERE account_id LIKE 'm-%' ORDER BY 1;
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
