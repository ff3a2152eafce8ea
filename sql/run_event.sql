-- cte_run_event (SPEC §9, 0.3.0): create an event, add its steps and start it in one call, all
-- or nothing, under one idempotency key. It composes the API (cte_create_event,
-- cte_add_transaction, cte_start_event), so every check and every refusal is theirs; a refusal
-- anywhere rolls the whole call back (the statement is atomic), and the key is then free.
--
-- The request is the event's name, timeout and metadata (compared by cte_create_event) and its
-- steps: each one's name, type, payload (as JSON values), description and max_attempts (an
-- omitted one matches whatever default the first call took), in order. not_before is not part
-- of it: the application may move a scheduled start (cte_start_event) before it comes. The same key
-- with the same request returns the event with its current status and replayed = true, whatever
-- its end; another request is idempotency_conflict (L0028), its HINT naming the event.
--
-- Races: a second call with the key waits in cte_create_event for the first to commit, then
-- finds the event with its steps: a replay (or a conflict). An event the key names that has no
-- step yet (made by cte_create_event under the same key) is taken as this call's own.
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
