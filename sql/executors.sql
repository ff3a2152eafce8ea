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

-- Not SECURITY DEFINER: the registrant is the role that calls this (current_user), and it must
-- own both functions, which then run with its rights and never more. A definer function would
-- hide the caller. The C function writes cte_executors as the extension's owner for that one
-- statement only.
CREATE FUNCTION cte_ctel.cte_register_executor(
    type text, execute_fn regprocedure, compensate_fn regprocedure DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE SECURITY INVOKER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'cte_register_executor_wrapper';
COMMENT ON FUNCTION cte_ctel.cte_register_executor(text, regprocedure, regprocedure) IS
    'Adds (or replaces) a custom step type: execute_fn(uuid, jsonb) RETURNS jsonb, compensate_fn(uuid, jsonb, jsonb) RETURNS void. The calling role must own both (not in pg_temp); they run inside the step''s subtransaction with that role''s rights, whoever starts the event.';
