-- cte_ctel.notify_by_worker: instead of sending NOTIFY cte_events when the change commits, the
-- changing transaction queues the changes' history ids in cte_notify_queue, and the
-- maintenance pass (the worker's) sends them in order and empties the queue. tests/worker.sh
-- shows a listener receiving them from the worker; this file shows the queue itself.
SET search_path = cte_ctel, test;
SHOW cte_ctel.notify_by_worker;
BEGIN;
SELECT cte_create_account('q-alice', ARRAY['USD']);
SELECT cte_create_account('q-bob', ARRAY['USD']);
SET LOCAL cte_ctel.notify_by_worker = on;
SELECT cte_deposit('q-alice', 10, 'USD') AS deposit \gset
SELECT cte_create_event('queued') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "q-alice", "destination_account_id": "q-bob", "amount": 4,
      "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'e', 'approval', 'external', '{}') IS NOT NULL AS added;
SELECT cte_start_event(:'e');

-- One queue row per statement that recorded changes; each names its history rows in order.
SELECT CASE h.event_id WHEN :'deposit' THEN 'deposit' ELSE 'event' END AS event,
       string_agg(COALESCE(h.old_status, '-') || '>' || h.new_status
                  || CASE WHEN h.transaction_id IS NULL THEN '' ELSE ' (step)' END, ', '
                  ORDER BY queued.n) AS changes
  FROM cte_notify_queue q, unnest(q.history_ids) WITH ORDINALITY AS queued(id, n)
  JOIN cte_event_history h ON h.id = queued.id
 GROUP BY q.id, h.event_id ORDER BY q.id;

-- The maintenance pass sends them all (one NOTIFY each) and empties the queue.
SELECT cte_run_maintenance() -> 'notifications_sent' AS sent;
SELECT count(*) AS still_queued FROM cte_notify_queue;
SELECT cte_run_maintenance() -> 'notifications_sent' AS sent_again;

-- Off again (the default), changes are sent at once and nothing is queued.
SET LOCAL cte_ctel.notify_by_worker = off;
SELECT cte_cancel_event(:'e');
SELECT count(*) AS queued FROM cte_notify_queue;
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;

-- Only a superuser may change who sends the notifications.
SET ROLE cte_operator;
SET cte_ctel.notify_by_worker = on;
RESET ROLE;
SHOW cte_ctel.notify_by_worker;
