-- The change feed (SPEC §4 v2): every status change of an event, a step and a lien is written
-- by the transaction that makes it, to an outbox; the maintenance pass (the worker, woken at
-- commit) gives each committed change its position, and cte_changes(after, limit) returns them
-- in position order, for a consumer to follow with a cursor. Nothing is announced from the
-- caller's transaction: the worker sends NOTIFY cte_events with the newest position.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('q-alice', ARRAY['USD']);
SELECT cte_create_account('q-bob', ARRAY['USD']);
SELECT coalesce(max(position), 0) AS start FROM cte_event_history \gset
SELECT cte_deposit('q-alice', 10, 'USD', 'feed-1') AS deposit \gset
SELECT cte_create_event('feed event') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "q-alice", "destination_account_id": "q-bob", "amount": 3, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'e', 'wait', 'external', '{}') IS NOT NULL AS added;
SELECT cte_start_event(:'e');
SELECT ctel_create_lien(NULL, 'q-alice', 2, 'USD') AS l \gset

-- One outbox row per drive or operation, not yet in the feed: its changes have no position.
SELECT count(*) AS outbox_rows, sum(cardinality(kinds)) AS changes FROM cte_change_outbox;
SELECT count(*) FILTER (WHERE position IS NULL) AS without_position FROM cte_event_history
 WHERE event_id IN (:'deposit', :'e') OR lien_id = :'l';

-- A pass sequences them (in outbox order) and would wake consumers.
SELECT cte_run_maintenance() -> 'changes_sequenced' AS rows_sequenced;
SELECT count(*) AS outbox_rows FROM cte_change_outbox;

-- The feed: positions are consecutive; each change says enough to route it.
SELECT position - :start AS position, kind,
       CASE event_id WHEN :'deposit' THEN 'deposit' WHEN :'e' THEN 'event' END AS event,
       event_name, transaction_type, lien_id = :'l' AS the_lien, old_status, new_status, amount,
       currency, reference
  FROM cte_changes(:start, 100) ORDER BY position;

-- A cursor: two pages of four, then nothing new.
SELECT array_agg(position - :start ORDER BY position) AS first_page
  FROM cte_changes(:start, 4);
SELECT array_agg(position - :start ORDER BY position) AS second_page
  FROM cte_changes(:start + 4, 4);
SELECT count(*) AS after_the_end FROM cte_changes(:start + 100, 10);

-- Refusals.
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_changes(0, 0)$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_changes(0, 10001)$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_changes(NULL, 10)$$);
ROLLBACK;
