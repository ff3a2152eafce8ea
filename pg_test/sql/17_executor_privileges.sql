-- PostgreSQL words its refusal to make a role superuser differently by major (15: "must be
-- superuser to alter superuser roles or change superuser attribute", 16 and later: "permission
-- denied to alter role"); either is shown as one line, anything else as it is.
CREATE FUNCTION test.alter_role_refusal(error text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN error IN ('must be superuser to alter superuser roles or change superuser attribute',
                               'permission denied to alter role')
                THEN 'PostgreSQL refused to alter the role' ELSE error END
$$;
-- A custom executor never runs with more rights than the role that registered it (SPEC §7 v2),
-- whoever starts the event: the API's functions are SECURITY DEFINER (owned by the superuser
-- that installed the extension), so an executor called from inside them would otherwise run as
-- that superuser. Roles here are not superusers; each owns code of its own.
--   * registration: the calling role must own both functions (EXECUTE is not enough), neither
--     in a temporary schema, and cte_register_executor itself is SECURITY INVOKER;
--   * a run: as the registrant, in a security-restricted operation, with its ownership checked
--     again, and any setting it changes rolled back;
--   * code the executor reaches (a trigger on a table another role owns) runs as the
--     registrant too, never as the superuser;
--   * 0.3.0 (SPEC §12): each function pins its search_path with pg_temp last (else a caller's
--     temporary table could stand in for one it writes), checked at registration and at every
--     run, and a superuser may not register (nor run what it registered before 0.3.0).
SET search_path = cte_ctel, test;
BEGIN;
CREATE ROLE t_admin2 IN ROLE cte_admin;
CREATE ROLE t_operator2 IN ROLE cte_operator;
CREATE ROLE t_bystander;
GRANT USAGE, CREATE ON SCHEMA test TO t_admin2, t_operator2;
GRANT USAGE ON SCHEMA test TO t_bystander;
GRANT EXECUTE ON FUNCTION test.refusal(text), test.ledger_state(), test.engine_state() TO PUBLIC;
GRANT ALL ON test.observed_sqlstates TO PUBLIC;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;
CREATE TABLE test.executor_seen (current_role_name text, session_role text, search_path text);
GRANT ALL ON test.executor_seen TO PUBLIC;

-- An admin's executor that tries to make its owner a superuser, and records who it runs as.
SET ROLE t_admin2;
CREATE FUNCTION test.grab_superuser(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = test, pg_temp AS $$
BEGIN
    INSERT INTO test.executor_seen VALUES (current_user, session_user, current_setting('search_path'));
    IF payload ? 'escalate' THEN
        EXECUTE 'ALTER ROLE t_admin2 SUPERUSER';
    END IF;
    -- A setting changed here would otherwise stay for the definer code that runs after it.
    PERFORM set_config('search_path', 'test, pg_catalog', false);
    RETURN jsonb_build_object('ran_as', current_user);
END $$;
SELECT cte_ctel.cte_register_executor('admin.grab', 'test.grab_superuser(uuid, jsonb)');
RESET ROLE;
SELECT type, registrant FROM cte_executors WHERE type = 'admin.grab';

-- Started by the superuser or by an operator, it runs as t_admin2, and its ALTER ROLE fails.
SELECT cte_create_event('escalate') AS e \gset
SELECT cte_add_transaction(:'e', 'grab', 'admin.grab', '{"escalate": true}') AS grab \gset
SET ROLE t_operator2;
SELECT cte_ctel.cte_start_event(:'e');
RESET ROLE;
SELECT status, error_sqlstate, test.alter_role_refusal(error) AS error FROM cte_transactions WHERE id = :'grab';
SELECT rolsuper AS t_admin2_is_superuser FROM pg_roles WHERE rolname = 't_admin2';
-- Without the escalation it completes, as t_admin2, and the session's search_path is untouched.
SHOW search_path;
SELECT cte_create_event('plain') AS p \gset
SELECT cte_add_transaction(:'p', 'grab', 'admin.grab', '{}') IS NOT NULL AS added;
SELECT cte_start_event(:'p');
SELECT result FROM cte_transactions WHERE event_id = :'p';
SELECT current_role_name, session_role FROM test.executor_seen;
SHOW search_path;

-- Registration: the caller must own the functions.
CREATE FUNCTION test.superuser_owned(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql SET search_path = test, pg_temp AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION test.superuser_undo(transaction_id uuid, payload jsonb, result jsonb)
RETURNS void LANGUAGE sql AS $$ SELECT $$;
GRANT EXECUTE ON FUNCTION test.superuser_owned(uuid, jsonb), test.superuser_undo(uuid, jsonb, jsonb) TO PUBLIC;
SET ROLE t_admin2;
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.borrowed', 'test.superuser_owned(uuid, jsonb)')$$);
-- ... also for the compensation function.
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.borrowed', 'test.grab_superuser(uuid, jsonb)', 'test.superuser_undo(uuid, jsonb, jsonb)')$$);
-- ... and not in pg_temp, where another session's objects could stand in.
CREATE FUNCTION pg_temp.temporary_step(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.temporary', 'pg_temp.temporary_step(uuid, jsonb)')$$);
RESET ROLE;
-- A superuser may not register at all, not even functions of its own (0.3.0): its executor
-- would run every trigger its statements reach as superuser.
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.theirs', 'test.grab_superuser(uuid, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.super', 'test.superuser_owned(uuid, jsonb)')$$);
-- A bystander may not register at all, and 0.1.0's by-oid registration is gone.
SET ROLE t_bystander;
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('x.y', 'test.superuser_owned(uuid, jsonb)')$$);
RESET ROLE;
SELECT count(*) AS by_oid_functions FROM pg_proc WHERE proname = 'cte_register_executor_by_oid';

-- Ownership is checked again on every run: given away after registration, the function is
-- refused (the step fails), never run as its new owner's victim.
SELECT cte_create_event('given away') AS g \gset
SELECT cte_add_transaction(:'g', 'grab', 'admin.grab', '{}') AS given \gset
ALTER FUNCTION test.grab_superuser(uuid, jsonb) OWNER TO t_operator2;
SELECT cte_start_event(:'g');
SELECT status, error FROM cte_transactions WHERE id = :'given';
ALTER FUNCTION test.grab_superuser(uuid, jsonb) OWNER TO t_admin2;

-- A trigger an operator owns, on a table an executor writes: it runs as the executor's
-- registrant, never as the superuser that owns the API's functions.
SET ROLE t_operator2;
CREATE TABLE test.operator_log (note text);
GRANT INSERT ON test.operator_log TO t_admin2;
CREATE FUNCTION test.operator_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test.executor_seen VALUES ('trigger: ' || current_user, session_user, NULL);
    EXECUTE 'ALTER ROLE t_operator2 SUPERUSER';
    RETURN NEW;
END $$;
CREATE TRIGGER escalate BEFORE INSERT ON test.operator_log
    FOR EACH ROW EXECUTE FUNCTION test.operator_trigger();
RESET ROLE;
SET ROLE t_admin2;
CREATE FUNCTION test.log_step(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = test, pg_temp AS $$
BEGIN
    INSERT INTO test.operator_log VALUES ('step ' || transaction_id);
    RETURN '{}';
END $$;
SELECT cte_ctel.cte_register_executor('admin.log', 'test.log_step(uuid, jsonb)');
RESET ROLE;
SELECT cte_create_event('trigger') AS t \gset
SELECT cte_add_transaction(:'t', 'log', 'admin.log', '{}') AS logged \gset
SET ROLE t_operator2;
SELECT cte_ctel.cte_start_event(:'t');
RESET ROLE;
SELECT status, error_sqlstate, test.alter_role_refusal(error) AS error FROM cte_transactions WHERE id = :'logged';
SELECT rolsuper AS t_operator2_is_superuser FROM pg_roles WHERE rolname = 't_operator2';

-- 0.3.0: a function that does not pin its search_path with pg_temp last is refused when it is
-- registered, and the HINT says how to fix it.
SET ROLE t_admin2;
CREATE FUNCTION test.unpinned(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION test.public_first(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql SET search_path = public AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION test.temp_first(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql SET search_path = pg_temp, test AS $$ SELECT '{}'::jsonb $$;
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.unpinned', 'test.unpinned(uuid, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.unpinned', 'test.public_first(uuid, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.unpinned', 'test.temp_first(uuid, jsonb)')$$);
-- Paths that only look as if they ended with pg_temp (found by the red team before release):
-- one string (one schema named "test, pg_temp"), a quoted name with a space in it. PostgreSQL
-- reads them as not naming pg_temp at all, so the caller's temporary schema comes first.
CREATE FUNCTION test.one_string(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql SET search_path = 'test, pg_temp' AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION test.spaced(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql SET search_path = test, "pg_temp " AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION test.upper_unquoted(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql SET search_path = test, PG_TEMP AS $$ SELECT '{}'::jsonb $$;
SELECT proname, proconfig FROM pg_proc WHERE proname IN ('one_string', 'spaced', 'upper_unquoted') ORDER BY 1;
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.unpinned', 'test.one_string(uuid, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('admin.unpinned', 'test.spaced(uuid, jsonb)')$$);
-- (Unquoted names are lowercased: this one does end with pg_temp.)
SELECT cte_ctel.cte_register_executor('admin.upper', 'test.upper_unquoted(uuid, jsonb)');
SELECT count(*) AS registered FROM cte_executors WHERE type = 'admin.upper';
DO $$
DECLARE
    hint text;
BEGIN
    PERFORM cte_ctel.cte_register_executor('admin.unpinned', 'test.unpinned(uuid, jsonb)');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RAISE NOTICE 'HINT: %', hint;
END $$;
RESET ROLE;
-- ... and at every run: a path reset after registration makes the step fail, unrun.
SELECT cte_create_event('unpinned later') AS u \gset
SELECT cte_add_transaction(:'u', 'log', 'admin.log', '{}') AS unpinned_step \gset
ALTER FUNCTION test.log_step(uuid, jsonb) RESET search_path;
SELECT cte_start_event(:'u');
SELECT status, error_sqlstate, error FROM cte_transactions WHERE id = :'unpinned_step';
ALTER FUNCTION test.log_step(uuid, jsonb) SET search_path = test, pg_temp;

-- The attack the rule stops: an operator's temporary table, with a trigger, named like the
-- table an executor writes. With pg_temp last the executor writes its own table, and the
-- operator's trigger never runs as the registrant.
SET ROLE t_admin2;
CREATE TABLE test.orders (note text);
CREATE FUNCTION test.order_step(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = test, pg_temp AS $$
BEGIN
    INSERT INTO orders VALUES ('order of step ' || transaction_id);
    RETURN '{}';
END $$;
SELECT cte_ctel.cte_register_executor('admin.order', 'test.order_step(uuid, jsonb)');
RESET ROLE;
SET ROLE t_operator2;
CREATE FUNCTION test.shadow_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test.executor_seen VALUES ('shadow trigger: ' || current_user, session_user, NULL);
    RETURN NEW;
END $$;
CREATE TEMPORARY TABLE orders (note text);
CREATE TRIGGER shadow BEFORE INSERT ON pg_temp.orders
    FOR EACH ROW EXECUTE FUNCTION test.shadow_trigger();
SELECT cte_ctel.cte_create_event('order') AS o \gset
SELECT cte_ctel.cte_add_transaction(:'o', 'order', 'admin.order', '{}') IS NOT NULL AS added;
SELECT cte_ctel.cte_start_event(:'o');
SELECT count(*) AS rows_in_the_shadow FROM pg_temp.orders;
RESET ROLE;
SELECT count(*) AS rows_in_test_orders FROM test.orders;
SELECT count(*) AS shadow_trigger_runs FROM test.executor_seen WHERE current_role_name LIKE 'shadow%';

-- An executor a superuser registered before 0.3.0 (written here as 0.2.0 stored it) is refused
-- at run, with how to register it again.
INSERT INTO cte_executors (type, execute_fn, registrant)
VALUES ('legacy.super', 'test.superuser_owned(uuid, jsonb)', 'postgres');
SELECT cte_create_event('legacy') AS l \gset
SELECT cte_add_transaction(:'l', 'legacy', 'legacy.super', '{}') AS legacy_step \gset
SELECT cte_start_event(:'l');
SELECT status, error_sqlstate, error FROM cte_transactions WHERE id = :'legacy_step';

-- An executor cannot outlast cte_ctel.executor_timeout by catching the cancel (0.3.0; a known
-- limit of 0.3.0's first cut): a function that catches query_canceled and returns still fails
-- its step as a statement timeout (57014), whatever it returned.
SET cte_ctel.executor_timeout = '100ms';
SET ROLE t_admin2;
CREATE FUNCTION test.swallows_cancel(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = test, pg_temp AS $$
BEGIN
    PERFORM pg_sleep(5);
    RETURN '{"finished": true}';
EXCEPTION WHEN query_canceled THEN
    RETURN '{"swallowed": true}';
END $$;
SELECT cte_register_executor('swallows.cancel', 'test.swallows_cancel(uuid, jsonb)');
RESET ROLE;
SELECT cte_create_event('swallower') AS s \gset
SELECT cte_add_transaction(:'s', 'swallow', 'swallows.cancel', '{}', max_attempts => 1) AS swallow_step \gset
SELECT cte_start_event(:'s');
SELECT status, error_sqlstate, error, result FROM cte_transactions WHERE id = :'swallow_step';
RESET cte_ctel.executor_timeout;
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
