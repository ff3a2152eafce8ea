-- The saga engine's tables: events, their steps (SPEC's "transactions"), the references steps
-- hold, the registered custom step types, and every status change (an outbox the worker moves
-- into the sequenced change log). Only the extension's functions write them.

CREATE TABLE cte_ctel.cte_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            cte_ctel.cte_name NOT NULL,
    description     cte_ctel.cte_description,
    status          cte_ctel.cte_event_status NOT NULL DEFAULT 'created',
    timeout         interval NOT NULL CHECK (timeout > interval '0'),
    -- A started event's deadline; before it starts, the time by which it must (its timeout
    -- after its creation), past which the worker cancels it.
    deadline        timestamptz,
    metadata        cte_ctel.cte_json_object,
    idempotency_key cte_ctel.cte_name,
    error           text,
    error_sqlstate  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    -- 0.2.0: for a refund (cte_reverse_event), the completed event it refunds.
    refund_of       uuid REFERENCES cte_ctel.cte_events (id),
    -- 0.2.0: a scheduled start (cte_start_event(…, not_before)): the worker starts the event
    -- then; its start-by deadline counts from it.
    not_before      timestamptz,
    -- 0.3.0: the role that created it (current_user then, outside the API's SECURITY DEFINER),
    -- which may cancel it (SPEC §11); NULL for events made before 0.3.0. Filled by a default
    -- set in sql/caller.sql, once its function exists.
    created_by      text,
    CHECK ((status IN ('completed', 'compensated', 'failed', 'resolved')) = (finished_at IS NOT NULL))
);
CREATE INDEX cte_events_refund_of_idx ON cte_ctel.cte_events (refund_of)
    WHERE refund_of IS NOT NULL;
-- What the worker starts: scheduled events whose time has come.
CREATE INDEX cte_events_scheduled_idx ON cte_ctel.cte_events (not_before)
    WHERE status = 'created' AND not_before IS NOT NULL;
-- Partial: most events have no key, and an index entry for each NULL cost every event a write.
CREATE UNIQUE INDEX cte_events_idempotency_key_idx ON cte_ctel.cte_events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- What the worker times out: waiting events past their deadline, events never started.
CREATE INDEX cte_events_deadline_idx ON cte_ctel.cte_events (deadline)
    WHERE status IN ('created', 'waiting');
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
    -- 0.2.0: when the application was asked to compensate this external step; it stays
    -- compensating until it reports, at most cte_ctel.compensation_timeout.
    compensation_requested_at timestamptz,
    -- 0.2.0: the bytes of the payload's JSON text, which the event's payload bound counts.
    payload_bytes   int NOT NULL CHECK (payload_bytes >= 0),
    -- 0.3.0: the lease of the application's worker that claimed this waiting step
    -- (cte_claim_steps, SPEC §10): who, the token its reports must carry, until when.
    lease_worker     text,
    lease_token      uuid,
    lease_expires_at timestamptz,
    CONSTRAINT cte_transactions_lease_check
        CHECK ((lease_token IS NULL) = (lease_expires_at IS NULL)
               AND (lease_token IS NULL) = (lease_worker IS NULL)),
    UNIQUE (event_id, "order"),
    CHECK (attempts BETWEEN 0 AND max_attempts),
    CHECK (next_attempt_at IS NULL OR status = 'waiting'),
    CHECK (compensation_requested_at IS NULL OR status = 'compensating')
);
CREATE INDEX cte_transactions_retry_idx ON cte_ctel.cte_transactions (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX cte_transactions_compensation_idx
    ON cte_ctel.cte_transactions (compensation_requested_at)
    WHERE compensation_requested_at IS NOT NULL;
COMMENT ON TABLE cte_ctel.cte_transactions IS
    'The steps of each event, run in "order"; payload, result, error, attempts and retry time.';
COMMENT ON COLUMN cte_ctel.cte_transactions.compensation_requested_at IS
    'When the application was asked to compensate this external step (it is compensating until it reports).';

-- A reference names one posting step of a type (and one item of a batch) among those that did
-- not fail: the primary key holds that for steps and batch items alike, also against racing
-- sessions. A step's references are deleted when it fails for good.
CREATE TABLE cte_ctel.cte_references (
    type           text NOT NULL,
    reference      cte_ctel.cte_reference NOT NULL,
    transaction_id uuid NOT NULL,
    -- The batch item holding it; NULL for the step's own reference.
    item_id        text,
    PRIMARY KEY (type, reference)
);
COMMENT ON TABLE cte_ctel.cte_references IS
    'Every reference held by a step (or a batch item) that did not fail: unique per step type.';

CREATE TABLE cte_ctel.cte_executors (
    type          text PRIMARY KEY,
    -- 0.2.0: the functions' signatures as text (schema-qualified); a regprocedure column would
    -- keep pg_upgrade from running. Resolved and checked again on every run.
    execute_fn    text NOT NULL,
    compensate_fn text,
    registered_at timestamptz NOT NULL DEFAULT now(),
    -- 0.2.0: the role that registered them, which owns both and whose rights they run with.
    registrant    text NOT NULL
);
COMMENT ON TABLE cte_ctel.cte_executors IS
    'Custom step types: execute_fn(transaction_id uuid, payload jsonb) RETURNS jsonb and compensate_fn(transaction_id uuid, payload jsonb, result jsonb) RETURNS void, run with the rights of the role that registered them.';
COMMENT ON COLUMN cte_ctel.cte_executors.registrant IS
    'The role that registered the type; it owns both functions, and they run as it.';

-- Status changes, written by the transaction that makes them: one row per drive of an event
-- (its ordered changes as parallel arrays) or per lien or account operation. The worker moves
-- committed rows into cte_change_log, giving each change its position in the feed; the
-- cte_event_history view reads both tables.
CREATE TABLE cte_ctel.cte_change_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid,
    account_id      text,
    actor           text NOT NULL,
    reason          text,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    kinds           text[] NOT NULL,
    transaction_ids uuid[] NOT NULL,
    lien_ids        uuid[] NOT NULL,
    old_statuses    text[] NOT NULL,
    new_statuses    text[] NOT NULL,
    -- 0.3.0: a balance monitor's change (kind monitor) carries the available balance, its
    -- currency and the monitor (sql/monitors.sql); NULL on every other row.
    amount          numeric,
    currency        text,
    monitor_id      uuid,
    CHECK (cardinality(kinds) >= 1),
    CHECK (cardinality(transaction_ids) = cardinality(kinds)
           AND cardinality(lien_ids) = cardinality(kinds)
           AND cardinality(old_statuses) = cardinality(kinds)
           AND cardinality(new_statuses) = cardinality(kinds))
);
COMMENT ON TABLE cte_ctel.cte_change_outbox IS
    'Status changes committed but not yet given their place in the feed (the worker moves them to cte_change_log).';

