-- Roles (SPEC §7). Roles are cluster-wide, so they are created only if missing and are not
-- dropped with the extension. admin ⊃ operator ⊃ reader. PUBLIC gets nothing: applications
-- need no table privileges, since balances change only through the API's SECURITY DEFINER
-- functions, each with a fixed search_path.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cte_reader') THEN
        CREATE ROLE cte_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cte_operator') THEN
        CREATE ROLE cte_operator NOLOGIN IN ROLE cte_reader;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cte_admin') THEN
        CREATE ROLE cte_admin NOLOGIN IN ROLE cte_operator;
    END IF;
    -- 0.3.0: read tenancy (sql/tenancy.sql). Outside the hierarchy: a member reads only the
    -- accounts it owns once an administrator turns tenancy on; it grants nothing by itself.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cte_tenant') THEN
        CREATE ROLE cte_tenant NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA cte_ctel FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA cte_ctel FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA cte_ctel FROM PUBLIC;
REVOKE ALL ON DOMAIN cte_ctel.cte_name, cte_ctel.cte_description, cte_ctel.cte_reference,
    cte_ctel.cte_json_object, cte_ctel.cte_entry_amount, cte_ctel.cte_balance,
    cte_ctel.cte_reserved, cte_ctel.cte_positive_amount, cte_ctel.cte_event_status,
    cte_ctel.cte_step_status, cte_ctel.cte_lien_status, cte_ctel.cte_account_status FROM PUBLIC;
GRANT USAGE ON SCHEMA cte_ctel TO cte_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA cte_ctel TO cte_reader;

GRANT EXECUTE ON FUNCTION
    cte_ctel.cte_balance(text, text),
    cte_ctel.cte_available_balance(text, text),
    cte_ctel.cte_account_balances(text),
    cte_ctel.cte_verify_ledger(),
    cte_ctel.cte_error_catalog(),
    cte_ctel.cte_changes(bigint, int),
    cte_ctel.cte_event_graph(uuid, text),
    cte_ctel.cte_verify_chains(bigint, int),
    cte_ctel.cte_verify_digest(text),
    cte_ctel.cte_account_statement(text, text, timestamptz, timestamptz, bigint, int),
    cte_ctel.cte_balance_at(text, text, timestamptz),
    cte_ctel.cte_feed_head(),
    cte_ctel.cte_find_events(jsonb, uuid, int),
    cte_ctel.cte_statement_summary(text, text, timestamptz, timestamptz),
    -- Read tenancy's tests, which the tables' policies call as the reading role.
    cte_ctel.cte_reads_all(),
    cte_ctel.cte_tenant_roles(),
    cte_ctel.cte_owned_accounts(),
    cte_ctel.cte_may_read_account(text),
    cte_ctel.cte_may_read_event(uuid),
    cte_ctel.cte_may_read_change(uuid, text, uuid[])
TO cte_reader;

GRANT EXECUTE ON FUNCTION
    cte_ctel.cte_create_account(text, text[], boolean, jsonb),
    cte_ctel.cte_deposit(text, numeric, text, text),
    cte_ctel.cte_transfer(text, text, numeric, text, text, jsonb),
    cte_ctel.cte_create_event(text, text, interval, jsonb, text),
    cte_ctel.cte_add_transaction(uuid, text, text, jsonb, text, int, int),
    cte_ctel.cte_start_event(uuid, timestamptz),
    cte_ctel.cte_run_event(text, jsonb, text, interval, jsonb, timestamptz),
    cte_ctel.cte_cancel_event(uuid, text),
    cte_ctel.cte_transfers(jsonb),
    cte_ctel.cte_create_consumer(text, bigint),
    cte_ctel.cte_drop_consumer(text),
    cte_ctel.cte_consumer_next(text, int),
    cte_ctel.cte_consumer_ack(text, bigint),
    cte_ctel.cte_dry_run(uuid, text),
    cte_ctel.cte_complete_transaction(uuid, jsonb, uuid),
    cte_ctel.cte_fail_transaction(uuid, text, boolean, uuid),
    cte_ctel.cte_complete_compensation(uuid, jsonb, uuid),
    cte_ctel.cte_fail_compensation(uuid, text, uuid),
    cte_ctel.cte_claim_steps(text[], text, interval, int),
    cte_ctel.cte_extend_lease(uuid, uuid, interval),
    cte_ctel.ctel_create_lien(uuid, text, numeric, text, timestamptz, jsonb, text),
    cte_ctel.ctel_release_lien(uuid, text),
    cte_ctel.ctel_capture_lien(uuid, text, numeric, text, boolean),
    cte_ctel.cte_reverse_event(uuid, text, numeric, text, jsonb),
    cte_ctel.cte_reverse_capture(uuid, text, numeric, text),
    cte_ctel.cte_add_currency(text, text)
TO cte_operator;

-- cte_register_executor is SECURITY INVOKER: granting it lets a role register functions it
-- owns, which then run with its own rights (never the extension owner's).
GRANT EXECUTE ON FUNCTION
    cte_ctel.cte_create_currency(text, int),
    cte_ctel.cte_fold_system_balances(),
    cte_ctel.cte_register_executor(text, regprocedure, regprocedure),
    cte_ctel.cte_run_maintenance(),
    cte_ctel.cte_retry_compensation(uuid),
    cte_ctel.cte_resolve_event(uuid, text),
    cte_ctel.cte_set_limits(text, text, numeric),
    cte_ctel.cte_freeze_account(text, text),
    cte_ctel.cte_unfreeze_account(text, text),
    cte_ctel.cte_close_account(text, text),
    cte_ctel.cte_ledger_digest(),
    cte_ctel.cte_create_monitor(text, text, text, numeric),
    cte_ctel.cte_drop_monitor(uuid),
    cte_ctel.cte_register_external_type(text, text),
    cte_ctel.cte_set_read_tenancy(boolean),
    cte_ctel.cte_set_account_owner(text, text)
TO cte_admin;
