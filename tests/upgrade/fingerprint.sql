-- Every stored row the contract names (SPEC §3–§5 columns), in a stable order: compared before
-- and after an upgrade (or a restore) with diff. Run with psql -X -q -t -A.
SET search_path = cte_ctel, public;
SELECT 'currency', code, scale FROM cte_currencies ORDER BY code;
SELECT 'account', id, allow_negative, metadata FROM cte_accounts ORDER BY id;
SELECT 'balance', account_id, currency, balance, reserved, available
  FROM cte_ledger_balances ORDER BY account_id, currency;
SELECT 'entry', id, posting_id, kind, account_id, currency, amount, balance_after, reference,
       transaction_id, created_at
  FROM cte_entries ORDER BY id;
SELECT 'event', id, name, description, status, timeout, deadline, metadata, idempotency_key, error,
       created_at, started_at, finished_at
  FROM cte_events ORDER BY created_at, id;
SELECT 'transaction', id, event_id, name, description, type, "order", payload, status, attempts,
       max_attempts, result, error, next_attempt_at
  FROM cte_transactions ORDER BY event_id, "order";
SELECT 'lien', id, event_id, account_id, amount, currency, status, expires_at, metadata, created_at
  FROM cte_liens ORDER BY created_at, id;
SELECT 'history', event_id, transaction_id, old_status, new_status, actor, reason, at
  FROM cte_event_history ORDER BY at, event_id, transaction_id NULLS FIRST, old_status NULLS FIRST, new_status;
SELECT 'verify', count(*) FROM cte_verify_ledger();
