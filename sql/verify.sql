-- cte_verify_ledger(): every ledger invariant that does not hold, one row per violation.
-- No rows means healthy. Plain SQL, so each check reads as the rule it enforces.

CREATE FUNCTION cte_ctel.cte_verify_ledger()
RETURNS TABLE (check_name text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Double entry: for each currency, all balances (wallets and system accounts) sum to zero.
    SELECT 'currency_sum_nonzero'::text,
           format('%s: balances sum to %s', s.currency, s.total)
      FROM (SELECT currency, sum(balance) AS total
              FROM cte_ctel.cte_ledger_balances GROUP BY currency) s
     WHERE s.total <> 0
    UNION ALL
    -- Each balance equals the sum of its entries.
    SELECT 'balance_mismatch',
           format('%s %s: balance %s, entries sum to %s',
                  b.account_id, b.currency, b.balance, COALESCE(e.total, 0))
      FROM cte_ctel.cte_ledger_balances b
      LEFT JOIN (SELECT account_id, currency, sum(amount) AS total
                   FROM cte_ctel.cte_entries GROUP BY account_id, currency) e
             ON e.account_id = b.account_id AND e.currency = b.currency
     WHERE b.balance <> COALESCE(e.total, 0)
    UNION ALL
    -- No entry touches a balance that does not exist.
    SELECT 'entry_without_balance',
           format('%s %s: %s entries but no balance', e.account_id, e.currency, e.entries)
      FROM (SELECT account_id, currency, count(*) AS entries
              FROM cte_ctel.cte_entries GROUP BY account_id, currency) e
      LEFT JOIN cte_ctel.cte_ledger_balances b
             ON b.account_id = e.account_id AND b.currency = e.currency
     WHERE b.account_id IS NULL
    UNION ALL
    -- Entries come in balanced groups: at least two, one currency, summing to zero.
    SELECT 'posting_unbalanced',
           format('posting %s: %s entries in %s currencies summing to %s',
                  p.posting_id, p.entries, p.currencies, p.total)
      FROM (SELECT posting_id, count(*) AS entries, count(DISTINCT currency) AS currencies,
                   sum(amount) AS total
              FROM cte_ctel.cte_entries GROUP BY posting_id) p
     WHERE p.entries < 2 OR p.currencies <> 1 OR p.total <> 0
    UNION ALL
    -- Each wallet entry records the balance its account reached (a running sum by entry id).
    SELECT 'balance_after_mismatch',
           format('entry %s (%s %s): balance_after %s, running sum %s',
                  r.id, r.account_id, r.currency, r.balance_after, r.running)
      FROM (SELECT id, account_id, currency, balance_after,
                   sum(amount) OVER (PARTITION BY account_id, currency ORDER BY id) AS running
              FROM cte_ctel.cte_entries WHERE balance_after IS NOT NULL) r
     WHERE r.balance_after <> r.running
    UNION ALL
    -- No account that may not go negative is below zero, counting what liens reserve.
    SELECT 'negative_balance',
           format('%s %s: balance %s, reserved %s', b.account_id, b.currency, b.balance, b.reserved)
      FROM cte_ctel.cte_balances b
      JOIN cte_ctel.cte_accounts a ON a.id = b.account_id
     WHERE NOT a.allow_negative AND b.balance - b.reserved < 0
    UNION ALL
    -- What a balance reserves is exactly what its active liens hold.
    SELECT 'reserved_mismatch',
           format('%s %s: reserved %s, active liens hold %s',
                  b.account_id, b.currency, b.reserved, COALESCE(l.held, 0))
      FROM cte_ctel.cte_balances b
      LEFT JOIN (SELECT account_id, currency, sum(amount) AS held
                   FROM cte_ctel.cte_liens WHERE status = 'active'
                  GROUP BY account_id, currency) l
             ON l.account_id = b.account_id AND l.currency = b.currency
     WHERE b.reserved <> COALESCE(l.held, 0)
    UNION ALL
    -- No lien is still held once its event has ended.
    SELECT 'lien_outlives_event',
           format('lien %s is %s but event %s is %s', l.id, l.status, e.id, e.status)
      FROM cte_ctel.cte_liens l JOIN cte_ctel.cte_events e ON e.id = l.event_id
     WHERE l.status IN ('pending', 'active') AND e.status IN ('completed', 'compensated', 'failed')
    UNION ALL
    -- Each history row names an event that exists and, if a step, a step of that event.
    SELECT 'history_orphan',
           format('history %s: event %s, transaction %s not found', h.id, h.event_id,
                  COALESCE(h.transaction_id::text, '-'))
      FROM cte_ctel.cte_event_history h
     WHERE NOT EXISTS (SELECT 1 FROM cte_ctel.cte_events e WHERE e.id = h.event_id)
        OR (h.transaction_id IS NOT NULL AND NOT EXISTS (
              SELECT 1 FROM cte_ctel.cte_transactions t
               WHERE t.id = h.transaction_id AND t.event_id = h.event_id))
    UNION ALL
    -- The copy of allow_negative that the balance CHECK relies on matches the account.
    SELECT 'allow_negative_mismatch',
           format('%s %s: balance row says %s, account says %s',
                  b.account_id, b.currency, b.allow_negative, a.allow_negative)
      FROM cte_ctel.cte_balances b
      JOIN cte_ctel.cte_accounts a ON a.id = b.account_id
     WHERE b.allow_negative <> a.allow_negative
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION cte_ctel.cte_verify_ledger() IS
    'Every ledger invariant that fails, one row per violation; no rows means the ledger is healthy.';
