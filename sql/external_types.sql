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
