-- cte_verify_ledger(): every ledger invariant that does not hold, one row per violation.
-- No rows means healthy. Plain SQL, so each check reads as the rule it enforces.

CREATE FUNCTION cte_ctel.cte_verify_ledger()
RETURNS TABLE (check_name text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- 0.3.0: refused to a role read tenancy limits (its rows name every account).
    SELECT cte_ctel.cte_verify_ledger_reader();
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
    -- Entries come in balanced groups: at least two, one currency, summing to zero; the
    -- entries of a posting agree on its kind, reference, step, lien and time (all written by
    -- one statement); and every posting has a wallet leg, which puts it in a hash chain
    -- (sql/chains.sql): one only between system accounts is in none. One scan for the three.
    SELECT c.check_name, c.detail
      FROM (SELECT posting_id, count(*) AS entries, count(DISTINCT currency) AS currencies,
                   sum(amount) AS total,
                   count(DISTINCT (kind, reference, transaction_id, lien_id, created_at)) AS shapes,
                   bool_and(balance_after IS NULL) AS system_only
              FROM cte_ctel.cte_entries GROUP BY posting_id) p,
           LATERAL (VALUES
               ('posting_unbalanced',
                format('posting %s: %s entries in %s currencies summing to %s',
                       p.posting_id, p.entries, p.currencies, p.total),
                p.entries < 2 OR p.currencies <> 1 OR p.total <> 0),
               ('posting_mixed',
                format('posting %s: its entries disagree on kind, reference, step, lien or time (%s ways)',
                       p.posting_id, p.shapes),
                p.shapes <> 1),
               ('posting_without_wallet',
                format('posting %s moves money between system accounts only, outside every chain',
                       p.posting_id),
                p.system_only)) AS c(check_name, detail, failed)
     WHERE c.failed
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
    -- No balance is below its floor (zero unless cte_set_limits said otherwise), counting what
    -- liens reserve, unless it has none.
    SELECT 'negative_balance',
           format('%s %s: balance %s, reserved %s, floor %s', b.account_id, b.currency,
                  b.balance, b.reserved, b.min_balance)
      FROM cte_ctel.cte_balances b
     WHERE NOT b.allow_negative AND b.balance - b.reserved < b.min_balance
    UNION ALL
    -- What a balance reserves is exactly what its active liens still hold.
    SELECT 'reserved_mismatch',
           format('%s %s: reserved %s, active liens hold %s',
                  b.account_id, b.currency, b.reserved, COALESCE(l.held, 0))
      FROM cte_ctel.cte_balances b
      LEFT JOIN (SELECT account_id, currency, sum(amount - COALESCE(captured_amount, 0)) AS held
                   FROM cte_ctel.cte_liens WHERE status = 'active'
                  GROUP BY account_id, currency) l
             ON l.account_id = b.account_id AND l.currency = b.currency
     WHERE b.reserved <> COALESCE(l.held, 0)
    UNION ALL
    -- No lien is still held once its event has ended (a failed event keeps what it holds until
    -- an operator retries its compensation or resolves it).
    SELECT 'lien_outlives_event',
           format('lien %s is %s but event %s is %s', l.id, l.status, e.id, e.status)
      FROM cte_ctel.cte_liens l JOIN cte_ctel.cte_events e ON e.id = l.event_id
     WHERE l.status IN ('pending', 'active') AND e.status IN ('completed', 'compensated', 'resolved')
    UNION ALL
    -- Each change names an event, a step of that event, and a lien that exist.
    SELECT 'history_orphan',
           format('change %s.%s: event %s, transaction %s, lien %s not found', h.id, h.n,
                  COALESCE(h.event_id::text, '-'), COALESCE(h.transaction_id::text, '-'),
                  COALESCE(h.lien_id::text, '-'))
      FROM cte_ctel.cte_event_history h
     WHERE (h.event_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_events e WHERE e.id = h.event_id))
        OR (h.transaction_id IS NOT NULL AND NOT EXISTS (
              SELECT 1 FROM cte_ctel.cte_transactions t
               WHERE t.id = h.transaction_id AND t.event_id IS NOT DISTINCT FROM h.event_id))
        OR (h.lien_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_liens l WHERE l.id = h.lien_id))
    UNION ALL
    -- Every event has its history (a restore that lost the change tables would not).
    SELECT 'history_missing', format('event %s (%s) has no recorded change', e.id, e.status)
      FROM cte_ctel.cte_events e
     WHERE NOT EXISTS (SELECT 1 FROM cte_ctel.cte_change_log c WHERE c.event_id = e.id)
       AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_change_outbox o WHERE o.event_id = e.id)
    UNION ALL
    -- A posting step that completed (or was compensated after it did) has its entries in the
    -- journal, as does a held step of a completed event (a restore that lost the journal would
    -- not).
    SELECT 'posting_missing',
           format('transaction %s (%s, %s) of event %s has no journal entries', t.id, t.type,
                  t.status, t.event_id)
      FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE ((t.type IN ('wallet.transfer', 'wallet.deposit', 'batch.operation')
             AND t.status IN ('completed', 'compensating', 'compensated'))
            OR (t.type IN ('wallet.withdrawal', 'wallet.exchange') AND e.status = 'completed'))
       AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_entries j WHERE j.transaction_id = t.id)
    UNION ALL
    -- Each identity sequence is ahead of its table, or the next row's id would collide (a
    -- restore that kept the rows but not the sequences).
    SELECT 'sequence_behind', format('%s: next id %s, but the table holds id %s', s.name, s.next, s.max_id)
      FROM (SELECT 'cte_entries' AS name,
                   (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END
                      FROM cte_ctel.cte_entries_id_seq) AS next,
                   (SELECT max(id) FROM cte_ctel.cte_entries) AS max_id
            UNION ALL
            SELECT 'cte_system_deltas',
                   (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END
                      FROM cte_ctel.cte_system_deltas_id_seq),
                   (SELECT max(id) FROM cte_ctel.cte_system_deltas)
            UNION ALL
            SELECT 'cte_change_outbox',
                   (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END
                      FROM cte_ctel.cte_change_outbox_id_seq),
                   GREATEST((SELECT max(id) FROM cte_ctel.cte_change_outbox),
                            (SELECT max(id) FROM cte_ctel.cte_change_log))) s
     WHERE s.max_id >= s.next
    UNION ALL
    -- Entry ids are handed out one at a time: a wallet's entries get them in the order its lock
    -- is taken, which is the order of its hash chain. A sequence caching ids per session would
    -- break that order.
    SELECT 'sequence_cached',
           format('%s caches %s ids per session; it must cache 1', q.seqrelid::regclass, q.seqcache)
      FROM pg_catalog.pg_sequence q
     WHERE q.seqrelid = pg_catalog.pg_get_serial_sequence('cte_ctel.cte_entries', 'id')::regclass
       AND q.seqcache <> 1
    UNION ALL
    -- The feed's positions never overlap: each row's changes end before the next row's begin.
    SELECT 'feed_positions_overlap',
           format('change log rows at %s and %s overlap', p.previous, p.position)
      FROM (SELECT position, lag(position) OVER w AS previous,
                   lag(position + cardinality(kinds) - 1) OVER w AS previous_last
              FROM cte_ctel.cte_change_log WINDOW w AS (ORDER BY position)) p
     WHERE p.position <= p.previous_last
    UNION ALL
    -- A reference is held by a step that exists and did not fail.
    SELECT 'reference_orphan',
           format('reference %s of %s is held by %s transaction %s', r.reference, r.type,
                  COALESCE(t.status, 'no'), r.transaction_id)
      FROM cte_ctel.cte_references r
      LEFT JOIN cte_ctel.cte_transactions t ON t.id = r.transaction_id
     WHERE t.id IS NULL OR t.status = 'failed'
    UNION ALL
    -- The copy of the account's status that every posting reads under the balance's lock
    -- matches the account; a closed account has nothing left, and took nothing after it closed.
    SELECT 'account_status_mismatch',
           format('%s %s: balance row says %s, account says %s',
                  b.account_id, b.currency, b.status, a.status)
      FROM cte_ctel.cte_balances b
      JOIN cte_ctel.cte_accounts a ON a.id = b.account_id
     WHERE b.status <> a.status
    UNION ALL
    SELECT 'closed_account_used',
           format('entry %s on %s at %s, after it closed at %s', j.id, a.id, j.created_at,
                  a.status_changed_at)
      FROM cte_ctel.cte_accounts a
      JOIN cte_ctel.cte_entries j ON j.account_id = a.id
     WHERE a.status = 'closed' AND j.created_at > a.status_changed_at
    UNION ALL
    -- Each balance's chain head is the link of its last entry (a rewritten or removed last
    -- entry, or a head set by hand, shows here; cte_verify_chains checks every link).
    SELECT 'chain_head_mismatch',
           format('%s %s: head %s, last entry''s link %s', b.account_id, b.currency,
                  COALESCE(encode(b.chain_head, 'hex'), '-'), COALESCE(encode(l.link, 'hex'), '-'))
      FROM cte_ctel.cte_balances b
      LEFT JOIN LATERAL (
          SELECT COALESCE(j.link, m.link) AS link
            FROM cte_ctel.cte_entries j LEFT JOIN cte_ctel.cte_entry_links m ON m.entry_id = j.id
           WHERE j.account_id = b.account_id AND j.currency = b.currency
           ORDER BY j.created_at DESC, j.id DESC LIMIT 1) l ON true
     WHERE b.chain_head IS DISTINCT FROM l.link
    UNION ALL
    -- A lien never gave more than it held.
    SELECT 'lien_overcaptured',
           format('lien %s captured %s of %s', l.id, l.captured_amount, l.amount)
      FROM cte_ctel.cte_liens l
     WHERE l.captured_amount > l.amount
    UNION ALL
    -- The refunds of an event never add up to more than it moved: per wallet and currency, what
    -- its refunds credit back is at most what the event debited.
    SELECT 'refund_exceeds_event',
           format('event %s: refunds return %s %s to %s, which it took %s', r.event_id,
                  r.refunded, r.currency, r.account_id, COALESCE(o.moved, 0))
      FROM (SELECT e.refund_of AS event_id, j.account_id, j.currency, sum(j.amount) AS refunded
              FROM cte_ctel.cte_events e
              JOIN cte_ctel.cte_transactions t ON t.event_id = e.id
              JOIN cte_ctel.cte_entries j ON j.transaction_id = t.id
             WHERE e.refund_of IS NOT NULL AND j.kind = 'refund' AND j.amount > 0
               AND e.status = 'completed'
             GROUP BY 1, 2, 3) r
      LEFT JOIN (SELECT t.event_id, j.account_id, j.currency, -sum(j.amount) AS moved
                   FROM cte_ctel.cte_transactions t
                   JOIN cte_ctel.cte_entries j ON j.transaction_id = t.id
                  WHERE j.kind NOT IN ('reversal', 'refund') AND j.amount < 0
                  GROUP BY 1, 2, 3) o
             ON o.event_id = r.event_id AND o.account_id = r.account_id AND o.currency = r.currency
     WHERE r.refunded > COALESCE(o.moved, 0)
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION cte_ctel.cte_verify_ledger() IS
    'Every ledger invariant that fails, one row per violation; no rows means the ledger is healthy.';
