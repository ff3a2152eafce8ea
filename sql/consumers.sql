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
