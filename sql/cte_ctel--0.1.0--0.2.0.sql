-- cte_ctel 0.1.0 -> 0.2.0, in place, with data in it. Run by ALTER EXTENSION cte_ctel UPDATE.
-- The result equals a fresh install of 0.2.0 (tests/upgrade.sh compares the two through the
-- catalogs). Released scripts are frozen; later changes go into the next version's script.
\echo Use "ALTER EXTENSION cte_ctel UPDATE" to load this file. \quit

-- Event status 'resolved' (an operator settled a failed event).
ALTER DOMAIN cte_ctel.cte_event_status DROP CONSTRAINT cte_event_status_check;
ALTER DOMAIN cte_ctel.cte_event_status ADD CONSTRAINT cte_event_status_check CHECK (VALUE IN
    ('created', 'running', 'waiting', 'completed', 'compensating', 'compensated', 'failed',
     'resolved'));

-- Seeded currencies are marked, so that pg_dump leaves them to CREATE EXTENSION.
ALTER TABLE cte_ctel.cte_currencies ADD COLUMN seeded boolean NOT NULL DEFAULT false;
UPDATE cte_ctel.cte_currencies SET seeded = true
 WHERE code IN (SELECT code FROM (VALUES
    ('AED', 2), ('ARS', 2), ('AUD', 2), ('BDT', 2), ('BGN', 2), ('BHD', 3), ('BRL', 2),
    ('CAD', 2), ('CHF', 2), ('CLP', 0), ('CNY', 2), ('COP', 2), ('CZK', 2), ('DKK', 2),
    ('EGP', 2), ('EUR', 2), ('GBP', 2), ('GHS', 2), ('HKD', 2), ('HUF', 2), ('IDR', 2),
    ('ILS', 2), ('INR', 2), ('IQD', 3), ('ISK', 0), ('JOD', 3), ('JPY', 0), ('KES', 2),
    ('KRW', 0), ('KWD', 3), ('LKR', 2), ('LYD', 3), ('MAD', 2), ('MXN', 2), ('MYR', 2),
    ('NGN', 2), ('NOK', 2), ('NZD', 2), ('OMR', 3), ('PEN', 2), ('PHP', 2), ('PKR', 2),
    ('PLN', 2), ('QAR', 2), ('RON', 2), ('SAR', 2), ('SEK', 2), ('SGD', 2), ('THB', 2),
    ('TND', 3), ('TRY', 2), ('TWD', 2), ('UAH', 2), ('UGX', 0), ('USD', 2), ('UYU', 2),
    ('VND', 0), ('XAF', 0), ('XOF', 0), ('ZAR', 2), ('BTC', 8)) AS seed(code, scale));
COMMENT ON COLUMN cte_ctel.cte_currencies.seeded IS
    'Registered by CREATE EXTENSION (not dumped: every install has them).';

