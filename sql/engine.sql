-- The saga engine's tables: events, their steps (SPEC's "transactions"), every status change,
-- and the registered custom step types. Only the extension's functions write them.

CREATE TABLE cte_ctel.cte_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            cte_ctel.cte_name NOT NULL,
    description     cte_ctel.cte_description,
    status          cte_ctel.cte_event_status NOT NULL DEFAULT 'created',
    timeout         interval NOT NULL CHECK (timeout > interval '0'),
    deadline        timestamptz,
    metadata        cte_ctel.cte_json_object,
    idempotency_key cte_ctel.cte_name,
    error           text,
    error_sqlstate  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    CHECK ((status IN ('completed', 'compensated', 'failed')) = (finished_at IS NOT NULL))
);
-- Partial: most events have no key, and an index entry for each NULL cost every event a write.
CREATE UNIQUE INDEX cte_events_idempotency_key_idx ON cte_ctel.cte_events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX cte_events_unfinished_idx ON cte_ctel.cte_events (deadline)
    WHERE status IN ('running', 'waiting', 'compensating');
COMMENT ON TABLE cte_ctel.cte_events IS
    'Chained transaction events: ordered steps that complete as a whole or are compensated as a whole.';

CREATE TABLE cte_ctel.cte_transactions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id        uuid NOT NULL REFERENCES cte_ctel.cte_events (id),
    name            cte_ctel.cte_name NOT NULL,
    description     cte_ctel.cte_description,
    type            text NOT NULL,
    "order"         int NOT NULL CHECK ("order" >= 1),
    payload         cte_ctel.cte_json_object NOT NULL,
    reference       cte_ctel.cte_reference,
    status          cte_ctel.cte_step_status NOT NULL DEFAULT 'pending',
    attempts        int NOT NULL DEFAULT 0,
    max_attempts    int NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    result          jsonb,
    error           text,
    error_sqlstate  text,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, "order"),
    CHECK (attempts BETWEEN 0 AND max_attempts),
    CHECK (next_attempt_at IS NULL OR status = 'waiting')
);
-- A reference names one step of a type among those that did not fail.
CREATE UNIQUE INDEX cte_transactions_reference_idx ON cte_ctel.cte_transactions (type, reference)
    WHERE reference IS NOT NULL AND status <> 'failed';
CREATE INDEX cte_transactions_retry_idx ON cte_ctel.cte_transactions (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
COMMENT ON TABLE cte_ctel.cte_transactions IS
    'The steps of each event, run in "order"; payload, result, error, attempts and retry time.';

-- No foreign keys here: every status change writes a row (five for a one-step transfer), and
-- their two referential checks each were a fifth of a transfer's time (bench/, issue 6). The
-- rows are written only by the statements that write the event or step they name, and
-- cte_verify_ledger() checks the stronger rule (the step belongs to that event).
CREATE TABLE cte_ctel.cte_event_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       uuid NOT NULL,
    transaction_id uuid,
    old_status     text,
    new_status     text NOT NULL,
    actor          text NOT NULL,
    reason         text,
    at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cte_event_history_event_idx ON cte_ctel.cte_event_history (event_id, id);
COMMENT ON TABLE cte_ctel.cte_event_history IS
    'Every status change of an event (transaction_id NULL) or of one of its steps: who, when, why.';

-- Status changes waiting to be announced when cte_ctel.notify_by_worker is on: one row per
-- statement that recorded changes, deleted by the maintenance pass as it sends them.
CREATE TABLE cte_ctel.cte_notify_queue (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    history_ids bigint[] NOT NULL CHECK (cardinality(history_ids) >= 1)
);
COMMENT ON TABLE cte_ctel.cte_notify_queue IS
    'History rows whose NOTIFY cte_events the maintenance pass still has to send (notify_by_worker).';

CREATE TABLE cte_ctel.cte_executors (
    type          text PRIMARY KEY,
    execute_fn    regprocedure NOT NULL,
    compensate_fn regprocedure,
    registered_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cte_ctel.cte_executors IS
    'Custom step types: execute_fn(transaction_id uuid, payload jsonb) RETURNS jsonb and compensate_fn(transaction_id uuid, payload jsonb, result jsonb) RETURNS void.';

CREATE VIEW cte_ctel.cte_overdue_events AS
    SELECT id, name, status, deadline, now() - deadline AS overdue_by, started_at
      FROM cte_ctel.cte_events
     WHERE status IN ('running', 'waiting', 'compensating') AND deadline < now();
COMMENT ON VIEW cte_ctel.cte_overdue_events IS
    'Events not finished past their deadline (maintenance compensates waiting ones).';
