-- What a DBA runs once for the examples: the extension (a superuser installs it) and an
-- application role that is NOT a superuser and gets only cte_operator (which includes
-- cte_reader). Roles are cluster-wide, so it is made only if missing.
CREATE EXTENSION IF NOT EXISTS cte_ctel;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'shop_app') THEN
        CREATE ROLE shop_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
GRANT cte_operator TO shop_app;
-- The marketplace's payouts are executed by the application's own workers (cte_ctel.Worker):
-- their step type is registered once as hosted by the application (an administrator's call;
-- false when it is already registered).
SELECT cte_ctel.cte_register_external_type('bank.payout',
    'A payout to a bank account, executed by the marketplace''s payout workers') AS registered;
