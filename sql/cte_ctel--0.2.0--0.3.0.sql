-- cte_ctel 0.2.0 -> 0.3.0, in place (ALTER EXTENSION cte_ctel UPDATE). Frozen once released.
--
-- Most of 0.3.0 is behaviour of the library (replays and conflicts of every keyed write, refunds
-- newest first, scheduled starts re-read under the event's lock, executors' rules, a second
-- worker for the feed, statements over (from, to]); its SQL adds cte_run_event, an argument of
-- cte_reverse_event (legs: the parts of a partial refund), named feed consumers, the reads of
-- SPEC §11 (cte_steps_awaiting, cte_find_events, cte_statement_summary), bulk transfers
-- (cte_transfers), events' creators (who may cancel them) and rows of cte_stats
-- (feed_worker_running, consumer_lag). Stored rows are not rewritten: keys stored by 0.2.0 (event and lien keys,
-- references of steps, refunds and captures) keep meaning what they named, and a replay of a
-- 0.2.0 request under its key returns what 0.2.0 made.
\echo Use "ALTER EXTENSION cte_ctel UPDATE TO '0.3.0'" to load this file. \quit

-- Leases on steps claimed by the application's workers (SPEC §10; sql/leases.sql).
ALTER TABLE cte_ctel.cte_transactions ADD COLUMN lease_worker text;
ALTER TABLE cte_ctel.cte_transactions ADD COLUMN lease_token uuid;
ALTER TABLE cte_ctel.cte_transactions ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE cte_ctel.cte_transactions ADD CONSTRAINT cte_transactions_lease_check
    CHECK ((lease_token IS NULL) = (lease_expires_at IS NULL)
           AND (lease_token IS NULL) = (lease_worker IS NULL));

CREATE FUNCTION cte_ctel.cte_run_event(
    name text, steps jsonb, idempotency_key text DEFAULT NULL,
    timeout interval DEFAULT '5 minutes', metadata jsonb DEFAULT NULL,
    not_before timestamptz DEFAULT NULL)
RETURNS TABLE (event_id uuid, status text, replayed boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    steps_max CONSTANT int := 1000; -- limits.rs EVENT_STEPS_MAX
    run_id uuid;
    step jsonb;
    same boolean;
BEGIN
    IF steps IS NULL THEN
        RAISE EXCEPTION 'steps must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF pg_catalog.jsonb_typeof(steps) <> 'array' OR pg_catalog.jsonb_array_length(steps) = 0 THEN
        RAISE EXCEPTION 'payload of cte_run_event is not valid: steps must be a non-empty array'
            USING ERRCODE = 'L0027', DETAIL = 'reason: payload_invalid';
    END IF;
    IF pg_catalog.jsonb_array_length(steps) > steps_max THEN
        RAISE EXCEPTION 'steps per event is %; the limit is %',
            pg_catalog.jsonb_array_length(steps), steps_max
            USING ERRCODE = 'L0013', DETAIL = 'reason: limit_exceeded';
    END IF;
    FOR step IN SELECT s FROM pg_catalog.jsonb_array_elements(steps) AS s LOOP
        IF pg_catalog.jsonb_typeof(step) <> 'object'
           OR pg_catalog.jsonb_typeof(step -> 'name') IS DISTINCT FROM 'string'
           OR pg_catalog.jsonb_typeof(step -> 'type') IS DISTINCT FROM 'string'
           OR NOT step ? 'payload'
           OR pg_catalog.jsonb_typeof(step -> 'description') NOT IN ('string', 'null')
           OR (pg_catalog.jsonb_typeof(step -> 'max_attempts') = 'number'
               AND (step ->> 'max_attempts') !~ '^[0-9]{1,9}$')
           OR pg_catalog.jsonb_typeof(step -> 'max_attempts') NOT IN ('number', 'null')
           OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(step) AS k
                       WHERE k NOT IN ('name', 'type', 'payload', 'description', 'max_attempts'))
        THEN
            RAISE EXCEPTION 'payload of cte_run_event is not valid: step % must be an object with '
                'string "name" and "type", a "payload", and optionally "description" and '
                '"max_attempts" (a whole number)', pg_catalog.left(step::text, 200)
                USING ERRCODE = 'L0027', DETAIL = 'reason: payload_invalid';
        END IF;
    END LOOP;

    run_id := cte_ctel.cte_create_event(name, NULL, timeout, metadata, idempotency_key);
    -- The event's row, locked before its steps are looked at: racing calls that all found it
    -- without steps (made beforehand by cte_create_event under the key) take turns here, and
    -- only the first adds them; the others then see them (a replay or a conflict).
    PERFORM 1 FROM cte_ctel.cte_events e WHERE e.id = run_id FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM cte_ctel.cte_transactions t WHERE t.event_id = run_id) THEN
        FOR step IN SELECT s FROM pg_catalog.jsonb_array_elements(steps) AS s LOOP
            PERFORM cte_ctel.cte_add_transaction(run_id, step ->> 'name', step ->> 'type',
                step -> 'payload', step ->> 'description', NULL,
                (step ->> 'max_attempts')::int);
        END LOOP;
        RETURN QUERY
            SELECT run_id, cte_ctel.cte_start_event(run_id, cte_run_event.not_before), false;
        RETURN;
    END IF;

    -- The key names an event with steps: this is a replay if it is the same request, step by
    -- step in order. An omitted max_attempts stands for whatever default the first call took.
    SELECT count(*) = pg_catalog.jsonb_array_length(steps)
           AND count(*) = (SELECT count(*) FROM cte_ctel.cte_transactions t
                            WHERE t.event_id = run_id)
           AND COALESCE(bool_and(
                   t.name = s ->> 'name' AND t.type = s ->> 'type' AND t.payload = s -> 'payload'
                   AND t.description IS NOT DISTINCT FROM s ->> 'description'
                   AND (pg_catalog.jsonb_typeof(s -> 'max_attempts') IS DISTINCT FROM 'number'
                        OR t.max_attempts = (s ->> 'max_attempts')::int)), false)
      INTO same
      FROM pg_catalog.jsonb_array_elements(steps) WITH ORDINALITY AS e(s, n)
      JOIN (SELECT x.name, x.type, x.payload, x.description, x.max_attempts,
                   pg_catalog.row_number() OVER (ORDER BY x."order") AS n
              FROM cte_ctel.cte_transactions x WHERE x.event_id = run_id) t ON t.n = e.n;
    IF NOT same THEN
        RAISE EXCEPTION 'idempotency key "%" already names event % with other steps, not this '
            'request', idempotency_key, run_id
            USING ERRCODE = 'L0028', DETAIL = 'reason: idempotency_conflict',
                  HINT = pg_catalog.format('the key names event %s; a replay must repeat its '
                      'request exactly, and a new request takes a new key', run_id);
    END IF;
    RETURN QUERY SELECT e.id, e.status::text, true FROM cte_ctel.cte_events e WHERE e.id = run_id;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_run_event(text, jsonb, text, interval, jsonb, timestamptz) IS
    'Creates an event, adds its steps and starts it, all or nothing, under one idempotency key; the same key and request again returns the event (replayed = true).';

