-- Re-entry (issue: a re-entrant step moved money twice). A step's code runs inside its
-- event's drive; if it calls back into the engine on that same event, starting it again would
-- run its steps a second time, and cancelling it, adding to it or holding funds for it would
-- change it under its own drive. Every such call is refused (transition_not_allowed): the step
-- fails with the refusal, and the event is compensated as for any failure. Money moves once.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;

-- An executor that does, on its own event, what its payload says.
CREATE FUNCTION test.reenter(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    event uuid := (SELECT event_id FROM cte_ctel.cte_transactions WHERE id = transaction_id);
BEGIN
    CASE payload ->> 'call'
        WHEN 'start' THEN PERFORM cte_ctel.cte_start_event(event);
        WHEN 'cancel' THEN PERFORM cte_ctel.cte_cancel_event(event, 'from inside');
        WHEN 'add' THEN PERFORM cte_ctel.cte_add_transaction(event, 'more', 'external', '{}');
        WHEN 'hold' THEN PERFORM cte_ctel.ctel_create_lien(event, 'alice', 1, 'USD');
        WHEN 'maintenance' THEN PERFORM cte_ctel.cte_run_maintenance();
        WHEN 'other event' THEN
            -- Another event is another drive: allowed.
            PERFORM cte_ctel.cte_transfer('alice', 'bob', 1, 'USD');
    END CASE;
    RETURN '{}';
END $$;
SELECT test.register_executor('test.reenter', 'test.reenter(uuid, jsonb)');

-- Each event: a 10 USD transfer, then the re-entrant step.
CREATE FUNCTION test.reentrant_event(call text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    event uuid := cte_ctel.cte_create_event('reenter ' || call);
BEGIN
    PERFORM cte_ctel.cte_add_transaction(event, 'pay', 'wallet.transfer',
        '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 10, "currency": "USD"}');
    PERFORM cte_ctel.cte_add_transaction(event, 'reenter', 'test.reenter',
        jsonb_build_object('call', call));
    RETURN event;
END $$;

SELECT call, cte_start_event(test.reentrant_event(call)) AS status
  FROM unnest(ARRAY['start', 'cancel', 'add', 'hold', 'maintenance']) AS call;
SELECT e.name, t.error_sqlstate, t.error
  FROM cte_transactions t JOIN cte_events e ON e.id = t.event_id
 WHERE t.name = 'reenter' ORDER BY e.name;
-- The transfers moved once each and were compensated: alice has her 100.
SELECT cte_balance('alice', 'USD') AS alice, cte_balance('bob', 'USD') AS bob;
SELECT count(DISTINCT e.posting_id) AS transfer_postings FROM cte_entries e JOIN cte_transactions t ON t.id = e.transaction_id
 JOIN cte_events v ON v.id = t.event_id WHERE v.name LIKE 'reenter %' AND e.kind = 'transfer';

-- Another event from inside a step is not re-entry: it runs.
SELECT cte_start_event(test.reentrant_event('other event')) AS status;
SELECT cte_balance('alice', 'USD') AS alice, cte_balance('bob', 'USD') AS bob;
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
