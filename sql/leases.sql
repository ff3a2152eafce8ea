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
