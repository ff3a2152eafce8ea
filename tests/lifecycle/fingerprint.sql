-- Every stored row, in a stable order, to compare a database with its copy (restored, recovered,
-- failed over). Run with psql -X -q -t -A. Contract columns and the extension's own tables.
\ir ../upgrade/fingerprint.sql
SELECT 'owner', id, owner FROM cte_accounts ORDER BY 2;
SELECT 'system_balance', account_id, currency, folded_balance FROM cte_system_balances ORDER BY 2, 3;
SELECT 'delta', id, account_id, currency, amount FROM cte_system_deltas ORDER BY id;
SELECT 'reference', type, reference, transaction_id, item_id FROM cte_references ORDER BY 2, 3;
SELECT 'executor', type, execute_fn, compensate_fn, registrant FROM cte_executors ORDER BY 2;
SELECT 'consumer', name, position, start_after, created_at, acked_at FROM cte_consumers ORDER BY name;
SELECT 'monitor', id, account_id, currency, condition, threshold, created_at, created_by FROM cte_monitors ORDER BY id;
SELECT 'feed', position, id, kinds, transaction_ids, lien_ids, old_statuses, new_statuses,
       amount, currency, monitor_id
  FROM cte_change_log ORDER BY position;
SELECT 'outbox', id, kinds, old_statuses, new_statuses, amount, currency, monitor_id
  FROM cte_change_outbox ORDER BY id;
SELECT 'monitored', account_id, currency FROM cte_balances WHERE monitored ORDER BY 2, 3;
SELECT 'lien_detail', id, transaction_id, captured_amount, capture_posting_id, reason, finished_at
  FROM cte_liens ORDER BY id;
SELECT 'step_detail', id, reference, error_sqlstate, next_attempt_at, compensation_requested_at,
       payload_bytes
  FROM cte_transactions ORDER BY id;
SELECT 'sequence', 'entries', last_value FROM cte_entries_id_seq;
SELECT 'sequence', 'deltas', last_value FROM cte_system_deltas_id_seq;
SELECT 'sequence', 'outbox', last_value FROM cte_change_outbox_id_seq;
