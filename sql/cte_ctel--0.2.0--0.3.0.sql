-- cte_ctel 0.2.0 -> 0.3.0, in place (ALTER EXTENSION cte_ctel UPDATE). Frozen once released.
--
-- Most of 0.3.0 is behaviour of the library (replays and conflicts of every keyed write, refunds
-- newest first, scheduled starts re-read under the event's lock, executors' rules, a second
-- worker for the feed); its SQL adds cte_run_event, an argument of cte_reverse_event (legs:
-- the parts of a partial refund) and one row of cte_stats, feed_worker_running. Stored rows are not rewritten: keys stored by 0.2.0 (event and lien keys,
-- references of steps, refunds and captures) keep meaning what they named, and a replay of a
-- 0.2.0 request under its key returns what 0.2.0 made.
\echo Use "ALTER EXTENSION cte_ctel UPDATE TO '0.3.0'" to load this file. \quit

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

-- cte_stats with the feed worker's row (sql/stats.sql).
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
SELECT 'journal_last_entry_id', NULL, NULL, coalesce(max(j.id), 0) FROM cte_ctel.cte_entries j;

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