REVOKE ALL ON FUNCTION cte_ctel.cte_run_event(text, jsonb, text, interval, jsonb, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_run_event(text, jsonb, text, interval, jsonb, timestamptz)
    TO cte_operator;

-- The feed carries the changed event's metadata (SPEC §11): cte_changes gains a column.
-- 0.2.0's symbol stays in the library for the time between the package upgrade and this script.
DROP FUNCTION cte_ctel.cte_changes(bigint, int);
CREATE FUNCTION cte_ctel."cte_changes"(
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
	"reason" TEXT,
	"metadata" jsonb
)
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_changes_with_metadata_wrapper';
REVOKE ALL ON FUNCTION cte_ctel.cte_changes(bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_changes(bigint, int) TO cte_reader;

-- Named consumers of the feed (sql/consumers.sql).
-- Named consumers of the change feed (SPEC §10, 0.3.0): the extension keeps each consumer's
-- cursor, so an application needs no table of its own to follow the feed exactly once. A
-- consumer reads the changes after its position (the same rows again until it acknowledges
-- them) and acknowledges a position in its own transaction, so that its processing and the move
-- of its cursor commit together. The cursor only moves forward.
CREATE TABLE cte_ctel.cte_consumers (
    name         cte_ctel.cte_name PRIMARY KEY,
    -- The last position acknowledged: cte_consumer_next returns the changes after it.
    position     bigint NOT NULL CHECK (position >= 0),
    -- What cte_create_consumer was asked to start after (NULL: the newest position then), for
    -- telling its replay from a conflicting request.
    start_after  bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    acked_at     timestamptz
);
COMMENT ON TABLE cte_ctel.cte_consumers IS
    'Named consumers of the change feed and their cursors (the last position each acknowledged).';
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_consumers', '');

-- The newest position the feed has given (0 before the first change).
CREATE FUNCTION cte_ctel.cte_feed_head() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT position + cardinality(kinds) - 1 FROM cte_ctel.cte_change_log
                      ORDER BY position DESC LIMIT 1), 0)
$$;
COMMENT ON FUNCTION cte_ctel.cte_feed_head() IS
    'The newest position of the change feed (0 before the first change).';

