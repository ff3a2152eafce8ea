-- cte_transfer and cte_deposit take a fast path: a single built-in posting with one attempt is
-- posted, then the rows the saga would have ended with are written at once. This file shows
-- those rows are the same as for the same one-step event driven through the full API: event
-- and step completed, the same history, the same journal entries.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD', 'fast-in') AS fast_deposit \gset
SELECT cte_transfer('alice', 'bob', 12.34, 'USD', 'fast-pay') AS fast \gset
SELECT cte_create_event('wallet.transfer') AS slow \gset
SELECT cte_add_transaction(:'slow', 'wallet.transfer', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": "12.34",
      "currency": "USD", "reference": "slow-pay"}', max_attempts => 1) IS NOT NULL AS added;
SELECT cte_start_event(:'slow');

-- Event, step, history and entries side by side.
SELECT CASE id WHEN :'fast' THEN 'fast' ELSE 'slow' END AS path, name, status, error,
       started_at IS NOT NULL AS started, finished_at IS NOT NULL AS finished,
       deadline - started_at AS time_allowed
  FROM cte_events WHERE id IN (:'fast', :'slow') ORDER BY 1;
SELECT CASE event_id WHEN :'fast' THEN 'fast' ELSE 'slow' END AS path, name, type, "order",
       status, attempts, max_attempts, payload - 'reference' AS payload, result ? 'postings' AS posted
  FROM cte_transactions WHERE event_id IN (:'fast', :'slow') ORDER BY 1;
SELECT CASE h.event_id WHEN :'fast' THEN 'fast' ELSE 'slow' END AS path,
       string_agg(COALESCE(h.old_status, '-') || '>' || h.new_status
                  || CASE WHEN h.transaction_id IS NULL THEN '' ELSE ' (step)' END, ', ' ORDER BY h.id) AS history
  FROM cte_event_history h WHERE h.event_id IN (:'fast', :'slow') GROUP BY 1 ORDER BY 1;
SELECT CASE t.event_id WHEN :'fast' THEN 'fast' ELSE 'slow' END AS path,
       e.kind, e.account_id, e.amount, e.reference
  FROM cte_entries e JOIN cte_transactions t ON t.id = e.transaction_id
 WHERE t.event_id IN (:'fast', :'slow') ORDER BY 1, e.id;
SELECT status, (SELECT count(*) FROM cte_event_history WHERE event_id = :'fast_deposit') AS history
  FROM cte_events WHERE id = :'fast_deposit';

-- A refused shortcut leaves nothing, like a refused event: no event, no step, no entry.
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('bob', 'alice', 1000, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'bob', 1, 'USD', 'fast-pay')$$);
SELECT count(*) AS events FROM cte_events;
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
