-- cte_add_transaction's Rust parameter cannot be called `type`, so its CREATE FUNCTION is
-- written here with the contract's argument names.
CREATE FUNCTION cte_ctel.cte_add_transaction(
    event_id uuid, name text, type text, payload jsonb, description text DEFAULT NULL,
    "order" int DEFAULT NULL, max_attempts int DEFAULT NULL)
RETURNS uuid
LANGUAGE c VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'cte_add_transaction_wrapper';
COMMENT ON FUNCTION cte_ctel.cte_add_transaction(uuid, text, text, jsonb, text, int, int) IS
    'Appends a step to a created event; its payload is checked against its type at once.';

-- cte_register_executor takes regprocedures, so a caller names functions with their argument
-- types ('fee_collection(uuid, jsonb)'); it hands their oids to the Rust implementation.
CREATE FUNCTION cte_ctel.cte_register_executor(
    type text, execute_fn regprocedure, compensate_fn regprocedure DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT cte_ctel.cte_register_executor_by_oid(type, execute_fn::oid, compensate_fn::oid) $$;
COMMENT ON FUNCTION cte_ctel.cte_register_executor(text, regprocedure, regprocedure) IS
    'Adds (or replaces) a custom step type: execute_fn(uuid, jsonb) RETURNS jsonb, compensate_fn(uuid, jsonb, jsonb) RETURNS void. They run inside the step''s subtransaction with the extension owner''s rights: register only trusted functions.';