-- The change feed: rows moved from the outbox by one sequencer at a time, in the outbox's id
-- order among the rows committed when it ran, so a position is given only to a committed
-- change and never below one already given: a consumer following positions misses nothing.
-- The changes of a row are at position, position + 1, ... position + cardinality(kinds) - 1.
CREATE TABLE cte_ctel.cte_change_log (
    position        bigint PRIMARY KEY CHECK (position >= 1),
    id              bigint NOT NULL,
    event_id        uuid,
    account_id      text,
    actor           text NOT NULL,
    reason          text,
    at              timestamptz NOT NULL,
    kinds           text[] NOT NULL,
    transaction_ids uuid[] NOT NULL,
    lien_ids        uuid[] NOT NULL,
    old_statuses    text[] NOT NULL,
    new_statuses    text[] NOT NULL,
    -- 0.3.0: a balance monitor's change (kind monitor) carries the available balance, its
    -- currency and the monitor (sql/monitors.sql); NULL on every other row.
    amount          numeric,
    currency        text,
    monitor_id      uuid,
    CHECK (cardinality(kinds) >= 1)
);
CREATE INDEX cte_change_log_event_idx ON cte_ctel.cte_change_log (event_id, id)
    WHERE event_id IS NOT NULL;
COMMENT ON TABLE cte_ctel.cte_change_log IS
    'The change feed: status changes of events, steps, liens and accounts in the order cte_changes() returns them.';

-- One row, never changed: a sequencer locks it (FOR UPDATE, which only the extension's owner
-- may do here) so that two never run at once. An advisory lock would do, except that any role
-- can take an advisory lock and so stop the feed.
CREATE TABLE cte_ctel.cte_sequencer (
    id int PRIMARY KEY CHECK (id = 1)
);
INSERT INTO cte_ctel.cte_sequencer VALUES (1);
COMMENT ON TABLE cte_ctel.cte_sequencer IS
    'The lock the change sequencer takes (one row, never changed).';

-- What the worker's maintenance passes did: one row per database, for monitoring (cte_stats).
CREATE TABLE cte_ctel.cte_worker_state (
    id                int PRIMARY KEY CHECK (id = 1),
    last_pass_at      timestamptz NOT NULL,
    last_pass_ms      bigint NOT NULL,
    last_pass_report  jsonb NOT NULL,
    last_failure_at   timestamptz,
    last_failure      text
);
COMMENT ON TABLE cte_ctel.cte_worker_state IS
    'The last maintenance pass (by the worker or cte_run_maintenance()): when, how long, what it did.';

-- Every status change, one row per change. The changes one drive of an event wrote share an
-- id, in the order n; seq (0.3.0) is that order in one column, id * 16384 + n - 1 (a row holds
-- at most 16,384 changes, limits.rs CHANGES_PER_ROW_MAX): ORDER BY seq lists an event's history
-- in the order it happened, also before the feed gave the changes positions.
CREATE VIEW cte_ctel.cte_event_history AS
    SELECT b.id, c.n::int AS n, b.event_id, c.transaction_id, c.lien_id, b.account_id,
           c.kind, c.old_status, c.new_status, b.actor, b.reason, b.at,
           b.position + c.n - 1 AS position, b.id * 16384 + c.n - 1 AS seq
      FROM (SELECT position, id, event_id, account_id, actor, reason, at, kinds,
                   transaction_ids, lien_ids, old_statuses, new_statuses
              FROM cte_ctel.cte_change_log
            UNION ALL
            SELECT NULL, id, event_id, account_id, actor, reason, at, kinds,
                   transaction_ids, lien_ids, old_statuses, new_statuses
              FROM cte_ctel.cte_change_outbox) b,
           unnest(b.kinds, b.transaction_ids, b.lien_ids, b.old_statuses, b.new_statuses)
               WITH ORDINALITY AS c(kind, transaction_id, lien_id, old_status, new_status, n);
COMMENT ON VIEW cte_ctel.cte_event_history IS
    'Every status change of an event, a step, a lien or an account, one row per change: who, when, why; position is its place in the change feed (NULL until the worker gives it one); ORDER BY seq lists changes in the order they were made.';

CREATE VIEW cte_ctel.cte_overdue_events AS
    SELECT id, name, status, deadline, now() - deadline AS overdue_by, started_at
      FROM cte_ctel.cte_events
     WHERE status IN ('created', 'waiting') AND deadline < now();
COMMENT ON VIEW cte_ctel.cte_overdue_events IS
    'Events past their deadline (waiting ones) or never started within their timeout: the worker cancels them.';
