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
