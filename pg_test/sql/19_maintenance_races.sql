-- A maintenance pass re-reads each item under its lock and acts on what is true then (issue: a
-- pass released an event's liens as it timed the event out, then expired the same liens from
-- the copy it had read before, giving the funds back twice: the account's other holds stopped
-- being reserved, and once `reserved` would go negative the whole pass rolled back on every
-- tick, forever). Here an event lien expires at the very moment its event's deadline passes,
-- next to another hold on the same wallet. Time stands still in this transaction, so both are
-- moved into the past by hand.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;
-- An event waiting on a scheduled retry (its deadline ends it compensated), with a lien.
CREATE SEQUENCE test.busy_calls;
CREATE FUNCTION test.busy(transaction_id uuid, payload jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'try later' USING ERRCODE = '40001'; END $$;
SELECT test.register_executor('test.busy', 'test.busy(uuid, jsonb)');
SELECT cte_create_event('due together', timeout => '1 minute') AS e \gset
SELECT cte_add_transaction(:'e', 'busy', 'test.busy', '{}') IS NOT NULL AS added;
SELECT ctel_create_lien(:'e', 'alice', 60, 'USD', now() + interval '1 minute') AS event_lien \gset
SELECT cte_start_event(:'e');
-- Another hold on the same wallet, not due.
SELECT ctel_create_lien(NULL, 'alice', 30, 'USD') AS other_lien \gset
SELECT cte_available_balance('alice', 'USD') AS available_before;
UPDATE cte_events SET deadline = now() - interval '1 second' WHERE id = :'e';
UPDATE cte_liens SET expires_at = now() - interval '1 second' WHERE id = :'event_lien';
SELECT r -> 'events_timed_out' AS timed_out, r -> 'liens_expired' AS expired,
       r -> 'items_failed' AS failed
  FROM cte_run_maintenance() r;
-- The event released its lien once; the other hold still reserves its 30.
SELECT CASE id WHEN :'event_lien' THEN 'event lien' ELSE 'other lien' END AS lien, status, reason
  FROM cte_liens ORDER BY 1;
SELECT balance, reserved, available FROM cte_account_balances('alice');
-- So the 30 held is not spendable: a transfer of 71 is refused, and the ledger verifies.
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'bob', 71, 'USD')$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
-- And the next passes have nothing left to do, and fail nothing.
SELECT r -> 'liens_expired' AS expired, r -> 'items_failed' AS failed FROM cte_run_maintenance() r;
ROLLBACK;
