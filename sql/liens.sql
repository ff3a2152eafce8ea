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
    captured_amount    cte_ctel.cte_positive_amount CHECK (captured_amount <= amount),
    capture_posting_id uuid,
    reason             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    FOREIGN KEY (account_id, currency) REFERENCES cte_ctel.cte_balances (account_id, currency),
    CHECK ((status IN ('captured', 'released', 'expired')) = (finished_at IS NOT NULL)),
    CHECK ((status = 'captured') = (captured_amount IS NOT NULL)),
    CHECK (transaction_id IS NULL OR event_id IS NOT NULL)
);
CREATE INDEX cte_liens_event_idx ON cte_ctel.cte_liens (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX cte_liens_transaction_idx ON cte_ctel.cte_liens (transaction_id)
    WHERE transaction_id IS NOT NULL;
-- The open liens: what the worker expires (by expires_at) and what cte_stats totals.
CREATE INDEX cte_liens_open_idx ON cte_ctel.cte_liens (expires_at)
    WHERE status IN ('pending', 'active');
COMMENT ON TABLE cte_ctel.cte_liens IS
    'Funds held on a wallet: pending (event not started), active (reserved), then captured, released or expired.';