-- Entries are stamped by the engine as they are written (0.1.0: the transaction's start); the
-- default serves rows written by hand, one time per statement.
ALTER TABLE cte_ctel.cte_entries ALTER COLUMN created_at SET DEFAULT statement_timestamp();

-- System balances: a currency's row now appears with its first fold; the view shows every
-- system account in every currency. 0.1.0's rows stay, as data.
CREATE OR REPLACE VIEW cte_ctel.cte_ledger_balances AS
    SELECT b.account_id, b.currency, b.balance, b.reserved, b.balance - b.reserved AS available,
           false AS is_system
      FROM cte_ctel.cte_balances b
    UNION ALL
    SELECT a.id, c.code,
           COALESCE(s.folded_balance, round(0, c.scale)) + COALESCE(d.total, 0) AS balance,
           0::numeric AS reserved,
           COALESCE(s.folded_balance, round(0, c.scale)) + COALESCE(d.total, 0) AS available,
           true AS is_system
      FROM cte_ctel.cte_accounts a
     CROSS JOIN cte_ctel.cte_currencies c
      LEFT JOIN cte_ctel.cte_system_balances s ON s.account_id = a.id AND s.currency = c.code
      LEFT JOIN (SELECT account_id, currency, sum(amount) AS total
                   FROM cte_ctel.cte_system_deltas
                  GROUP BY account_id, currency) d
             ON d.account_id = a.id AND d.currency = c.code
     WHERE a.is_system;

-- Events: a created event's deadline is the time by which it must start.
ALTER TABLE cte_ctel.cte_events DROP CONSTRAINT cte_events_check;
ALTER TABLE cte_ctel.cte_events ADD CONSTRAINT cte_events_check
    CHECK ((status IN ('completed', 'compensated', 'failed', 'resolved')) = (finished_at IS NOT NULL));
DROP INDEX cte_ctel.cte_events_unfinished_idx;
UPDATE cte_ctel.cte_events SET deadline = created_at + timeout WHERE status = 'created';
CREATE INDEX cte_events_deadline_idx ON cte_ctel.cte_events (deadline)
    WHERE status IN ('created', 'waiting');

-- Steps: the time an external step was asked to compensate (0.1.0's external steps waiting on
-- a compensation report are asked as of now).
ALTER TABLE cte_ctel.cte_transactions ADD COLUMN compensation_requested_at timestamptz;
ALTER TABLE cte_ctel.cte_transactions ADD CONSTRAINT cte_transactions_check2
    CHECK (compensation_requested_at IS NULL OR status = 'compensating');
UPDATE cte_ctel.cte_transactions SET compensation_requested_at = now()
 WHERE type = 'external' AND status = 'compensating';
ALTER TABLE cte_ctel.cte_transactions ADD COLUMN payload_bytes int
    CONSTRAINT cte_transactions_payload_bytes_check CHECK (payload_bytes >= 0);
UPDATE cte_ctel.cte_transactions SET payload_bytes = octet_length(payload::text);
ALTER TABLE cte_ctel.cte_transactions ALTER COLUMN payload_bytes SET NOT NULL;
CREATE INDEX cte_transactions_compensation_idx
    ON cte_ctel.cte_transactions (compensation_requested_at)
    WHERE compensation_requested_at IS NOT NULL;
COMMENT ON COLUMN cte_ctel.cte_transactions.compensation_requested_at IS
    'When the application was asked to compensate this external step (it is compensating until it reports).';

-- References: one table for steps' and batch items' references, replacing the partial index.
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

INSERT INTO cte_ctel.cte_references (type, reference, transaction_id, item_id)
SELECT type, reference, id, NULL FROM cte_ctel.cte_transactions
 WHERE reference IS NOT NULL AND status <> 'failed';
-- 0.1.0 did not hold batch items' references unique: the first item holding one keeps it.
INSERT INTO cte_ctel.cte_references (type, reference, transaction_id, item_id)
SELECT item ->> 'type', item -> 'payload' ->> 'reference', t.id, item ->> 'id'
  FROM cte_ctel.cte_transactions t,
       jsonb_array_elements(t.payload -> 'transactions') WITH ORDINALITY AS i(item, n)
 WHERE t.type = 'batch.operation' AND t.status <> 'failed'
   AND item -> 'payload' ->> 'reference' IS NOT NULL
 ORDER BY t.created_at, t.id, i.n
ON CONFLICT (type, reference) DO NOTHING;
DROP INDEX cte_ctel.cte_transactions_reference_idx;

-- Executors: signatures as text (pg_upgrade refuses regprocedure columns) and the role they
-- run as. 0.1.0 registered them as the extension's owner: each now runs as the owner of its
-- execute function (a compensate function owned by another role is refused when it runs).
CREATE FUNCTION cte_ctel.cte_upgrade_signature(function oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname)
           || '(' || oidvectortypes(p.proargtypes) || ')'
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = function
$$;
ALTER TABLE cte_ctel.cte_executors ADD COLUMN registrant text;
UPDATE cte_ctel.cte_executors e
   SET registrant = (SELECT pg_get_userbyid(p.proowner) FROM pg_proc p WHERE p.oid = e.execute_fn::oid);
ALTER TABLE cte_ctel.cte_executors ALTER COLUMN registrant SET NOT NULL;
ALTER TABLE cte_ctel.cte_executors
    ALTER COLUMN execute_fn TYPE text USING cte_ctel.cte_upgrade_signature(execute_fn::oid),
    ALTER COLUMN compensate_fn TYPE text USING cte_ctel.cte_upgrade_signature(compensate_fn::oid);
DROP FUNCTION cte_ctel.cte_upgrade_signature(oid);
COMMENT ON TABLE cte_ctel.cte_executors IS
    'Custom step types: execute_fn(transaction_id uuid, payload jsonb) RETURNS jsonb and compensate_fn(transaction_id uuid, payload jsonb, result jsonb) RETURNS void, run with the rights of the role that registered them.';
COMMENT ON COLUMN cte_ctel.cte_executors.registrant IS
    'The role that registered the type; it owns both functions, and they run as it.';

-- Changes: the outbox, the change log (the feed), the sequencer's lock, the worker's state.
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

-- 0.1.0's history, one change per row, in its order, each with its position in the feed.
INSERT INTO cte_ctel.cte_change_log
       (position, id, event_id, account_id, actor, reason, at, kinds, transaction_ids, lien_ids,
        old_statuses, new_statuses)
SELECT row_number() OVER (ORDER BY id), id, event_id, NULL, actor, reason, at,
       ARRAY[CASE WHEN transaction_id IS NULL THEN 'event' ELSE 'transaction' END],
       ARRAY[transaction_id], ARRAY[NULL::uuid], ARRAY[old_status], ARRAY[new_status]
  FROM cte_ctel.cte_event_history;
SELECT setval('cte_ctel.cte_change_outbox_id_seq', max(id)) FROM cte_ctel.cte_event_history
HAVING max(id) IS NOT NULL;
DROP TABLE cte_ctel.cte_event_history;
-- Status changes are announced by the worker from the feed: the queue is gone, and its
-- changes are in the feed already.
DROP TABLE cte_ctel.cte_notify_queue;
-- Every status change, one row per change, oldest first within each event.
CREATE VIEW cte_ctel.cte_event_history AS
    SELECT b.id, c.n::int AS n, b.event_id, c.transaction_id, c.lien_id, b.account_id,
           c.kind, c.old_status, c.new_status, b.actor, b.reason, b.at,
           b.position + c.n - 1 AS position
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
    'Every status change of an event, a step, a lien or an account, one row per change: who, when, why; position is its place in the change feed (NULL until the worker gives it one).';

CREATE OR REPLACE VIEW cte_ctel.cte_overdue_events AS
    SELECT id, name, status, deadline, now() - deadline AS overdue_by, started_at
      FROM cte_ctel.cte_events
     WHERE status IN ('created', 'waiting') AND deadline < now();
COMMENT ON VIEW cte_ctel.cte_overdue_events IS
    'Events past their deadline (waiting ones) or never started within their timeout: the worker cancels them.';

-- Functions.
-- cte_verify_ledger() is replaced once, with the money operations' checks, further down.

CREATE OR REPLACE FUNCTION "cte_fail_transaction"(
	"transaction_id" uuid,
	"error" TEXT,
	"retryable" bool DEFAULT false
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_fail_transaction_wrapper';

-- SECURITY INVOKER now, and in C: the caller is the registrant.
CREATE OR REPLACE FUNCTION cte_ctel.cte_register_executor(
    type text, execute_fn regprocedure, compensate_fn regprocedure DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE SECURITY INVOKER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'cte_register_executor_wrapper';
COMMENT ON FUNCTION cte_ctel.cte_register_executor(text, regprocedure, regprocedure) IS
    'Adds (or replaces) a custom step type: execute_fn(uuid, jsonb) RETURNS jsonb, compensate_fn(uuid, jsonb, jsonb) RETURNS void. The calling role must own both (not in pg_temp); they run inside the step''s subtransaction with that role''s rights, whoever starts the event.';

DROP FUNCTION cte_ctel.cte_register_executor_by_oid(text, oid, oid);

CREATE FUNCTION "cte_changes"(
	"after" bigint DEFAULT 0,
	"limit" INT DEFAULT 1000
) RETURNS TABLE (
	"position" bigint, 
	"at" timestamp with time zone, 
	"kind" TEXT, 
	"event_id" uuid, 
	"event_name" TEXT, 
	"transaction_id" uuid, 
	"transaction_type" TEXT, 
	"lien_id" uuid, 
	"account_id" TEXT, 
	"old_status" TEXT, 
	"new_status" TEXT, 
	"amount" NUMERIC, 
	"currency" TEXT, 
	"reference" TEXT, 
	"actor" TEXT, 
	"reason" TEXT 
)
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_changes_wrapper';

CREATE FUNCTION "cte_complete_compensation"(
	"transaction_id" uuid,
	"result" jsonb DEFAULT NULL
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_complete_compensation_wrapper';

CREATE FUNCTION "cte_fail_compensation"(
	"transaction_id" uuid,
	"error" TEXT
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_fail_compensation_wrapper';

CREATE FUNCTION "cte_retry_compensation"(
	"event_id" uuid
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_retry_compensation_wrapper';

CREATE FUNCTION "cte_resolve_event"(
	"event_id" uuid,
	"note" TEXT
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_resolve_event_wrapper';

-- Privileges of what is new (roles.sql's rules): PUBLIC gets nothing.
REVOKE ALL ON cte_ctel.cte_references, cte_ctel.cte_change_outbox, cte_ctel.cte_change_log,
    cte_ctel.cte_sequencer, cte_ctel.cte_worker_state, cte_ctel.cte_event_history FROM PUBLIC;
GRANT SELECT ON cte_ctel.cte_references, cte_ctel.cte_change_outbox, cte_ctel.cte_change_log,
    cte_ctel.cte_sequencer, cte_ctel.cte_worker_state, cte_ctel.cte_event_history TO cte_reader;
REVOKE ALL ON FUNCTION cte_ctel.cte_changes(bigint, int),
    cte_ctel.cte_complete_compensation(uuid, jsonb), cte_ctel.cte_fail_compensation(uuid, text),
    cte_ctel.cte_retry_compensation(uuid), cte_ctel.cte_resolve_event(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_changes(bigint, int) TO cte_reader;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_complete_compensation(uuid, jsonb),
    cte_ctel.cte_fail_compensation(uuid, text) TO cte_operator;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_retry_compensation(uuid),
    cte_ctel.cte_resolve_event(uuid, text) TO cte_admin;

-- What pg_dump keeps (lifecycle.sql).
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_currencies', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_accounts', 'WHERE NOT is_system');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_balances', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_system_balances', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_system_deltas', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_system_deltas_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_entries', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_entries_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_events', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_transactions', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_references', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_executors', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_change_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_change_outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_change_log', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_worker_state', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_liens', '');

-- Monitoring (stats.sql): the open liens' index replaces the expiry index (it also holds the
-- liens without an expiry, which cte_stats totals), the attention index, the cte_stats view.
DROP INDEX cte_ctel.cte_liens_expiry_idx;
CREATE INDEX cte_liens_open_idx ON cte_ctel.cte_liens (expires_at)
    WHERE status IN ('pending', 'active');
CREATE INDEX cte_events_attention_idx ON cte_ctel.cte_events (status, created_at)
    WHERE status IN ('compensating', 'failed');

CREATE VIEW cte_ctel.cte_stats AS
WITH open_events AS (
    SELECT e.status, count(*) AS events, min(coalesce(e.started_at, e.created_at)) AS oldest,
           count(*) FILTER (WHERE e.deadline < pg_catalog.statement_timestamp()
                              AND e.status IN ('created', 'waiting')) AS overdue
      FROM cte_ctel.cte_events e
     WHERE e.status IN ('created', 'waiting')
     GROUP BY e.status
    UNION ALL
    SELECT e.status, count(*), min(coalesce(e.started_at, e.created_at)), 0
      FROM cte_ctel.cte_events e
     WHERE e.status IN ('compensating', 'failed')
     GROUP BY e.status
),
-- External steps asked to compensate whose event waits for the report (under a failed event
-- the step stays compensating, for an operator: counted there).
in_doubt AS (
    SELECT t.compensation_requested_at
      FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE t.compensation_requested_at IS NOT NULL AND e.status = 'compensating'
),
statuses (status) AS (VALUES ('created'), ('waiting'), ('compensating'), ('failed')),
open_liens AS (
    SELECT l.currency, count(*) AS liens, sum(l.amount) AS amount,
           count(*) FILTER (WHERE l.status = 'active'
                              AND l.expires_at <= pg_catalog.statement_timestamp()) AS overdue
      FROM cte_ctel.cte_liens l
     WHERE l.status IN ('pending', 'active')
     GROUP BY l.currency
)
SELECT 'events_open'::text AS metric, s.status, NULL::text AS currency,
       coalesce(o.events, 0)::numeric AS value
  FROM statuses s LEFT JOIN open_events o USING (status)
UNION ALL
SELECT 'events_open_oldest_seconds', o.status, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - o.oldest), 3)
  FROM open_events o
UNION ALL
SELECT 'events_overdue', NULL, NULL, coalesce(sum(o.overdue), 0) FROM open_events o
UNION ALL
SELECT 'steps_in_doubt', NULL, NULL, count(*) FROM in_doubt
UNION ALL
SELECT 'steps_in_doubt_oldest_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - min(d.compensation_requested_at)), 3)
  FROM in_doubt d HAVING count(*) > 0
UNION ALL
SELECT 'retries_overdue', NULL, NULL, count(*)
  FROM cte_ctel.cte_transactions t WHERE t.next_attempt_at < pg_catalog.statement_timestamp()
UNION ALL
SELECT 'liens_open', NULL, l.currency, l.liens FROM open_liens l
UNION ALL
SELECT 'liens_open_amount', NULL, l.currency, l.amount FROM open_liens l
UNION ALL
SELECT 'liens_overdue', NULL, NULL, coalesce(sum(l.overdue), 0) FROM open_liens l
UNION ALL
SELECT 'worker_running', NULL, NULL, count(*)
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_type = 'cte_ctel maintenance' AND a.datname = pg_catalog.current_database()
UNION ALL
SELECT 'worker_last_pass_age_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - w.last_pass_at), 3)
  FROM cte_ctel.cte_worker_state w
UNION ALL
SELECT 'worker_last_pass_duration_seconds', NULL, NULL, w.last_pass_ms / 1000.0
  FROM cte_ctel.cte_worker_state w
UNION ALL
SELECT 'worker_last_failure_age_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - w.last_failure_at), 3)
  FROM cte_ctel.cte_worker_state w WHERE w.last_failure_at IS NOT NULL
UNION ALL
SELECT 'feed_backlog', NULL, NULL, count(*) FROM cte_ctel.cte_change_outbox
UNION ALL
SELECT 'feed_backlog_oldest_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - min(b.at)), 3)
  FROM cte_ctel.cte_change_outbox b HAVING count(*) > 0
UNION ALL
SELECT 'feed_position', NULL, NULL, coalesce(max(c.position), 0) FROM cte_ctel.cte_change_log c
UNION ALL
SELECT 'journal_last_entry_id', NULL, NULL, coalesce(max(j.id), 0) FROM cte_ctel.cte_entries j;

COMMENT ON VIEW cte_ctel.cte_stats IS
    'Monitoring gauges, one row per metric and label (docs/operations.md lists them with alerts).';
REVOKE ALL ON cte_ctel.cte_stats FROM PUBLIC;
GRANT SELECT ON cte_ctel.cte_stats TO cte_reader;

-- Money operations (issue 14): account status and floors, multi-capture and idempotent holds,
-- refunds, statements. Same order as the fresh install's files, so constraint names agree.
CREATE DOMAIN cte_ctel.cte_account_status AS text CHECK (VALUE IN ('open', 'frozen', 'closed'));
REVOKE ALL ON DOMAIN cte_ctel.cte_account_status FROM PUBLIC;
ALTER TABLE cte_ctel.cte_accounts
    ADD COLUMN status cte_ctel.cte_account_status NOT NULL DEFAULT 'open',
    ADD COLUMN status_reason text,
    ADD COLUMN status_changed_at timestamptz,
    ADD CONSTRAINT cte_accounts_check2 CHECK (status = 'open' OR NOT is_system);
ALTER TABLE cte_ctel.cte_balances
    ADD COLUMN min_balance cte_ctel.cte_balance NOT NULL DEFAULT 0,
    ADD COLUMN status cte_ctel.cte_account_status NOT NULL DEFAULT 'open',
    DROP CONSTRAINT cte_balances_available_check,
    ADD CONSTRAINT cte_balances_available_check
        CHECK (allow_negative OR balance - reserved >= min_balance),
    ADD CONSTRAINT cte_balances_closed_check
        CHECK (status <> 'closed' OR (balance = 0 AND reserved = 0));
-- A floor of zero at the currency's scale, as a fresh account gets.
UPDATE cte_ctel.cte_balances b SET min_balance = pg_catalog.round(0, c.scale)
  FROM cte_ctel.cte_currencies c WHERE c.code = b.currency;
ALTER TABLE cte_ctel.cte_entries ADD COLUMN lien_id uuid;
DROP INDEX cte_ctel.cte_entries_account_idx;
CREATE INDEX cte_entries_account_idx ON cte_ctel.cte_entries (account_id, currency, created_at, id);
ALTER TABLE cte_ctel.cte_events ADD COLUMN refund_of uuid REFERENCES cte_ctel.cte_events (id);
CREATE INDEX cte_events_refund_of_idx ON cte_ctel.cte_events (refund_of)
    WHERE refund_of IS NOT NULL;
ALTER TABLE cte_ctel.cte_liens
    ADD COLUMN idempotency_key cte_ctel.cte_name,
    DROP CONSTRAINT cte_liens_check2,
    DROP CONSTRAINT cte_liens_check3,
    ADD CONSTRAINT cte_liens_check2 CHECK (status <> 'captured' OR captured_amount IS NOT NULL),
    ADD CONSTRAINT cte_liens_check3 CHECK (status <> 'pending' OR captured_amount IS NULL),
    ADD CONSTRAINT cte_liens_check4 CHECK (transaction_id IS NULL OR event_id IS NOT NULL);
CREATE UNIQUE INDEX cte_liens_idempotency_key_idx ON cte_ctel.cte_liens (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE OR REPLACE VIEW cte_ctel.cte_ledger_balances AS
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

-- (cte_verify_ledger() is replaced at the end, once everything it reads exists.)

-- ctel_create_lien gains idempotency_key, ctel_capture_lien reference and final.
DROP FUNCTION cte_ctel.ctel_create_lien(uuid, text, numeric, text, timestamptz, jsonb);
DROP FUNCTION cte_ctel.ctel_capture_lien(uuid, text, numeric);
CREATE FUNCTION cte_ctel.ctel_capture_lien(
    lien_id uuid, destination_account_id text, amount numeric DEFAULT NULL,
    reference text DEFAULT NULL, "final" boolean DEFAULT true) RETURNS uuid
    VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path TO pg_catalog, pg_temp
    LANGUAGE c AS 'MODULE_PATHNAME', 'ctel_capture_lien_partly_wrapper';
COMMENT ON FUNCTION cte_ctel.ctel_capture_lien(uuid, text, numeric, text, boolean) IS
    'Moves up to what a lien still holds to a wallet; final releases the rest, otherwise it stays held for later captures.';

CREATE  FUNCTION "cte_add_currency"(
	"account_id" TEXT, /* Option < String > */
	"currency" TEXT /* Option < String > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_add_currency_wrapper';

CREATE  FUNCTION "cte_set_limits"(
	"account_id" TEXT, /* Option < String > */
	"currency" TEXT, /* Option < String > */
	"min_balance" NUMERIC /* Option < AnyNumeric > */
) RETURNS void
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_set_limits_wrapper';

CREATE  FUNCTION "cte_freeze_account"(
	"account_id" TEXT, /* Option < String > */
	"reason" TEXT /* Option < String > */
) RETURNS TEXT /* String */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_freeze_account_wrapper';

CREATE  FUNCTION "cte_unfreeze_account"(
	"account_id" TEXT, /* Option < String > */
	"reason" TEXT DEFAULT NULL /* Option < String > */
) RETURNS TEXT /* String */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_unfreeze_account_wrapper';

CREATE  FUNCTION "cte_close_account"(
	"account_id" TEXT, /* Option < String > */
	"reason" TEXT DEFAULT NULL /* Option < String > */
) RETURNS void
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_close_account_wrapper';

CREATE  FUNCTION "cte_reverse_event"(
	"event_id" uuid, /* Option < Uuid > */
	"reason" TEXT, /* Option < String > */
	"amount" NUMERIC DEFAULT NULL, /* Option < AnyNumeric > */
	"reference" TEXT DEFAULT NULL /* Option < String > */
) RETURNS uuid /* Uuid */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_reverse_event_wrapper';

CREATE  FUNCTION "cte_account_statement"(
	"account_id" TEXT, /* Option < String > */
	"currency" TEXT, /* Option < String > */
	"from" timestamp with time zone DEFAULT NULL, /* Option < TimestampWithTimeZone > */
	"to" timestamp with time zone DEFAULT NULL, /* Option < TimestampWithTimeZone > */
	"after_entry" bigint DEFAULT NULL, /* Option < i64 > */
	"limit" INT DEFAULT 100 /* Option < i32 > */
) RETURNS TABLE (
	"entry_id" bigint,  /* i64 */
	"at" timestamp with time zone,  /* TimestampWithTimeZone */
	"kind" TEXT,  /* String */
	"amount" NUMERIC,  /* AnyNumeric */
	"balance_after" NUMERIC,  /* Option < AnyNumeric > */
	"reference" TEXT,  /* Option < String > */
	"posting_id" uuid,  /* Uuid */
	"event_id" uuid,  /* Option < Uuid > */
	"event_name" TEXT,  /* Option < String > */
	"transaction_id" uuid,  /* Option < Uuid > */
	"transaction_name" TEXT,  /* Option < String > */
	"counterparty" TEXT,  /* Option < String > */
	"lien_id" uuid  /* Option < Uuid > */
)
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_account_statement_wrapper';

CREATE  FUNCTION "cte_balance_at"(
	"account_id" TEXT, /* Option < String > */
	"currency" TEXT, /* Option < String > */
	"at" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS NUMERIC /* AnyNumeric */
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_balance_at_wrapper';

CREATE  FUNCTION "ctel_create_lien"(
	"event_id" uuid, /* Option < Uuid > */
	"account_id" TEXT, /* Option < String > */
	"amount" NUMERIC, /* Option < AnyNumeric > */
	"currency" TEXT, /* Option < String > */
	"expires_at" timestamp with time zone DEFAULT NULL, /* Option < TimestampWithTimeZone > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"idempotency_key" TEXT DEFAULT NULL /* Option < String > */
) RETURNS uuid /* Uuid */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ctel_create_lien_keyed_wrapper';

REVOKE ALL ON FUNCTION
    cte_ctel.cte_account_statement(text, text, timestamptz, timestamptz, bigint, int),
    cte_ctel.cte_balance_at(text, text, timestamptz),
    cte_ctel.ctel_create_lien(uuid, text, numeric, text, timestamptz, jsonb, text),
    cte_ctel.ctel_capture_lien(uuid, text, numeric, text, boolean),
    cte_ctel.cte_reverse_event(uuid, text, numeric, text),
    cte_ctel.cte_add_currency(text, text),
    cte_ctel.cte_set_limits(text, text, numeric),
    cte_ctel.cte_freeze_account(text, text),
    cte_ctel.cte_unfreeze_account(text, text),
    cte_ctel.cte_close_account(text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    cte_ctel.cte_account_statement(text, text, timestamptz, timestamptz, bigint, int),
    cte_ctel.cte_balance_at(text, text, timestamptz)
TO cte_reader;
GRANT EXECUTE ON FUNCTION
    cte_ctel.ctel_create_lien(uuid, text, numeric, text, timestamptz, jsonb, text),
    cte_ctel.ctel_capture_lien(uuid, text, numeric, text, boolean),
    cte_ctel.cte_reverse_event(uuid, text, numeric, text),
    cte_ctel.cte_add_currency(text, text)
TO cte_operator;
GRANT EXECUTE ON FUNCTION
    cte_ctel.cte_set_limits(text, text, numeric),
    cte_ctel.cte_freeze_account(text, text),
    cte_ctel.cte_unfreeze_account(text, text),
    cte_ctel.cte_close_account(text, text)
TO cte_admin;

-- Dry runs, scheduled starts, pictures (issue 15).
ALTER TABLE cte_ctel.cte_events ADD COLUMN not_before timestamptz;
CREATE INDEX cte_events_scheduled_idx ON cte_ctel.cte_events (not_before)
    WHERE status = 'created' AND not_before IS NOT NULL;
CREATE OR REPLACE VIEW cte_ctel.cte_stats AS
WITH open_events AS (
    SELECT e.status, count(*) AS events, min(coalesce(e.started_at, e.created_at)) AS oldest,
           count(*) FILTER (WHERE e.deadline < pg_catalog.statement_timestamp()
                              AND e.status IN ('created', 'waiting')) AS overdue
      FROM cte_ctel.cte_events e
     WHERE e.status IN ('created', 'waiting')
     GROUP BY e.status
    UNION ALL
    SELECT e.status, count(*), min(coalesce(e.started_at, e.created_at)), 0
      FROM cte_ctel.cte_events e
     WHERE e.status IN ('compensating', 'failed')
     GROUP BY e.status
),
-- External steps asked to compensate whose event waits for the report (under a failed event
-- the step stays compensating, for an operator: counted there).
in_doubt AS (
    SELECT t.compensation_requested_at
      FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE t.compensation_requested_at IS NOT NULL AND e.status = 'compensating'
),
statuses (status) AS (VALUES ('created'), ('waiting'), ('compensating'), ('failed')),
open_liens AS (
    SELECT l.currency, count(*) AS liens, sum(l.amount) AS amount,
           count(*) FILTER (WHERE l.status = 'active'
                              AND l.expires_at <= pg_catalog.statement_timestamp()) AS overdue
      FROM cte_ctel.cte_liens l
     WHERE l.status IN ('pending', 'active')
     GROUP BY l.currency
)
SELECT 'events_open'::text AS metric, s.status, NULL::text AS currency,
       coalesce(o.events, 0)::numeric AS value
  FROM statuses s LEFT JOIN open_events o USING (status)
UNION ALL
SELECT 'events_open_oldest_seconds', o.status, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - o.oldest), 3)
  FROM open_events o
UNION ALL
SELECT 'events_overdue', NULL, NULL, coalesce(sum(o.overdue), 0) FROM open_events o
UNION ALL
SELECT 'events_scheduled', NULL, NULL, count(*)
  FROM cte_ctel.cte_events e WHERE e.status = 'created' AND e.not_before IS NOT NULL
UNION ALL
SELECT 'events_scheduled_late', NULL, NULL, count(*)
  FROM cte_ctel.cte_events e
 WHERE e.status = 'created' AND e.not_before < pg_catalog.statement_timestamp()
UNION ALL
SELECT 'steps_in_doubt', NULL, NULL, count(*) FROM in_doubt
UNION ALL
SELECT 'steps_in_doubt_oldest_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - min(d.compensation_requested_at)), 3)
  FROM in_doubt d HAVING count(*) > 0
UNION ALL
SELECT 'retries_overdue', NULL, NULL, count(*)
  FROM cte_ctel.cte_transactions t WHERE t.next_attempt_at < pg_catalog.statement_timestamp()
UNION ALL
SELECT 'liens_open', NULL, l.currency, l.liens FROM open_liens l
UNION ALL
SELECT 'liens_open_amount', NULL, l.currency, l.amount FROM open_liens l
UNION ALL
SELECT 'liens_overdue', NULL, NULL, coalesce(sum(l.overdue), 0) FROM open_liens l
UNION ALL
SELECT 'worker_running', NULL, NULL, count(*)
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_type = 'cte_ctel maintenance' AND a.datname = pg_catalog.current_database()
UNION ALL
SELECT 'worker_last_pass_age_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - w.last_pass_at), 3)
  FROM cte_ctel.cte_worker_state w
UNION ALL
SELECT 'worker_last_pass_duration_seconds', NULL, NULL, w.last_pass_ms / 1000.0
  FROM cte_ctel.cte_worker_state w
UNION ALL
SELECT 'worker_last_failure_age_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - w.last_failure_at), 3)
  FROM cte_ctel.cte_worker_state w WHERE w.last_failure_at IS NOT NULL
UNION ALL
SELECT 'feed_backlog', NULL, NULL, count(*) FROM cte_ctel.cte_change_outbox
UNION ALL
SELECT 'feed_backlog_oldest_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - min(b.at)), 3)
  FROM cte_ctel.cte_change_outbox b HAVING count(*) > 0
UNION ALL
SELECT 'feed_position', NULL, NULL, coalesce(max(c.position), 0) FROM cte_ctel.cte_change_log c
UNION ALL
SELECT 'journal_last_entry_id', NULL, NULL, coalesce(max(j.id), 0) FROM cte_ctel.cte_entries j;

DROP FUNCTION cte_ctel.cte_start_event(uuid);
CREATE  FUNCTION "cte_dry_run"(
	"event_id" uuid, /* Option < Uuid > */
	"fail_at" TEXT DEFAULT NULL /* Option < String > */
) RETURNS jsonb /* JsonB */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_dry_run_wrapper';

CREATE  FUNCTION "cte_event_graph"(
	"event_id" uuid, /* Option < Uuid > */
	"format" TEXT DEFAULT 'mermaid' /* Option < String > */
) RETURNS TEXT /* String */
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_event_graph_wrapper';

CREATE  FUNCTION "cte_start_event"(
	"event_id" uuid, /* Option < Uuid > */
	"not_before" timestamp with time zone DEFAULT NULL /* Option < TimestampWithTimeZone > */
) RETURNS TEXT /* String */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_start_event_at_wrapper';

REVOKE ALL ON FUNCTION cte_ctel.cte_start_event(uuid, timestamptz), cte_ctel.cte_dry_run(uuid, text),
    cte_ctel.cte_event_graph(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_event_graph(uuid, text) TO cte_reader;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_start_event(uuid, timestamptz), cte_ctel.cte_dry_run(uuid, text)
    TO cte_operator;

-- The journal's hash chains (chains.sql): a link on each new wallet entry, a head on each
-- balance; the entries written before 0.2.0 get their links computed here, kept beside the
-- journal (which refuses UPDATE), in each wallet's order.
ALTER TABLE cte_ctel.cte_entries ADD COLUMN link bytea;
ALTER TABLE cte_ctel.cte_balances ADD COLUMN chain_head bytea;
ALTER TABLE cte_ctel.cte_balances ADD COLUMN last_entry_at timestamptz;
CREATE TABLE cte_ctel.cte_entry_links (
    entry_id bigint PRIMARY KEY,
    link     bytea NOT NULL CHECK (octet_length(link) = 32)
);
COMMENT ON TABLE cte_ctel.cte_entry_links IS
    'Hash-chain links of the entries written before 0.2.0 (later entries carry their own).';

-- One field of the canonical text, unambiguously: its length in bytes, a colon and the bytes;
-- '~' for NULL (so NULL and '' differ, and no value can forge the next field).
CREATE FUNCTION cte_ctel.cte_chain_field(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN value IS NULL THEN '~' ELSE octet_length(value)::text || ':' || value END
$$;
COMMENT ON FUNCTION cte_ctel.cte_chain_field(text) IS
    'One length-prefixed field of a posting''s canonical text (''~'' for NULL).';

-- Every entry of the posting, in id order, with every column that says what it moved and why:
-- an entry added to a posting, removed from it or changed in any of these changes the text.
CREATE FUNCTION cte_ctel.cte_posting_canonical(posting uuid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'cte_ctel/2' || E'\n' || posting::text || E'\n'
           || string_agg(cte_ctel.cte_chain_field(account_id) || cte_ctel.cte_chain_field(kind)
                         || cte_ctel.cte_chain_field(currency)
                         || cte_ctel.cte_chain_field(amount::text)
                         || cte_ctel.cte_chain_field(reference::text)
                         || cte_ctel.cte_chain_field(transaction_id::text)
                         || cte_ctel.cte_chain_field(lien_id::text)
                         || cte_ctel.cte_chain_field(
                                ((extract(epoch FROM created_at) * 1000000)::bigint)::text)
                         || E'\n', '' ORDER BY id)
      FROM cte_ctel.cte_entries WHERE posting_id = posting
$$;
COMMENT ON FUNCTION cte_ctel.cte_posting_canonical(uuid) IS
    'The canonical text of a posting that its entries'' hash-chain links cover.';

CREATE FUNCTION cte_ctel.cte_entry_link(previous bytea, posting uuid, account text,
                                        balance_after numeric) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(previous || pg_catalog.convert_to(
               cte_ctel.cte_posting_canonical(posting) || cte_ctel.cte_chain_field(account)
               || cte_ctel.cte_chain_field(balance_after::text), 'UTF8'))
$$;
COMMENT ON FUNCTION cte_ctel.cte_entry_link(bytea, uuid, text, numeric) IS
    'The hash-chain link of a wallet entry, from the link before it.';

DO $chains$
DECLARE
    entry record;
    previous bytea;
    wallet text := NULL;
BEGIN
    FOR entry IN SELECT id, account_id, currency, posting_id, balance_after
                   FROM cte_ctel.cte_entries WHERE balance_after IS NOT NULL
                  ORDER BY account_id COLLATE "C", currency COLLATE "C", created_at, id LOOP
        IF wallet IS DISTINCT FROM entry.account_id || E'\t' || entry.currency THEN
            previous := pg_catalog.decode(repeat('00', 32), 'hex');
            wallet := entry.account_id || E'\t' || entry.currency;
        END IF;
        previous := cte_ctel.cte_entry_link(previous, entry.posting_id, entry.account_id,
                                            entry.balance_after);
        INSERT INTO cte_ctel.cte_entry_links (entry_id, link) VALUES (entry.id, previous);
    END LOOP;
END
$chains$;
UPDATE cte_ctel.cte_balances b SET chain_head = h.link
  FROM (SELECT DISTINCT ON (j.account_id, j.currency) j.account_id, j.currency, m.link
          FROM cte_ctel.cte_entries j JOIN cte_ctel.cte_entry_links m ON m.entry_id = j.id
         ORDER BY j.account_id, j.currency, j.created_at DESC, j.id DESC) h
 WHERE b.account_id = h.account_id AND b.currency = h.currency;
-- A wallet's next entry is never stamped before its last one.
UPDATE cte_ctel.cte_balances b SET last_entry_at = l.at
  FROM (SELECT account_id, currency, max(created_at) AS at FROM cte_ctel.cte_entries
         WHERE balance_after IS NOT NULL GROUP BY 1, 2) l
 WHERE b.account_id = l.account_id AND b.currency = l.currency;
CREATE TRIGGER cte_entry_links_append_only
    BEFORE UPDATE OR DELETE ON cte_ctel.cte_entry_links
    FOR EACH ROW EXECUTE FUNCTION cte_ctel.cte_journal_append_only();
CREATE TRIGGER cte_entry_links_no_truncate
    BEFORE TRUNCATE ON cte_ctel.cte_entry_links
    FOR EACH STATEMENT EXECUTE FUNCTION cte_ctel.cte_journal_append_only();
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_entry_links', '');
REVOKE ALL ON cte_ctel.cte_entry_links FROM PUBLIC;
GRANT SELECT ON cte_ctel.cte_entry_links TO cte_reader;
REVOKE ALL ON FUNCTION cte_ctel.cte_posting_canonical(uuid),
    cte_ctel.cte_entry_link(bytea, uuid, text, numeric), cte_ctel.cte_chain_field(text) FROM PUBLIC;

CREATE  FUNCTION "cte_verify_chains"(
	"after" bigint DEFAULT 0, /* Option < i64 > */
	"limit" INT DEFAULT 10000 /* Option < i32 > */
) RETURNS TABLE (
	"entries_checked" bigint,  /* i64 */
	"last_entry_id" bigint,  /* Option < i64 > */
	"broken_entry_id" bigint  /* Option < i64 > */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_verify_chains_wrapper';

CREATE  FUNCTION "cte_ledger_digest"() RETURNS TEXT /* String */
STRICT VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_ledger_digest_wrapper';

CREATE  FUNCTION "cte_verify_digest"(
	"digest" TEXT /* Option < String > */
) RETURNS bool /* bool */
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cte_verify_digest_wrapper';

REVOKE ALL ON FUNCTION cte_ctel.cte_verify_chains(bigint, int), cte_ctel.cte_ledger_digest(),
    cte_ctel.cte_verify_digest(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_verify_chains(bigint, int), cte_ctel.cte_verify_digest(text)
    TO cte_reader;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_ledger_digest() TO cte_admin;

CREATE OR REPLACE FUNCTION cte_ctel.cte_verify_ledger()
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
