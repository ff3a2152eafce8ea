-- Privileges (SPEC §7): cte_reader reads, cte_operator calls the API, cte_admin also runs the
-- admin functions; PUBLIC gets nothing. Nobody writes the tables directly: balances change only
-- through the API's SECURITY DEFINER functions, each with a fixed search_path, so nothing a user
-- puts in public or pg_temp changes what they do.
SET search_path = cte_ctel, test;
BEGIN;
CREATE ROLE t_outsider;
CREATE ROLE t_reader IN ROLE cte_reader;
CREATE ROLE t_operator IN ROLE cte_operator;
CREATE ROLE t_admin IN ROLE cte_admin;
GRANT USAGE ON SCHEMA test TO t_outsider, t_reader, t_operator, t_admin;
GRANT EXECUTE ON FUNCTION test.refusal(text), test.ledger_state(), test.engine_state() TO PUBLIC;
GRANT ALL ON test.observed_sqlstates TO PUBLIC;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;

-- What each role is granted, from the catalog.
SELECT r.rolname,
       has_schema_privilege(r.rolname, 'cte_ctel', 'USAGE') AS schema_usage,
       has_table_privilege(r.rolname, 'cte_ctel.cte_entries', 'SELECT') AS read_journal,
       has_table_privilege(r.rolname, 'cte_ctel.cte_balances', 'INSERT, UPDATE, DELETE, TRUNCATE') AS write_balances,
       has_function_privilege(r.rolname, 'cte_ctel.cte_balance(text, text)', 'EXECUTE') AS read_balance,
       has_function_privilege(r.rolname, 'cte_ctel.cte_transfer(text, text, numeric, text, text, jsonb)', 'EXECUTE') AS transfer,
       has_function_privilege(r.rolname, 'cte_ctel.cte_create_currency(text, int)', 'EXECUTE') AS create_currency
  FROM pg_roles r WHERE r.rolname IN ('t_outsider', 't_reader', 't_operator', 't_admin')
 ORDER BY r.rolname;
-- No table, view or function of the extension grants anything to PUBLIC.
SELECT count(*) AS public_grants FROM (
    SELECT c.oid FROM pg_class c, aclexplode(c.relacl) a
     WHERE c.relnamespace = 'cte_ctel'::regnamespace AND a.grantee = 0
    UNION ALL
    SELECT p.oid FROM pg_proc p, aclexplode(p.proacl) a
     WHERE p.pronamespace = 'cte_ctel'::regnamespace AND a.grantee = 0) g;

-- Every function of the extension has a fixed search_path, and every one that reads or writes
-- its tables runs with the owner's rights.
SELECT count(*) AS functions,
       count(*) FILTER (WHERE p.proconfig IS NULL
                           OR NOT 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)) AS without_fixed_search_path
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'cte_ctel';
SELECT p.proname FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'cte_ctel'
 WHERE NOT p.prosecdef ORDER BY 1;

-- An outsider can do nothing.
SET ROLE t_outsider;
SELECT test.refusal($$SELECT cte_ctel.cte_balance('alice', 'USD')$$);
SELECT test.refusal($$SELECT count(*) FROM cte_ctel.cte_entries$$);
RESET ROLE;

-- A reader reads, and only reads.
SET ROLE t_reader;
SELECT cte_ctel.cte_balance('alice', 'USD') AS alice, (SELECT count(*) FROM cte_ctel.cte_entries) AS entries;
SELECT count(*) AS violations FROM cte_ctel.cte_verify_ledger();
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'bob', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('x')$$);
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET balance = 1000000$$);
RESET ROLE;

-- An operator moves money through the API, and cannot touch a table nor run admin functions.
SELECT cte_create_event('the administrator''s') AS admins_event \gset
SET ROLE t_operator;
SELECT cte_ctel.cte_transfer('alice', 'bob', 10, 'USD') IS NOT NULL AS transferred;
SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 5, 'USD') IS NOT NULL AS held;
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET balance = balance + 1000 WHERE account_id = 'bob'$$);
SELECT test.refusal($$INSERT INTO cte_ctel.cte_entries (posting_id, kind, account_id, currency, amount)
                      VALUES (gen_random_uuid(), 'deposit', 'bob', 'USD', 1000)$$);
SELECT test.refusal($$DELETE FROM cte_ctel.cte_liens$$);
SELECT test.refusal($$UPDATE cte_ctel.cte_events SET status = 'completed'$$);
SELECT test.refusal($$TRUNCATE cte_ctel.cte_change_log$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('XAU', 4)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_run_maintenance()$$);
SELECT test.refusal($$SELECT cte_ctel.cte_fold_system_balances()$$);
-- (It may cancel events it created: 31_cancel_by_creator. Not the administrator's.)
SELECT test.refusal(format($$SELECT cte_ctel.cte_cancel_event(%L)$$, :'admins_event'));
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('x.y', 'test.refusal(text)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_journal_append_only()$$);
RESET ROLE;

-- An admin runs the admin functions, and still cannot rewrite the journal.
SET ROLE t_admin;
SELECT cte_ctel.cte_create_currency('XAU', 4);
SELECT (cte_ctel.cte_run_maintenance() ->> 'items_failed') AS maintenance_failures;
SELECT test.refusal($$DELETE FROM cte_ctel.cte_entries$$);
SELECT test.refusal($$UPDATE cte_ctel.cte_entries SET amount = 0$$);
RESET ROLE;

-- A user who may create objects in public plants look-alikes of what the API uses: functions,
-- an operator, tables; and temporary ones in pg_temp; then calls the API with a search_path
-- that puts them first. The API does exactly what it did.
GRANT CREATE ON SCHEMA public TO t_operator;
SET ROLE t_operator;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE sql AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$;
CREATE FUNCTION public.round(numeric, int) RETURNS numeric LANGUAGE sql AS $$ SELECT 1000000::numeric $$;
CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE sql AS $$ SELECT 'mallory' $$;
CREATE FUNCTION public.evil_eq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_eq);
CREATE TABLE public.cte_balances (account_id text, currency text, balance numeric);
CREATE TEMP TABLE cte_entries (id int);
CREATE TEMP TABLE cte_accounts (id text);
SET search_path = public, pg_temp, cte_ctel;
SELECT cte_ctel.cte_transfer('alice', 'bob', 1, 'USD') IS NOT NULL AS transferred;
SELECT cte_ctel.cte_create_account('carol', ARRAY['USD']) AS opened;
SELECT currency, balance FROM cte_ctel.cte_account_balances('carol');
SELECT cte_ctel.cte_balance('alice', 'USD') AS alice, cte_ctel.cte_balance('bob', 'USD') AS bob;
RESET ROLE;
-- (Qualified names: the attacker's temp tables would capture unqualified ones here too, as
-- pg_temp is searched first for tables; the API qualifies every name for that reason.)
SELECT count(*) AS mallory_accounts FROM cte_ctel.cte_accounts WHERE id = 'mallory';
SELECT count(*) AS zero_posting_ids FROM cte_ctel.cte_entries
 WHERE posting_id = '00000000-0000-0000-0000-000000000000';
SELECT count(*) AS entries_dated_2000 FROM cte_ctel.cte_entries WHERE created_at < '2001-01-01';
SELECT * FROM cte_ctel.cte_verify_ledger();
ROLLBACK;
