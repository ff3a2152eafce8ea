-- Liens (CTEL): funds reserved on a wallet, for an event or on their own. An active lien's
-- amount is counted in its balance's `reserved`, so available = balance - reserved, and the
-- balance CHECK keeps available >= 0 on accounts that may not go negative.
CREATE TABLE cte_ctel.cte_liens (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id           uuid REFERENCES cte_ctel.cte_events (id),
    -- The step (wallet.withdrawal, wallet.exchange) whose funds this lien holds until its event
    -- completes; NULL for liens made with ctel_create_lien.
    transaction_id     uuid REFERENCES cte_ctel.cte_transactions (id),
    account_id         text NOT NULL,
    currency           text NOT NULL,
    amount             cte_ctel.cte_positive_amount NOT NULL,
    status             cte_ctel.cte_lien_status NOT NULL,
    expires_at         timestamptz,
    metadata           cte_ctel.cte_json_object,
    -- 0.2.0: what captures have taken so far (it grows with each partial capture); an active
    -- lien reserves amount - captured_amount. capture_posting_id is the last capture's.
    captured_amount    cte_ctel.cte_positive_amount CHECK (captured_amount <= amount),
    capture_posting_id uuid,
    reason             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    -- 0.2.0: a key names one lien (ctel_create_lien returns it again for the same hold).
    idempotency_key    cte_ctel.cte_name,
    FOREIGN KEY (account_id, currency) REFERENCES cte_ctel.cte_balances (account_id, currency),
    CHECK ((status IN ('captured', 'released', 'expired')) = (finished_at IS NOT NULL)),
    CHECK (status <> 'captured' OR captured_amount IS NOT NULL),
    CHECK (status <> 'pending' OR captured_amount IS NULL),
    CHECK (transaction_id IS NULL OR event_id IS NOT NULL)
);
CREATE UNIQUE INDEX cte_liens_idempotency_key_idx ON cte_ctel.cte_liens (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX cte_liens_event_idx ON cte_ctel.cte_liens (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX cte_liens_transaction_idx ON cte_ctel.cte_liens (transaction_id)
    WHERE transaction_id IS NOT NULL;
-- The open liens: what the worker expires (by expires_at) and what cte_stats totals.
CREATE INDEX cte_liens_open_idx ON cte_ctel.cte_liens (expires_at)
    WHERE status IN ('pending', 'active');
COMMENT ON TABLE cte_ctel.cte_liens IS
    'Funds held on a wallet: pending (event not started), active (reserved), then captured, released or expired.';

-- (0.2.0: here rather than in ledger.sql, since it reads the liens.)
-- Every balance, wallets and system accounts alike, as the API reads them. Each system account
-- holds every registered currency: its last fold (none yet is zero) plus the deltas since. A
-- lien past its expires_at counts as expired before the worker marks it: what it still holds
-- is not reserved here (the overdue ones are found through the open-lien index, and are few).
CREATE VIEW cte_ctel.cte_ledger_balances AS
    SELECT b.account_id, b.currency, b.balance, b.reserved - COALESCE(o.held, 0) AS reserved,
           b.balance - b.reserved + COALESCE(o.held, 0) AS available,
           false AS is_system,
           CASE WHEN NOT b.allow_negative THEN b.min_balance END AS min_balance,
           b.status
      FROM cte_ctel.cte_balances b
      LEFT JOIN LATERAL (
          SELECT sum(l.amount - COALESCE(l.captured_amount, 0)) AS held
            FROM cte_ctel.cte_liens l
           WHERE l.status = 'active' AND l.expires_at <= pg_catalog.statement_timestamp()
             AND l.account_id = b.account_id AND l.currency = b.currency) o ON true
    UNION ALL
    SELECT a.id, c.code,
           COALESCE(s.folded_balance, round(0, c.scale)) + COALESCE(d.total, 0) AS balance,
           0::numeric AS reserved,
           COALESCE(s.folded_balance, round(0, c.scale)) + COALESCE(d.total, 0) AS available,
           true AS is_system, NULL::numeric AS min_balance, a.status
      FROM cte_ctel.cte_accounts a
     CROSS JOIN cte_ctel.cte_currencies c
      LEFT JOIN cte_ctel.cte_system_balances s ON s.account_id = a.id AND s.currency = c.code
      LEFT JOIN (SELECT account_id, currency, sum(amount) AS total
                   FROM cte_ctel.cte_system_deltas
                  GROUP BY account_id, currency) d
             ON d.account_id = a.id AND d.currency = c.code
     WHERE a.is_system;
COMMENT ON VIEW cte_ctel.cte_ledger_balances IS
    'Every balance of every account, wallet or system: balance, reserved (by liens), available.';

-- ctel_capture_lien is declared here, not by pgrx: its last argument is named final, a word
-- Rust reserves. The body is src/api/liens.rs ctel_capture_lien_partly.
CREATE FUNCTION cte_ctel.ctel_capture_lien(
    lien_id uuid, destination_account_id text, amount numeric DEFAULT NULL,
    reference text DEFAULT NULL, "final" boolean DEFAULT true) RETURNS uuid
    VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path TO pg_catalog, pg_temp
    LANGUAGE c AS 'MODULE_PATHNAME', 'ctel_capture_lien_partly_wrapper';
COMMENT ON FUNCTION cte_ctel.ctel_capture_lien(uuid, text, numeric, text, boolean) IS
    'Moves up to what a lien still holds to a wallet; final releases the rest, otherwise it stays held for later captures.';
