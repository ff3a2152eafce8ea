-- After ALTER EXTENSION cte_ctel UPDATE: the upgraded database keeps working. Each check prints
-- one line "ok - ..." or "not ok - ...". Run with psql -X -q -t -A.
\set ON_ERROR_STOP on
SET search_path = cte_ctel, public;
SELECT CASE WHEN extversion = :'version' THEN 'ok' ELSE 'not ok' END
       || ' - the extension is at ' || :'version' || ' (it is ' || extversion || ')'
  FROM pg_extension WHERE extname = 'cte_ctel';
SELECT CASE WHEN count(*) = 0 THEN 'ok' ELSE 'not ok' END
       || ' - the upgraded ledger verifies (' || count(*) || ' violations)'
  FROM cte_verify_ledger();
-- The entries written on 0.1.0 were chained by the upgrade: every wallet entry has a link that
-- checks, and a digest taken now holds.
SELECT CASE WHEN c.broken_entry_id IS NULL AND c.entries_checked > 0
             AND c.entries_checked = (SELECT count(*) FROM cte_entries WHERE balance_after IS NOT NULL)
             AND (SELECT count(*) FROM cte_entries j LEFT JOIN cte_entry_links m ON m.entry_id = j.id
                   WHERE j.balance_after IS NOT NULL AND COALESCE(j.link, m.link) IS NULL) = 0
            THEN 'ok' ELSE 'not ok' END
       || ' - the ' || c.entries_checked || ' wallet entries from before the upgrade are chained and every link checks'
  FROM cte_verify_chains(0, 100000) c;
SELECT cte_ledger_digest() AS digest \gset
-- New money moves.
SELECT cte_balance('u-bob', 'USD') AS bob_before \gset
SELECT cte_transfer('u-alice', 'u-bob', 1.00, 'USD', 'after-upgrade-1') IS NOT NULL AS moved \gset
SELECT CASE WHEN :'moved' AND cte_balance('u-bob', 'USD') = :bob_before + 1 THEN 'ok' ELSE 'not ok' END
       || ' - a transfer after the upgrade posts';
-- The payout that waited through the upgrade completes on its callback, and its hold is captured.
SELECT cte_balance('u-bob', 'USD') AS bob_before \gset
SELECT t.id AS bank FROM cte_transactions t JOIN cte_events e ON e.id = t.event_id
 WHERE e.idempotency_key = 'payout-1' AND t.name = 'bank' \gset
SELECT CASE WHEN cte_complete_transaction(:'bank', '{"bank_ref": "b-1"}') = 'completed'
            THEN 'ok' ELSE 'not ok' END || ' - the event waiting across the upgrade completes on its callback';
SELECT CASE WHEN cte_balance('u-bob', 'USD') = :bob_before - 30
             AND cte_available_balance('u-bob', 'USD') = :bob_before - 30
            THEN 'ok' ELSE 'not ok' END || ' - its withdrawal is posted and its hold gone';
-- The executor a superuser registered before 0.3.0 is refused at run (SPEC §12: a superuser's
-- executor would run every trigger it reaches as superuser), its step failing with the reason;
-- registered again as the release notes say, by a dedicated role that owns its functions
-- pinned to their schema and pg_temp, it runs.
SELECT cte_create_event('after-upgrade') AS e \gset
SELECT cte_add_transaction(:'e', 'fee', 'fee.note', '{"fee": 2}') AS fee_step \gset
-- (Two statements: a subquery beside cte_start_event() would read the statement's snapshot,
-- taken before the start wrote the step's failure.)
SELECT cte_start_event(:'e') AS started \gset
SELECT CASE WHEN :'started' = 'compensated'
             AND (SELECT error_sqlstate = 'L0030' AND error LIKE '%is a superuser%'
                    FROM cte_transactions WHERE id = :'fee_step')
            THEN 'ok' ELSE 'not ok' END
       || ' - an executor a superuser registered before the upgrade is refused at run';
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'fees_executor') THEN
        CREATE ROLE fees_executor NOLOGIN IN ROLE cte_admin;
    END IF;
END $$;
ALTER FUNCTION public.upgrade_fee(uuid, jsonb) OWNER TO fees_executor;
ALTER FUNCTION public.upgrade_fee(uuid, jsonb) SET search_path = public, pg_temp;
ALTER FUNCTION public.upgrade_fee_undo(uuid, jsonb, jsonb) OWNER TO fees_executor;
ALTER FUNCTION public.upgrade_fee_undo(uuid, jsonb, jsonb) SET search_path = public, pg_temp;
SET ROLE fees_executor;
SELECT cte_register_executor('fee.note', 'public.upgrade_fee(uuid, jsonb)',
                             'public.upgrade_fee_undo(uuid, jsonb, jsonb)') IS NULL AS registered \gset
RESET ROLE;
SELECT cte_create_event('after-upgrade, registered again') AS e \gset
SELECT cte_add_transaction(:'e', 'fee', 'fee.note', '{"fee": 2}') IS NOT NULL AS added \gset
SELECT CASE WHEN cte_start_event(:'e') = 'completed' THEN 'ok' ELSE 'not ok' END
       || ' - registered again by a dedicated role, the executor runs';
SELECT CASE WHEN count(*) = 0 THEN 'ok' ELSE 'not ok' END
       || ' - the ledger verifies after the new work (' || count(*) || ' violations)'
  FROM cte_verify_ledger();
SELECT CASE WHEN cte_verify_digest(:'digest') THEN 'ok' ELSE 'not ok' END
       || ' - the ledger after the new work extends the digest taken right after the upgrade';
