-- cte_transfers (SPEC §11, 0.3.0): many transfers in one call and one transaction, each posted
-- or refused on its own. Each item is a cte_transfer in a subtransaction of its own, so one
-- refused item undoes nothing of the others and keeps no key (sent again, it is tried again); an
-- item whose reference already names the same transfer is a replay (its original event, status
-- 'replayed'). A try-again error (40001, 40P01) aborts the whole call, which the caller sends
-- again safely: every item posted before it rolls back with it, and replays what committed.
-- Any other error that is not a refusal (class L0) is a fault and aborts the call too.
CREATE FUNCTION cte_ctel.cte_transfers(items jsonb)
RETURNS TABLE (item int, event_id uuid, status text, reason text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
    items_max CONSTANT int := 10000; -- limits.rs BATCH_ITEMS_MAX
    entry jsonb;
    n int := 0;
    held uuid;
    code text;
BEGIN
    IF items IS NULL THEN
        RAISE EXCEPTION 'items must not be NULL' USING ERRCODE = 'L0001', DETAIL = 'reason: null_argument';
    END IF;
    IF pg_catalog.jsonb_typeof(items) <> 'array' THEN
        RAISE EXCEPTION 'payload of cte_transfers is not valid: items must be an array'
            USING ERRCODE = 'L0027', DETAIL = 'reason: payload_invalid';
    END IF;
    IF pg_catalog.jsonb_array_length(items) > items_max THEN
        RAISE EXCEPTION 'items per call is %; the limit is %', pg_catalog.jsonb_array_length(items),
            items_max USING ERRCODE = 'L0013', DETAIL = 'reason: limit_exceeded';
    END IF;
    FOR entry IN SELECT e FROM pg_catalog.jsonb_array_elements(items) AS e LOOP
        n := n + 1;
        item := n;
        event_id := NULL;
        reason := NULL;
        BEGIN
            IF pg_catalog.jsonb_typeof(entry) <> 'object' THEN
                RAISE EXCEPTION 'item % is not an object', n
                    USING ERRCODE = 'L0027', DETAIL = 'reason: payload_invalid';
            END IF;
            -- A misspelt field (a "refrence") would post the item without its key, and a retry
            -- would post it again: every field must be one of the item's.
            IF EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(entry) AS k
                        WHERE k NOT IN ('source_account_id', 'destination_account_id', 'amount',
                                        'currency', 'reference', 'metadata')) THEN
                RAISE EXCEPTION 'payload of cte_transfers is not valid: item % has a field that is not source_account_id, destination_account_id, amount, currency, reference or metadata', n
                    USING ERRCODE = 'L0027', DETAIL = 'reason: payload_invalid';
            END IF;
            -- The transfer its reference already names, if any: the call below then replays it
            -- (or refuses a conflicting request).
            held := NULL;
            IF entry ? 'reference' THEN
                SELECT t.event_id INTO held
                  FROM cte_ctel.cte_references r
                  JOIN cte_ctel.cte_transactions t ON t.id = r.transaction_id
                 WHERE r.type = 'wallet.transfer' AND r.reference = entry ->> 'reference';
            END IF;
            event_id := cte_ctel.cte_transfer(entry ->> 'source_account_id',
                                              entry ->> 'destination_account_id',
                                              (entry ->> 'amount')::numeric,
                                              entry ->> 'currency', entry ->> 'reference',
                                              entry -> 'metadata');
            status := CASE WHEN held IS NOT NULL AND held = event_id THEN 'replayed'
                           ELSE 'posted' END;
        EXCEPTION
            WHEN invalid_text_representation OR numeric_value_out_of_range THEN
                status := 'refused';
                reason := 'amount_malformed';
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE;
                IF pg_catalog.left(code, 2) <> 'L0' THEN
                    RAISE; -- try again (40001, 40P01) or a fault: the whole call
                END IF;
                status := 'refused';
                reason := (SELECT c.reason FROM cte_ctel.cte_error_catalog() c WHERE c.sqlstate = code);
        END;
        RETURN NEXT;
    END LOOP;
END
$function$;
COMMENT ON FUNCTION cte_ctel.cte_transfers(jsonb) IS
    'Many transfers in one call: each item {source_account_id, destination_account_id, amount, currency, reference, metadata} posted, refused (with its reason) or replayed on its own.';
