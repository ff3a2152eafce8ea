-- Helpers for every test file (pg_regress runs the files in order in one database).
--   test.refusal(statement): runs a statement that must be refused and shows
--     "SQLSTATE: message" (ids masked as <uuid>), flagging [LEDGER CHANGED] if the ledger
--     differs afterwards.
--   test.ledger_state(), test.engine_state(): fingerprints of every row the ledger (money,
--     liens) and the engine (events, steps, history, executors) hold.
CREATE SCHEMA test;
CREATE TABLE test.observed_sqlstates (sqlstate text NOT NULL);

-- SECURITY DEFINER: tests that run as unprivileged roles still fingerprint the whole ledger.
CREATE FUNCTION test.ledger_state() RETURNS text LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(code || ':' || scale, ',' ORDER BY code) FROM cte_ctel.cte_currencies),
        (SELECT string_agg(id || ':' || allow_negative || ':' || COALESCE(metadata::text, '-'),
                           ',' ORDER BY id) FROM cte_ctel.cte_accounts),
        (SELECT string_agg(account_id || ':' || currency || ':' || balance || ':' || reserved,
                           ',' ORDER BY account_id, currency) FROM cte_ctel.cte_balances),
        (SELECT string_agg(account_id || ':' || currency || ':' || folded_balance,
                           ',' ORDER BY account_id, currency) FROM cte_ctel.cte_system_balances),
                (SELECT count(*)::text FROM cte_ctel.cte_entries),
                (SELECT count(*)::text FROM cte_ctel.cte_system_deltas),
        (SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM cte_ctel.cte_liens)))
$$;

CREATE FUNCTION test.engine_state() RETURNS text LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM cte_ctel.cte_events),
        (SELECT string_agg(id || ':' || status || ':' || attempts, ',' ORDER BY id)
           FROM cte_ctel.cte_transactions),
        (SELECT count(*)::text FROM cte_ctel.cte_event_history),
        (SELECT string_agg(type, ',' ORDER BY type) FROM cte_ctel.cte_executors)))
$$;

CREATE FUNCTION test.refusal(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    before text := test.ledger_state() || test.engine_state();
BEGIN
    EXECUTE statement;
    RETURN 'NOT REFUSED: ' || statement;
EXCEPTION WHEN OTHERS THEN
    INSERT INTO test.observed_sqlstates VALUES (SQLSTATE);
    -- Ids are random: messages show them as <uuid> so the expected output is stable.
    RETURN SQLSTATE || ': '
        || regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
                          '<uuid>', 'g')
                || CASE WHEN test.ledger_state() || test.engine_state() = before THEN ''
                ELSE ' [LEDGER CHANGED]' END;
END
$$;

-- test.register_executor(type, execute_fn, compensate_fn): registers a custom step type as
-- SPEC §12 asks, for the files whose subject is not the rule itself: as test_registrar, a role
-- that is not a superuser, which is given both functions, each pinned to its own schema and
-- pg_temp last. (17_executor_privileges shows every refusal of a registration that is not so.)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'test_registrar') THEN
        CREATE ROLE test_registrar NOLOGIN;
    END IF;
END $$;
-- Quietly: 15 says when the role is a member already (a rerun), 16 and later do not.
SET client_min_messages = warning;
GRANT cte_admin TO test_registrar;
RESET client_min_messages;
GRANT USAGE ON SCHEMA test TO test_registrar;
GRANT ALL ON ALL TABLES IN SCHEMA test TO test_registrar;
ALTER DEFAULT PRIVILEGES IN SCHEMA test GRANT ALL ON TABLES TO test_registrar;
ALTER DEFAULT PRIVILEGES IN SCHEMA test GRANT ALL ON SEQUENCES TO test_registrar;
CREATE FUNCTION test.register_executor(step_type text, execute_fn regprocedure,
                                       compensate_fn regprocedure DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    f regprocedure;
BEGIN
    FOREACH f IN ARRAY array_remove(ARRAY[execute_fn, compensate_fn], NULL) LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO test_registrar', f);
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f,
                       (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                         WHERE p.oid = f));
    END LOOP;
    SET ROLE test_registrar;
    PERFORM cte_ctel.cte_register_executor(step_type, execute_fn, compensate_fn);
    RESET ROLE;
END $$;

-- The extension is installed (pg_regress --load-extension) with its schema and roles.
SELECT extname, extversion, nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'cte_ctel';
SELECT rolname FROM pg_roles WHERE rolname LIKE 'cte\_%' ORDER BY rolname;