CREATE FUNCTION cte_ctel.cte_create_consumer(name text, start_after bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    head bigint := cte_ctel.cte_feed_head();
    held cte_ctel.cte_consumers;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF pg_catalog.btrim(name) = '' OR pg_catalog.octet_length(name) > 128 THEN
        RAISE EXCEPTION 'consumer name % is not valid: 1 to 128 bytes, not blank',
            pg_catalog.quote_literal(pg_catalog.left(name, 140))
            USING ERRCODE = 'L0008', DETAIL = 'reason: identifier_invalid';
    END IF;
    IF start_after IS NOT NULL AND (start_after < 0 OR start_after > head) THEN
        RAISE EXCEPTION 'start_after is %; it must be between 0 and %, the newest position',
            start_after, head USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    INSERT INTO cte_ctel.cte_consumers AS c (name, position, start_after)
    VALUES (cte_create_consumer.name, COALESCE(cte_create_consumer.start_after, head),
            cte_create_consumer.start_after)
    ON CONFLICT ON CONSTRAINT cte_consumers_pkey DO NOTHING;
    SELECT * INTO held FROM cte_ctel.cte_consumers c WHERE c.name = cte_create_consumer.name;
    -- Created again: a replay returns its position now; another start is a conflict.
    IF cte_create_consumer.start_after IS NOT NULL
       AND held.start_after IS DISTINCT FROM cte_create_consumer.start_after THEN
        RAISE EXCEPTION 'idempotency key "%" already names a consumer started after %, not after %',
            held.name, COALESCE(held.start_after::text, 'the newest position then'),
            cte_create_consumer.start_after
            USING ERRCODE = 'L0028', DETAIL = 'reason: idempotency_conflict',
                  HINT = pg_catalog.format('the key names consumer %s; drop it to start it again',
                                           held.name);
    END IF;
    RETURN held.position;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_create_consumer(text, bigint) IS
    'Creates a named consumer of the change feed starting after start_after (NULL: the newest position now); creating it again returns its position.';

CREATE FUNCTION cte_ctel.cte_drop_consumer(name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    DELETE FROM cte_ctel.cte_consumers c WHERE c.name = cte_drop_consumer.name;
    RETURN FOUND;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_drop_consumer(text) IS
    'Drops a named consumer; returns whether it existed (dropping it again is a replay).';

-- The consumer's row, locked for the rest of the caller's transaction so that two instances of
-- one consumer take turns; refused if there is none.
CREATE FUNCTION cte_ctel.cte_consumer_position(name text, lock boolean) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    cursor_at bigint;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF lock THEN
        SELECT c.position INTO cursor_at FROM cte_ctel.cte_consumers c
         WHERE c.name = cte_consumer_position.name FOR UPDATE;
    ELSE
        SELECT c.position INTO cursor_at FROM cte_ctel.cte_consumers c
         WHERE c.name = cte_consumer_position.name;
    END IF;
    IF cursor_at IS NULL THEN
        RAISE EXCEPTION 'consumer % does not exist', pg_catalog.quote_literal(name)
            USING ERRCODE = 'L0008', DETAIL = 'reason: identifier_invalid',
                  HINT = 'create it with cte_create_consumer';
    END IF;
    RETURN cursor_at;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_consumer_position(text, boolean) IS
    'A named consumer''s position (the last it acknowledged), its row locked if asked.';

CREATE FUNCTION cte_ctel.cte_consumer_next(name text, "limit" int DEFAULT 100)
RETURNS TABLE ("position" bigint, at timestamptz, kind text, event_id uuid, event_name text,
               transaction_id uuid, transaction_type text, lien_id uuid, account_id text,
               old_status text, new_status text, amount numeric, currency text,
               reference text, actor text, reason text, metadata jsonb)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM cte_ctel.cte_changes(cte_ctel.cte_consumer_position($1, false), $2)
$$;
COMMENT ON FUNCTION cte_ctel.cte_consumer_next(text, int) IS
    'The changes of the feed after a named consumer''s position (the same rows again until it acknowledges them).';

CREATE FUNCTION cte_ctel.cte_consumer_ack(name text, "position" bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    cursor_at bigint := cte_ctel.cte_consumer_position(cte_consumer_ack.name, true);
    head bigint := cte_ctel.cte_feed_head();
BEGIN
    IF cte_consumer_ack."position" IS NULL THEN
        RAISE EXCEPTION 'position must not be NULL' USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    -- Past the newest position would skip changes not yet given one.
    IF cte_consumer_ack."position" > head THEN
        RAISE EXCEPTION 'position is %; it must be at most %, the newest position',
            cte_consumer_ack."position", head
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    -- Forward only: an older position (a late or repeated acknowledgement) changes nothing.
    IF cte_consumer_ack."position" > cursor_at THEN
        UPDATE cte_ctel.cte_consumers c SET position = cte_consumer_ack."position",
                                            acked_at = pg_catalog.statement_timestamp()
         WHERE c.name = cte_consumer_ack.name;
        cursor_at := cte_consumer_ack."position";
    END IF;
    RETURN cursor_at;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_consumer_ack(text, bigint) IS
    'Moves a named consumer''s cursor forward to position (an older one changes nothing), in the caller''s transaction; returns its position.';

-- Reads of SPEC §11 (sql/reads.sql).
-- Reads a payments team expects of a ledger (SPEC §11, 0.3.0): the steps waiting on the outside
-- world, events found by their metadata, and a statement's summary that agrees with
-- cte_balance_at whatever the boundary stamps.

-- Every step waiting for a report: to be executed (an external step, status waiting, no retry
-- scheduled) or compensated (asked, status compensating), in doubt included.
CREATE VIEW cte_ctel.cte_steps_awaiting AS
    SELECT t.id AS transaction_id, t.event_id, e.name AS event_name, t.name, t.type,
           CASE WHEN t.status = 'waiting' THEN 'execute' ELSE 'compensate' END AS phase,
           t.status, e.status AS event_status,
           CASE WHEN t.status = 'waiting' THEN COALESCE(e.started_at, e.created_at)
                ELSE t.compensation_requested_at END AS since,
           -- Its lease, if a worker of the application claimed it (cte_claim_steps).
           t.lease_worker, t.lease_expires_at
      FROM cte_ctel.cte_transactions t
      JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE (t.status = 'waiting' AND t.next_attempt_at IS NULL)
        OR (t.status = 'compensating' AND t.compensation_requested_at IS NOT NULL);
COMMENT ON VIEW cte_ctel.cte_steps_awaiting IS
    'Every step waiting for the application: to be executed (phase execute) or compensated (phase compensate, in doubt included), with its event and since when.';

-- Events by their metadata: containment (@>) served by a GIN index.
CREATE INDEX cte_events_metadata_idx ON cte_ctel.cte_events
    USING gin (metadata jsonb_path_ops) WHERE metadata IS NOT NULL;

CREATE FUNCTION cte_ctel.cte_find_events(filter jsonb, after uuid DEFAULT NULL,
                                         "limit" int DEFAULT 100)
RETURNS TABLE (id uuid, name text, status text, metadata jsonb, created_at timestamptz,
               finished_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF filter IS NULL OR "limit" IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN filter IS NULL THEN 'filter' ELSE 'limit' END
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF pg_catalog.jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'filter % is not valid: it must be a JSON object', pg_catalog.left(filter::text, 100)
            USING ERRCODE = 'L0011', DETAIL = 'reason: metadata_invalid';
    END IF;
    IF "limit" < 1 OR "limit" > 10000 THEN
        RAISE EXCEPTION 'limit is %; it must be between 1 and 10000', "limit"
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    RETURN QUERY
        SELECT e.id, e.name::text, e.status::text, e.metadata::jsonb, e.created_at, e.finished_at
          FROM cte_ctel.cte_events e
         WHERE e.metadata IS NOT NULL AND e.metadata::jsonb @> filter
           AND (after IS NULL OR e.id > after)
           -- 0.3.0: read tenancy (sql/tenancy.sql).
           AND ((SELECT cte_ctel.cte_reads_all()) OR cte_ctel.cte_may_read_event(e.id))
         ORDER BY e.id
         LIMIT "limit";
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_find_events(jsonb, uuid, int) IS
    'Events whose metadata contains filter (@>), in id order after the id given; a page of at most limit.';

-- The statement's range is (from, to]: an entry stamped exactly at `from` is in the opening
-- balance, one stamped at `to` in the closing one, as cte_balance_at counts them.
CREATE FUNCTION cte_ctel.cte_statement_summary(account_id text, currency text,
                                               "from" timestamptz, "to" timestamptz)
RETURNS TABLE (opening numeric, closing numeric, debits numeric, credits numeric,
               entries bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    zero numeric;
BEGIN
    IF "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN "from" IS NULL THEN 'from' ELSE 'to' END
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF "to" < "from" THEN
        RAISE EXCEPTION 'to is %; it must not be before from, %', "to", "from"
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    -- cte_balance_at checks the account and currency, with its own refusals.
    opening := cte_ctel.cte_balance_at(account_id, currency, "from");
    closing := cte_ctel.cte_balance_at(account_id, currency, "to");
    zero := opening - opening;
    SELECT COALESCE(-sum(j.amount) FILTER (WHERE j.amount < 0), zero),
           COALESCE(sum(j.amount) FILTER (WHERE j.amount > 0), zero),
           count(*)
      INTO debits, credits, entries
      FROM cte_ctel.cte_entries j
     WHERE j.account_id = cte_statement_summary.account_id
       AND j.currency = cte_statement_summary.currency
       AND j.created_at > "from" AND j.created_at <= "to";
    ASSERT closing - opening = credits - debits, 'a statement''s entries sum to closing - opening';
    RETURN NEXT;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_statement_summary(text, text, timestamptz, timestamptz) IS
    'An account''s statement over (from, to] in one currency: opening = cte_balance_at(from), closing = cte_balance_at(to), the debits and credits between and how many entries.';

-- cte_stats with the feed worker's and the consumers' rows (sql/stats.sql).
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
-- 0.3.0: the feed worker (sequencing, notifications, lien expiry) is a process of its own.
SELECT 'feed_worker_running', NULL, NULL, count(*)
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_type = 'cte_ctel feed' AND a.datname = pg_catalog.current_database()
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
SELECT 'journal_last_entry_id', NULL, NULL, coalesce(max(j.id), 0) FROM cte_ctel.cte_entries j
UNION ALL
-- 0.3.0: each named consumer's lag behind the feed, in positions (never negative).
SELECT 'consumer_lag', c.name::text, NULL, greatest(h.head - c.position, 0)
  FROM cte_ctel.cte_consumers c, (SELECT cte_ctel.cte_feed_head() AS head) h;

COMMENT ON VIEW cte_ctel.cte_stats IS
    'Monitoring gauges, one row per metric and label (docs/operations.md lists them with alerts).';

-- cte_reverse_event gains legs (the parts of a partial refund); 0.2.0's four-argument symbol
-- stays in the library for the time between the package upgrade and this script.
DROP FUNCTION cte_ctel.cte_reverse_event(uuid, text, numeric, text);
CREATE FUNCTION cte_ctel."cte_reverse_event"(
	"event_id" uuid,
	"reason" TEXT,
	"amount" NUMERIC DEFAULT NULL,
	"reference" TEXT DEFAULT NULL,
	"legs" jsonb DEFAULT NULL
) RETURNS uuid
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_reverse_event_legs_wrapper';
REVOKE ALL ON FUNCTION cte_ctel.cte_reverse_event(uuid, text, numeric, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_reverse_event(uuid, text, numeric, text, jsonb) TO cte_operator;

REVOKE ALL ON FUNCTION cte_ctel.cte_feed_head(), cte_ctel.cte_create_consumer(text, bigint),
    cte_ctel.cte_drop_consumer(text), cte_ctel.cte_consumer_position(text, boolean),
    cte_ctel.cte_consumer_next(text, int), cte_ctel.cte_consumer_ack(text, bigint),
    cte_ctel.cte_find_events(jsonb, uuid, int),
    cte_ctel.cte_statement_summary(text, text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON cte_ctel.cte_consumers, cte_ctel.cte_steps_awaiting FROM PUBLIC;
GRANT SELECT ON cte_ctel.cte_consumers, cte_ctel.cte_steps_awaiting TO cte_reader;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_feed_head(), cte_ctel.cte_find_events(jsonb, uuid, int),
    cte_ctel.cte_statement_summary(text, text, timestamptz, timestamptz) TO cte_reader;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_create_consumer(text, bigint),
    cte_ctel.cte_drop_consumer(text), cte_ctel.cte_consumer_next(text, int),
    cte_ctel.cte_consumer_ack(text, bigint) TO cte_operator;

-- Cancel by the creator (SPEC §11): each event records the role that created it; events made
-- before 0.3.0 have none, and only an administrator cancels them, as before.
ALTER TABLE cte_ctel.cte_events ADD COLUMN created_by text;
CREATE FUNCTION cte_ctel."cte_caller"() RETURNS TEXT
STRICT VOLATILE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_caller_wrapper';
REVOKE ALL ON FUNCTION cte_ctel.cte_caller() FROM PUBLIC;
ALTER TABLE cte_ctel.cte_events ALTER COLUMN created_by SET DEFAULT cte_ctel.cte_caller();
-- Operators may cancel (their own events); administrators keep it through cte_operator.
REVOKE EXECUTE ON FUNCTION cte_ctel.cte_cancel_event(uuid, text) FROM cte_admin;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_cancel_event(uuid, text) TO cte_operator;

-- Metadata on transfers and in statements (SPEC §11, 0.3.0): cte_transfer takes the event's
-- metadata, and a statement shows the metadata of the event that posted each entry.
DROP FUNCTION cte_ctel.cte_transfer(text, text, numeric, text, text);
CREATE FUNCTION cte_ctel."cte_transfer"(
	"source" TEXT,
	"destination" TEXT,
	"amount" NUMERIC,
	"currency" TEXT,
	"reference" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL
) RETURNS uuid
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_transfer_with_metadata_wrapper';
REVOKE ALL ON FUNCTION cte_ctel.cte_transfer(text, text, numeric, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_transfer(text, text, numeric, text, text, jsonb)
    TO cte_operator;

DROP FUNCTION cte_ctel.cte_account_statement(text, text, timestamptz, timestamptz, bigint, int);
CREATE FUNCTION cte_ctel."cte_account_statement"(
	"account_id" TEXT,
	"currency" TEXT,
	"from" timestamp with time zone DEFAULT NULL,
	"to" timestamp with time zone DEFAULT NULL,
	"after_entry" bigint DEFAULT NULL,
	"limit" INT DEFAULT 100
) RETURNS TABLE (
	"entry_id" bigint,
	"at" timestamp with time zone,
	"kind" TEXT,
	"amount" NUMERIC,
	"balance_after" NUMERIC,
	"reference" TEXT,
	"posting_id" uuid,
	"event_id" uuid,
	"event_name" TEXT,
	"transaction_id" uuid,
	"transaction_name" TEXT,
	"counterparty" TEXT,
	"lien_id" uuid,
	"metadata" jsonb
)
STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_account_statement_with_metadata_wrapper';
REVOKE ALL ON FUNCTION cte_ctel.cte_account_statement(text, text, timestamptz, timestamptz, bigint, int)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_account_statement(text, text, timestamptz, timestamptz, bigint, int)
    TO cte_reader;

-- Bulk transfers (sql/bulk.sql).
-- cte_transfers (SPEC §11, 0.3.0): many transfers in one call and one transaction, each posted
-- or refused on its own, set-based inside (src/api/bulk.rs, src/driver/bulk.rs): every item
-- checked on its own, every reference claimed by one statement, every wallet locked once in the
-- global lock order, the items applied in memory in their order, then entries, balances,
-- events, steps and changes written with one statement each. A refused item keeps no key (sent
-- again, it is tried again); an item whose reference already names the same transfer is a
-- replay (its original event, status 'replayed'). A try-again error (40001, 40P01) aborts the
-- whole call, which the caller sends again safely.
CREATE FUNCTION cte_ctel."cte_transfers"(
	"items" jsonb
) RETURNS TABLE (
	"item" INT,
	"event_id" uuid,
	"status" TEXT,
	"reason" TEXT
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_transfers_wrapper';
COMMENT ON FUNCTION cte_ctel.cte_transfers(jsonb) IS
    'Many transfers in one call: each item {source_account_id, destination_account_id, amount, currency, reference, metadata} posted, refused (with its reason) or replayed on its own.';
REVOKE ALL ON FUNCTION cte_ctel.cte_transfers(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_transfers(jsonb) TO cte_operator;

-- Refunds of a lien's capture (SPEC §9).
CREATE FUNCTION cte_ctel."cte_reverse_capture"(
	"capture_id" uuid,
	"reason" TEXT,
	"amount" NUMERIC DEFAULT NULL,
	"reference" TEXT DEFAULT NULL
) RETURNS uuid
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_reverse_capture_wrapper';
REVOKE ALL ON FUNCTION cte_ctel.cte_reverse_capture(uuid, text, numeric, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_reverse_capture(uuid, text, numeric, text) TO cte_operator;

-- Steps claimed by the application's workers, with leases (SPEC §10, 0.3.0). A worker asks for
-- steps of the types it hosts that wait to be executed (an external step waiting, no retry
-- scheduled) or compensated (asked to compensate); each goes to one worker at a time, for the
-- lease. A claim of the execute phase is an attempt (counted when the step started waiting);
-- a lease that runs out is, for the events worker, a try-again failure of that attempt: the
-- step waits for its retry and is then claimable again with attempt + 1, or fails for good at
-- its last attempt and its event compensates. A compensation's lease that runs out just makes
-- it claimable again. Reports carry the lease's token (cte_complete_transaction and the others);
-- a report under a lease that ran out or was taken over is refused (lease_expired, L0044).
CREATE FUNCTION cte_ctel.cte_claim_steps(types text[], worker text,
                                         lease interval DEFAULT '30 seconds',
                                         "limit" int DEFAULT 10)
RETURNS TABLE (transaction_id uuid, event_id uuid, type text, phase text, payload jsonb,
               result jsonb, attempt int, lease_token uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    candidate record;
    claimed int := 0;
    until timestamptz;
BEGIN
    IF types IS NULL OR worker IS NULL OR lease IS NULL OR "limit" IS NULL THEN
        RAISE EXCEPTION 'types, worker, lease and limit must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF pg_catalog.length(worker) NOT BETWEEN 1 AND 128 THEN
        RAISE EXCEPTION 'worker % is not valid: 1 to 128 characters', pg_catalog.quote_literal(pg_catalog.left(worker, 140))
            USING ERRCODE = 'L0008', DETAIL = 'reason: identifier_invalid';
    END IF;
    IF lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease is %; it must be between 1 second and 1 day', lease
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    IF "limit" < 1 OR "limit" > 1000 THEN
        RAISE EXCEPTION 'limit is %; it must be between 1 and 1000', "limit"
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    until := pg_catalog.clock_timestamp() + lease;
    FOR candidate IN
        SELECT t.id AS step_id, t.event_id AS event
          FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id
         WHERE t.type = ANY (types) AND t.lease_token IS NULL
           AND ((t.status = 'waiting' AND t.next_attempt_at IS NULL AND e.status = 'waiting')
                OR (t.status = 'compensating' AND t.compensation_requested_at IS NOT NULL
                    AND e.status = 'compensating'))
           -- 0.3.0: a role read tenancy limits claims only steps of events it may read.
           AND ((SELECT cte_ctel.cte_reads_all()) OR cte_ctel.cte_may_read_event(t.event_id))
         ORDER BY COALESCE(t.compensation_requested_at, e.started_at, e.created_at), t.id
         LIMIT "limit" * 4
    LOOP
        EXIT WHEN claimed >= "limit";
        -- The event's row first, then its step's: the one global lock order. An event another
        -- session holds (a drive, another claim) is skipped, never waited for.
        PERFORM 1 FROM cte_ctel.cte_events e WHERE e.id = candidate.event FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        UPDATE cte_ctel.cte_transactions t
           SET lease_worker = worker, lease_token = pg_catalog.gen_random_uuid(),
               lease_expires_at = until
         WHERE t.id = candidate.step_id AND t.lease_token IS NULL
           AND ((t.status = 'waiting' AND t.next_attempt_at IS NULL)
                OR (t.status = 'compensating' AND t.compensation_requested_at IS NOT NULL))
        RETURNING t.id, t.event_id, t.type,
                  CASE WHEN t.status = 'waiting' THEN 'execute' ELSE 'compensate' END,
                  t.payload, t.result, t.attempts, t.lease_token
          INTO transaction_id, event_id, type, phase, payload, result, attempt, lease_token;
        CONTINUE WHEN NOT FOUND;
        claimed := claimed + 1;
        RETURN NEXT;
    END LOOP;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_claim_steps(text[], text, interval, int) IS
    'Hands out steps of the given types waiting to be executed or compensated, each to one worker at a time, for the lease; reports carry the lease_token returned.';

CREATE FUNCTION cte_ctel.cte_extend_lease(transaction_id uuid, lease_token uuid,
                                          lease interval DEFAULT '30 seconds')
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    until timestamptz;
BEGIN
    IF transaction_id IS NULL OR lease_token IS NULL OR lease IS NULL THEN
        RAISE EXCEPTION 'transaction_id, lease_token and lease must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease is %; it must be between 1 second and 1 day', lease
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    -- 0.3.0: a role read tenancy limits acts on no step of an event it may not read, known or
    -- not (as the reports refuse it).
    IF NOT cte_ctel.cte_may_read_event((SELECT t.event_id FROM cte_ctel.cte_transactions t
                                        WHERE t.id = cte_extend_lease.transaction_id)) THEN
        RAISE EXCEPTION '"%" may not act on transaction %: read tenancy limits it to its own accounts',
                        cte_ctel.cte_caller(), transaction_id
            USING ERRCODE = '42501', DETAIL = 'reason: permission_denied',
                  HINT = 'a member of cte_tenant reads, and takes money out of, the accounts whose owner is a role it has the rights of (cte_set_account_owner), and acts on the events that created or touched them';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cte_ctel.cte_transactions t
                    WHERE t.id = cte_extend_lease.transaction_id) THEN
        RAISE EXCEPTION 'transaction % does not exist', transaction_id
            USING ERRCODE = 'L0025', DETAIL = 'reason: transaction_unknown';
    END IF;
    -- The event's row first (the global lock order), then the step's.
    PERFORM 1 FROM cte_ctel.cte_events e
     WHERE e.id = (SELECT t.event_id FROM cte_ctel.cte_transactions t
                    WHERE t.id = cte_extend_lease.transaction_id)
       FOR UPDATE;
    UPDATE cte_ctel.cte_transactions t
       SET lease_expires_at = pg_catalog.clock_timestamp() + lease
     WHERE t.id = cte_extend_lease.transaction_id AND t.lease_token = cte_extend_lease.lease_token
       AND t.lease_expires_at > pg_catalog.clock_timestamp()
    RETURNING t.lease_expires_at INTO until;
    IF until IS NULL THEN
        RAISE EXCEPTION 'the lease on transaction % does not hold: it has expired or was taken over',
            transaction_id USING ERRCODE = 'L0044', DETAIL = 'reason: lease_expired',
            HINT = 'claim the step again (cte_claim_steps); another worker may have taken it over';
    END IF;
    RETURN until;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_extend_lease(uuid, uuid, interval) IS
    'Extends a lease still held under its token; returns its new end.';
REVOKE ALL ON FUNCTION cte_ctel.cte_claim_steps(text[], text, interval, int),
    cte_ctel.cte_extend_lease(uuid, uuid, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_claim_steps(text[], text, interval, int),
    cte_ctel.cte_extend_lease(uuid, uuid, interval) TO cte_operator;

-- The reports take a lease_token (SPEC §10); 0.2.0's symbols stay in the library for the time
-- between the package upgrade and this script.
DROP FUNCTION cte_ctel.cte_complete_transaction(uuid, jsonb);
DROP FUNCTION cte_ctel.cte_fail_transaction(uuid, text, boolean);
DROP FUNCTION cte_ctel.cte_complete_compensation(uuid, jsonb);
DROP FUNCTION cte_ctel.cte_fail_compensation(uuid, text);
CREATE FUNCTION cte_ctel."cte_complete_transaction"(
	"transaction_id" uuid,
	"result" jsonb DEFAULT NULL,
	"lease_token" uuid DEFAULT NULL
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_complete_transaction_leased_wrapper';
CREATE FUNCTION cte_ctel."cte_fail_transaction"(
	"transaction_id" uuid,
	"error" TEXT,
	"retryable" bool DEFAULT false,
	"lease_token" uuid DEFAULT NULL
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_fail_transaction_leased_wrapper';
CREATE FUNCTION cte_ctel."cte_complete_compensation"(
	"transaction_id" uuid,
	"result" jsonb DEFAULT NULL,
	"lease_token" uuid DEFAULT NULL
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_complete_compensation_leased_wrapper';
CREATE FUNCTION cte_ctel."cte_fail_compensation"(
	"transaction_id" uuid,
	"error" TEXT,
	"lease_token" uuid DEFAULT NULL
) RETURNS TEXT
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_fail_compensation_leased_wrapper';
REVOKE ALL ON FUNCTION cte_ctel.cte_complete_transaction(uuid, jsonb, uuid),
    cte_ctel.cte_fail_transaction(uuid, text, boolean, uuid),
    cte_ctel.cte_complete_compensation(uuid, jsonb, uuid),
    cte_ctel.cte_fail_compensation(uuid, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_complete_transaction(uuid, jsonb, uuid),
    cte_ctel.cte_fail_transaction(uuid, text, boolean, uuid),
    cte_ctel.cte_complete_compensation(uuid, jsonb, uuid),
    cte_ctel.cte_fail_compensation(uuid, text, uuid) TO cte_operator;

-- Balance monitors (sql/monitors.sql; SPEC §11). The outbox and the feed carry a monitor's
-- change; a wallet says whether it has a monitor (columns added last, as a fresh install has them).
ALTER TABLE cte_ctel.cte_balances ADD COLUMN monitored boolean NOT NULL DEFAULT false;
ALTER TABLE cte_ctel.cte_change_outbox ADD COLUMN amount numeric, ADD COLUMN currency text, ADD COLUMN monitor_id uuid;
ALTER TABLE cte_ctel.cte_change_log ADD COLUMN amount numeric, ADD COLUMN currency text, ADD COLUMN monitor_id uuid;
CREATE TABLE cte_ctel.cte_monitors (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  text NOT NULL,
    currency    text NOT NULL,
    condition   text NOT NULL CHECK (condition IN ('below', 'above')),
    -- NaN and ±Infinity fail this too.
    threshold   numeric NOT NULL CHECK (abs(threshold) < 1e16),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    -- The same request twice is one monitor (a replay returns its id).
    -- No foreign key to cte_balances: its check would be one more piece of work on every
    -- update of every wallet. cte_create_monitor finds and locks the wallet; wallets are never
    -- deleted.
    UNIQUE (account_id, currency, condition, threshold)
);
COMMENT ON TABLE cte_ctel.cte_monitors IS
    'Balance monitors: a change of kind monitor reaches the feed when a wallet''s available balance crosses the threshold.';
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_monitors', '');

CREATE FUNCTION cte_ctel.cte_monitor_crossed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    before_available numeric := OLD.balance - OLD.reserved;
    after_available numeric := NEW.balance - NEW.reserved;
    m record;
BEGIN
    FOR m IN
        SELECT id, condition, threshold FROM cte_ctel.cte_monitors
         WHERE account_id = NEW.account_id AND currency = NEW.currency
           AND ((condition = 'below' AND before_available >= threshold AND after_available < threshold)
             OR (condition = 'above' AND before_available <= threshold AND after_available > threshold))
         ORDER BY created_at, id
    LOOP
        INSERT INTO cte_ctel.cte_change_outbox
               (account_id, actor, reason, kinds, transaction_ids, lien_ids, old_statuses,
                new_statuses, amount, currency, monitor_id)
        VALUES (NEW.account_id, cte_ctel.cte_caller(),
                pg_catalog.format('available balance %s, was %s: %s %s', after_available,
                                  before_available, m.condition, m.threshold),
                ARRAY['monitor'], ARRAY[NULL::uuid], ARRAY[NULL::uuid], ARRAY[NULL::text],
                ARRAY[m.condition], after_available, NEW.currency, m.id);
    END LOOP;
    RETURN NULL;
END
$function$;

CREATE TRIGGER cte_balances_monitored
    AFTER UPDATE OF balance, reserved ON cte_ctel.cte_balances
    FOR EACH ROW
    WHEN (NEW.monitored AND OLD.balance - OLD.reserved IS DISTINCT FROM NEW.balance - NEW.reserved)
    EXECUTE FUNCTION cte_ctel.cte_monitor_crossed();

CREATE FUNCTION cte_ctel.cte_create_monitor(account_id text, currency text, condition text,
                                            threshold numeric)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    -- The most monitors one wallet may have: each posting on a monitored wallet reads them all.
    -- (core/src/limits.rs keeps the engine's other bounds; this one lives only here.)
    monitors_max CONSTANT int := 16;
    wallet record;
    made uuid;
BEGIN
    IF account_id IS NULL OR currency IS NULL OR condition IS NULL OR threshold IS NULL THEN
        RAISE EXCEPTION 'account_id, currency, condition and threshold must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF condition NOT IN ('below', 'above') THEN
        RAISE EXCEPTION 'condition is %; it must be ''below'' or ''above''',
            pg_catalog.quote_literal(pg_catalog.left(condition, 40))
            USING ERRCODE = 'L0033', DETAIL = 'reason: argument_out_of_range';
    END IF;
    IF threshold IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'threshold is %; it must be finite', threshold
            USING ERRCODE = 'L0003', DETAIL = 'reason: amount_not_finite';
    END IF;
    IF pg_catalog.abs(pg_catalog.trunc(threshold)) >= 1e16 THEN
        RAISE EXCEPTION 'threshold has more than 16 digits before the point'
            USING ERRCODE = 'L0006', DETAIL = 'reason: amount_too_large';
    END IF;
    IF left(account_id, 1) = '@' THEN
        RAISE EXCEPTION 'account % is a system account; a monitor watches a wallet',
            pg_catalog.quote_literal(pg_catalog.left(account_id, 70))
            USING ERRCODE = 'L0019', DETAIL = 'reason: system_account_refused';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM cte_ctel.cte_accounts a WHERE a.id = cte_create_monitor.account_id) THEN
        RAISE EXCEPTION 'account % does not exist', pg_catalog.quote_literal(pg_catalog.left(account_id, 70))
            USING ERRCODE = 'L0016', DETAIL = 'reason: account_unknown';
    END IF;
    -- The wallet's row, locked: creating and dropping monitors of one wallet take turns, and a
    -- posting on it waits for the flag (wallets are the last locks a posting takes; this takes
    -- no other).
    SELECT b.status, c.scale INTO wallet
      FROM cte_ctel.cte_balances b JOIN cte_ctel.cte_currencies c ON c.code = b.currency
     WHERE b.account_id = cte_create_monitor.account_id AND b.currency = cte_create_monitor.currency
       FOR UPDATE OF b;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % holds no balance in %',
            pg_catalog.quote_literal(pg_catalog.left(account_id, 70)),
            pg_catalog.quote_literal(pg_catalog.left(currency, 20))
            USING ERRCODE = 'L0018', DETAIL = 'reason: currency_not_held';
    END IF;
    IF wallet.status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', pg_catalog.quote_literal(account_id)
            USING ERRCODE = 'L0038', DETAIL = 'reason: account_closed';
    END IF;
    IF threshold <> pg_catalog.round(threshold, wallet.scale) THEN
        RAISE EXCEPTION 'threshold % has more decimals than % allows (%)', threshold, currency,
            wallet.scale USING ERRCODE = 'L0005', DETAIL = 'reason: amount_scale_exceeded';
    END IF;
    -- One monitor per request: the same one again returns its id (a replay).
    SELECT m.id INTO made FROM cte_ctel.cte_monitors m
     WHERE m.account_id = cte_create_monitor.account_id AND m.currency = cte_create_monitor.currency
       AND m.condition = cte_create_monitor.condition AND m.threshold = cte_create_monitor.threshold;
    IF made IS NOT NULL THEN
        RETURN made;
    END IF;
    IF (SELECT count(*) FROM cte_ctel.cte_monitors m
         WHERE m.account_id = cte_create_monitor.account_id AND m.currency = cte_create_monitor.currency)
       >= monitors_max THEN
        RAISE EXCEPTION 'account % already has % monitors in %, the most a wallet may have',
            pg_catalog.quote_literal(account_id), monitors_max, currency
            USING ERRCODE = 'L0013', DETAIL = 'reason: limit_exceeded';
    END IF;
    INSERT INTO cte_ctel.cte_monitors (account_id, currency, condition, threshold, created_by)
    VALUES (account_id, currency, condition, threshold, cte_ctel.cte_caller())
    RETURNING id INTO made;
    UPDATE cte_ctel.cte_balances b SET monitored = true
     WHERE b.account_id = cte_create_monitor.account_id AND b.currency = cte_create_monitor.currency
       AND NOT b.monitored;
    RETURN made;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_create_monitor(text, text, text, numeric) IS
    'Watches a wallet''s available balance: a change of kind monitor reaches the feed each time it crosses threshold (below: from >= to <; above: from <= to >). The same request again returns the same monitor.';

CREATE FUNCTION cte_ctel.cte_drop_monitor(id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    dropped cte_ctel.cte_monitors;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be NULL' USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    -- The wallet first (the order cte_create_monitor takes), then the monitor.
    PERFORM 1 FROM cte_ctel.cte_balances b JOIN cte_ctel.cte_monitors m
        ON m.account_id = b.account_id AND m.currency = b.currency
     WHERE m.id = cte_drop_monitor.id FOR UPDATE OF b;
    DELETE FROM cte_ctel.cte_monitors m WHERE m.id = cte_drop_monitor.id RETURNING * INTO dropped;
    IF dropped.id IS NULL THEN
        RETURN false;
    END IF;
    UPDATE cte_ctel.cte_balances b SET monitored = false
     WHERE b.account_id = dropped.account_id AND b.currency = dropped.currency
       AND NOT EXISTS (SELECT 1 FROM cte_ctel.cte_monitors m
                        WHERE m.account_id = dropped.account_id AND m.currency = dropped.currency);
    RETURN true;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_drop_monitor(uuid) IS
    'Drops a balance monitor; returns whether it existed (dropping it again is a replay).';
REVOKE ALL ON TABLE cte_ctel.cte_monitors FROM PUBLIC;
GRANT SELECT ON TABLE cte_ctel.cte_monitors TO cte_reader;
REVOKE ALL ON FUNCTION cte_ctel.cte_monitor_crossed(),
    cte_ctel.cte_create_monitor(text, text, text, numeric), cte_ctel.cte_drop_monitor(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_create_monitor(text, text, text, numeric),
    cte_ctel.cte_drop_monitor(uuid) TO cte_admin;

-- cte_event_history gains seq, one column that sorts the changes in the order they were made
-- (the changes of one drive share an id; ordering by id alone mixed them).
CREATE OR REPLACE VIEW cte_ctel.cte_event_history AS
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

-- Read tenancy (SPEC §12; sql/tenancy.sql): off until an administrator turns it on. The role
-- cte_tenant, whose members it limits; each account's owner; the views run as their reader;
-- cte_verify_ledger and cte_find_events (above) answer a limited role as the policies do.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cte_tenant') THEN
        CREATE ROLE cte_tenant NOLOGIN;
    END IF;
END
$$;
CREATE FUNCTION cte_ctel."cte_verify_ledger_reader"() RETURNS void
STRICT STABLE PARALLEL SAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cte_verify_ledger_reader_wrapper';
CREATE OR REPLACE FUNCTION cte_ctel.cte_verify_ledger()
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
-- Read tenancy (SPEC §12, 0.3.0), off until an administrator turns it on. A marketplace's
-- application roles then read only their own accounts: a role that is a member of cte_tenant
-- sees, in every table, view and read function, the accounts whose owner is a role it has the
-- rights of (pg_has_role … 'USAGE'), and the events, steps, entries, liens and changes that
-- touch them. Roles outside cte_tenant, members of cte_admin and superusers read everything,
-- as before. Writes are not scoped by it (an operator still pays any account it names).
--
-- The caller is the role the session acts as (cte_caller(): the login role or the one set with
-- SET ROLE), as for cancelling an event, in the tables' policies as in the read functions.
--
-- The policies are made here, with the tables' row-level security, and say "everything" while
-- tenancy is off; the switch is a row of cte_read_tenancy, which pg_dump keeps (also in a
-- data-only dump). pg_dump leaves out the policies and the row-level security of an extension's
-- tables, and CREATE EXTENSION makes them again; pg_upgrade keeps them. So tenancy, once on,
-- comes back on with every copy of the database: it never opens by being lost.

-- The role an account belongs to, by name (as cte_events.created_by): by default the role that
-- opened it. An administrator sets it with cte_set_account_owner. Accounts opened before 0.3.0
-- and the system accounts have none: under tenancy only roles that read everything see them.
ALTER TABLE cte_ctel.cte_accounts ADD COLUMN owner text
    CHECK (owner IS NULL OR octet_length(owner) BETWEEN 1 AND 63);
ALTER TABLE cte_ctel.cte_accounts ALTER COLUMN owner SET DEFAULT cte_ctel.cte_caller();
CREATE INDEX cte_accounts_owner_idx ON cte_ctel.cte_accounts (owner) WHERE owner IS NOT NULL;

-- The switch: tenancy is on while this table has its row.
CREATE TABLE cte_ctel.cte_read_tenancy (
    id          int PRIMARY KEY CHECK (id = 1),
    enabled_at  timestamptz NOT NULL DEFAULT now(),
    enabled_by  text NOT NULL DEFAULT cte_ctel.cte_caller()
);
COMMENT ON TABLE cte_ctel.cte_read_tenancy IS
    'Read tenancy is on while this table holds its one row (cte_set_read_tenancy): who turned it on, when.';
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_read_tenancy', '');

-- Views run with their reader's rights, so that the tables' policies apply through them (the
-- readers have SELECT on every table they read, so without tenancy they show what they did).
ALTER VIEW cte_ctel.cte_event_history SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_overdue_events SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_ledger_balances SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_steps_awaiting SET (security_invoker = true);
ALTER VIEW cte_ctel.cte_stats SET (security_invoker = true);

-- Whether the caller reads everything: tenancy is off, or neither the session's role nor the
-- session's login (session_user, unless a superuser) is a member of cte_tenant, or the session's
-- role has cte_admin's rights (superusers have every role's). The login counts so that a tenant
-- cannot step out of tenancy by SET ROLE to a role it is a member of (cte_reader, say).
CREATE FUNCTION cte_ctel.cte_reads_all() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT NOT EXISTS (SELECT 1 FROM cte_ctel.cte_read_tenancy)
        OR COALESCE(pg_catalog.pg_has_role(cte_ctel.cte_caller(),
                                           pg_catalog.to_regrole('cte_admin'), 'USAGE'), false)
        OR NOT (COALESCE(pg_catalog.pg_has_role(cte_ctel.cte_caller(),
                                                pg_catalog.to_regrole('cte_tenant'), 'MEMBER'), false)
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                            WHERE r.rolname = session_user AND NOT r.rolsuper
                              AND COALESCE(pg_catalog.pg_has_role(r.oid,
                                               pg_catalog.to_regrole('cte_tenant'), 'MEMBER'),
                                           false)))
$$;
COMMENT ON FUNCTION cte_ctel.cte_reads_all() IS
    'Whether the calling role reads every account (read tenancy off, or the role outside cte_tenant, or an administrator).';

-- The roles whose accounts and events a tenant reads: those it has the rights of, but for the
-- extension's own, which every tenant has (an account opened while acting as cte_operator is
-- no tenant's).
CREATE FUNCTION cte_ctel.cte_tenant_roles() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.rolname::text FROM pg_catalog.pg_roles r
     WHERE pg_catalog.pg_has_role(cte_ctel.cte_caller(), r.oid, 'USAGE')
       AND r.rolname NOT IN ('cte_reader', 'cte_operator', 'cte_admin', 'cte_tenant')
$$;
COMMENT ON FUNCTION cte_ctel.cte_tenant_roles() IS
    'The roles the calling role has the rights of, but for the extension''s own: whose accounts and events a tenant reads.';

-- The accounts a tenant owns: those whose owner is one of its roles.
CREATE FUNCTION cte_ctel.cte_owned_accounts() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.id FROM cte_ctel.cte_accounts a
     WHERE a.owner IN (SELECT cte_ctel.cte_tenant_roles())
$$;
COMMENT ON FUNCTION cte_ctel.cte_owned_accounts() IS
    'The accounts whose owner is a role the calling role has the rights of.';

CREATE FUNCTION cte_ctel.cte_may_read_account(account_id text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cte_ctel.cte_reads_all()
        OR account_id IN (SELECT cte_ctel.cte_owned_accounts())
$$;
COMMENT ON FUNCTION cte_ctel.cte_may_read_account(text) IS
    'Whether the calling role may read the account (always, unless read tenancy limits it).';

-- An event a tenant may read: one it (or a role whose rights it has) created, or one that posted
-- to or held funds on an account it owns.
CREATE FUNCTION cte_ctel.cte_may_read_event(event_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cte_ctel.cte_reads_all()
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_events e
                    WHERE e.id = event_id AND e.created_by IN (SELECT cte_ctel.cte_tenant_roles()))
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_transactions t
                     JOIN cte_ctel.cte_entries n ON n.transaction_id = t.id
                    WHERE t.event_id = cte_may_read_event.event_id
                      AND n.account_id IN (SELECT cte_ctel.cte_owned_accounts()))
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_liens l
                    WHERE l.event_id = cte_may_read_event.event_id
                      AND l.account_id IN (SELECT cte_ctel.cte_owned_accounts()))
$$;
COMMENT ON FUNCTION cte_ctel.cte_may_read_event(uuid) IS
    'Whether the calling role may read the event: always, unless read tenancy limits it to those it created or that touched its accounts.';

-- A row of the change feed (or its outbox) a tenant may read: of an account it reads, of an
-- event it reads, or of a lien on an account it reads.
CREATE FUNCTION cte_ctel.cte_may_read_change(event_id uuid, account_id text, lien_ids uuid[])
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT cte_ctel.cte_reads_all()
        OR (account_id IS NOT NULL AND cte_ctel.cte_may_read_account(account_id))
        OR (event_id IS NOT NULL AND cte_ctel.cte_may_read_event(event_id))
        OR EXISTS (SELECT 1 FROM cte_ctel.cte_liens l
                    WHERE l.id = ANY (lien_ids)
                      AND l.account_id IN (SELECT cte_ctel.cte_owned_accounts()))
$$;
COMMENT ON FUNCTION cte_ctel.cte_may_read_change(uuid, text, uuid[]) IS
    'Whether the calling role may read a row of the change feed (always, unless read tenancy limits it).';

-- One policy per table: every row while the caller reads everything (asked once per query, as
-- the policy's InitPlan), otherwise the rows of what it may read.
DO $do$
DECLARE
    rule record;
BEGIN
    FOR rule IN SELECT * FROM (VALUES
        ('cte_accounts', 'id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_balances', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_entries', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_liens', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_monitors', 'account_id IN (SELECT cte_ctel.cte_owned_accounts())'),
        ('cte_entry_links', 'EXISTS (SELECT 1 FROM cte_ctel.cte_entries n WHERE n.id = entry_id)'),
        ('cte_events', 'cte_ctel.cte_may_read_event(id)'),
        ('cte_transactions', 'cte_ctel.cte_may_read_event(event_id)'),
        ('cte_references',
         'EXISTS (SELECT 1 FROM cte_ctel.cte_transactions t WHERE t.id = transaction_id)'),
        ('cte_change_log', 'cte_ctel.cte_may_read_change(event_id, account_id, lien_ids)'),
        ('cte_change_outbox', 'cte_ctel.cte_may_read_change(event_id, account_id, lien_ids)'),
        ('cte_system_balances', 'false'),
        ('cte_system_deltas', 'false')) AS r(relation, visible)
    LOOP
        EXECUTE format('CREATE POLICY cte_read_tenancy ON cte_ctel.%I FOR SELECT '
                       'USING ((SELECT cte_ctel.cte_reads_all()) OR %s)',
                       rule.relation, rule.visible);
        EXECUTE format('ALTER TABLE cte_ctel.%I ENABLE ROW LEVEL SECURITY', rule.relation);
    END LOOP;
END
$do$;

-- Turns read tenancy on or off; either way again changes nothing. Returns whether it is on.
CREATE FUNCTION cte_ctel.cte_set_read_tenancy(enabled boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'enabled must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF enabled THEN
        INSERT INTO cte_ctel.cte_read_tenancy (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
    ELSE
        DELETE FROM cte_ctel.cte_read_tenancy;
    END IF;
    RETURN enabled;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_set_read_tenancy(boolean) IS
    'Turns read tenancy on or off: members of cte_tenant then read only the accounts they own and what touches them.';

-- Gives an account to a role (NULL: to none), for read tenancy. The role must exist.
CREATE FUNCTION cte_ctel.cte_set_account_owner(account_id text, owner text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    found boolean;
BEGIN
    IF account_id IS NULL THEN
        RAISE EXCEPTION 'account_id must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF owner IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname::text = owner) THEN
        RAISE EXCEPTION 'owner % is not valid: no role has that name', pg_catalog.left(owner, 100)
            USING ERRCODE = 'L0008', DETAIL = 'reason: identifier_invalid',
                  HINT = 'name an existing role, or NULL for none';
    END IF;
    IF owner IN ('cte_reader', 'cte_operator', 'cte_admin', 'cte_tenant') THEN
        RAISE EXCEPTION 'owner % is not valid: every tenant has the rights of the extension''s roles', owner
            USING ERRCODE = 'L0008', DETAIL = 'reason: identifier_invalid',
                  HINT = 'give the account to a role of its own tenant, or NULL for none';
    END IF;
    UPDATE cte_ctel.cte_accounts a SET owner = cte_set_account_owner.owner
     WHERE a.id = cte_set_account_owner.account_id
    RETURNING true INTO found;
    IF found IS NULL THEN
        RAISE EXCEPTION 'account % does not exist', pg_catalog.left(account_id, 100)
            USING ERRCODE = 'L0016', DETAIL = 'reason: account_unknown';
    END IF;
    RETURN owner;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_set_account_owner(text, text) IS
    'Gives an account to a role (NULL: to none): under read tenancy, the members of cte_tenant with that role''s rights read it.';
REVOKE ALL ON FUNCTION cte_ctel.cte_verify_ledger_reader(), cte_ctel.cte_reads_all(),
    cte_ctel.cte_tenant_roles(),
    cte_ctel.cte_owned_accounts(), cte_ctel.cte_may_read_account(text),
    cte_ctel.cte_may_read_event(uuid), cte_ctel.cte_may_read_change(uuid, text, uuid[]),
    cte_ctel.cte_set_read_tenancy(boolean), cte_ctel.cte_set_account_owner(text, text) FROM PUBLIC;
REVOKE ALL ON TABLE cte_ctel.cte_read_tenancy FROM PUBLIC;
GRANT SELECT ON TABLE cte_ctel.cte_read_tenancy TO cte_reader;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_reads_all(), cte_ctel.cte_owned_accounts(),
    cte_ctel.cte_tenant_roles(),
    cte_ctel.cte_may_read_account(text), cte_ctel.cte_may_read_event(uuid),
    cte_ctel.cte_may_read_change(uuid, text, uuid[]) TO cte_reader;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_set_read_tenancy(boolean),
    cte_ctel.cte_set_account_owner(text, text) TO cte_admin;

-- Step types the application hosts (SPEC §10; sql/external_types.sql).
-- Step types the application hosts (SPEC §10, 0.3.0): an administrator registers a type name,
-- and steps of that type then wait on the application as `external` ones do (their payload a
-- JSON object within the payload bound, never read by the ledger), to be claimed by the
-- application's workers by that name (cte_claim_steps) and reported on. A type is hosted or run
-- by an executor (cte_register_executor), never both. Registered for good: steps of the type
-- may wait on it long after.
CREATE TABLE cte_ctel.cte_external_types (
    type           cte_ctel.cte_name PRIMARY KEY
                   CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
    description    cte_ctel.cte_description,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    registered_by  text NOT NULL DEFAULT cte_ctel.cte_caller()
);
COMMENT ON TABLE cte_ctel.cte_external_types IS
    'Step types the application hosts: their steps wait for the application''s workers to claim and report them, as external ones do.';
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_external_types', '');

-- Registers `type` as hosted by the application; returns true if it was not registered yet.
-- Registering it again is a replay (its description, if given, replaces the one kept).
CREATE FUNCTION cte_ctel.cte_register_external_type(type text, description text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    added boolean;
BEGIN
    IF type IS NULL THEN
        RAISE EXCEPTION 'type must not be NULL'
            USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF pg_catalog.octet_length(type) > 128
       OR type !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' THEN
        RAISE EXCEPTION 'transaction type "%" is not valid', pg_catalog.left(type, 140)
            USING ERRCODE = 'L0026', DETAIL = 'reason: type_unknown',
                  HINT = 'a type the application hosts is lowercase words of letters, digits and _ joined by dots, such as stripe.charge';
    END IF;
    IF type IN ('wallet.transfer', 'wallet.deposit', 'wallet.withdrawal', 'wallet.exchange',
                'batch.operation', 'external', 'wallet.refund', 'wallet.split') THEN
        RAISE EXCEPTION 'transaction type "%" is built in: the application cannot host it', type
            USING ERRCODE = 'L0026', DETAIL = 'reason: type_unknown',
                  HINT = 'external is already hosted by the application; name a type of your own';
    END IF;
    IF description IS NOT NULL AND pg_catalog.octet_length(description) > 1024 THEN
        RAISE EXCEPTION 'description is % bytes long; at most 1024 are allowed', pg_catalog.octet_length(description)
            USING ERRCODE = 'L0007', DETAIL = 'reason: text_too_long';
    END IF;
    -- The lock cte_register_executor takes too before it looks here: one of the two waits.
    LOCK TABLE cte_ctel.cte_external_types IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM cte_ctel.cte_executors x WHERE x.type = cte_register_external_type.type) THEN
        RAISE EXCEPTION 'transaction type "%" has a registered executor: the application cannot host it', type
            USING ERRCODE = 'L0030', DETAIL = 'reason: executor_invalid',
                  HINT = 'a type is run by an executor or hosted by the application, not both';
    END IF;
    INSERT INTO cte_ctel.cte_external_types AS t (type, description)
    VALUES (type, description)
    ON CONFLICT ON CONSTRAINT cte_external_types_pkey DO UPDATE
       SET description = COALESCE(EXCLUDED.description, t.description)
    RETURNING (xmax = 0) INTO added;
    RETURN added;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_register_external_type(text, text) IS
    'Registers a step type the application hosts: its steps wait to be claimed (cte_claim_steps) and reported, as external ones do.';
REVOKE ALL ON TABLE cte_ctel.cte_external_types FROM PUBLIC;
GRANT SELECT ON TABLE cte_ctel.cte_external_types TO cte_reader;
REVOKE ALL ON FUNCTION cte_ctel.cte_register_external_type(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cte_ctel.cte_register_external_type(text, text) TO cte_admin;

-- 0.3.0: one row, never changed: a fold of the system deltas locks it (FOR UPDATE, which only the
-- extension's owner may do here) before it touches a delta or a system balance, so that two
-- folds never wait on each other's rows: the feed worker skips its fold while another holds it
-- (an administrator's cte_run_maintenance() or cte_fold_system_balances() left open), and so
-- never lets it hold the sequencing and the expiries of its pass (SPEC §12).
CREATE TABLE cte_ctel.cte_fold_lock (
    id int PRIMARY KEY CHECK (id = 1)
);
INSERT INTO cte_ctel.cte_fold_lock VALUES (1);
COMMENT ON TABLE cte_ctel.cte_fold_lock IS
    'The lock a fold of the system deltas takes (one row, never changed).';
REVOKE ALL ON TABLE cte_ctel.cte_fold_lock FROM PUBLIC;
GRANT SELECT ON TABLE cte_ctel.cte_fold_lock TO cte_reader;
