-- Step types the application hosts (SPEC §10): once an administrator registers one, a step of
-- that type waits on the application as an external step does (its payload a JSON object
-- within the bound, never read by the ledger), is claimed by the application's workers by its
-- own name and reported under the lease, and its compensation is asked of the application. A
-- type is hosted or run by an executor, never both; bad registrations are refused and change
-- nothing.
SET search_path = cte_ctel, test;
BEGIN;
CREATE ROLE t_hosting IN ROLE cte_admin;
CREATE ROLE t_hosting_operator IN ROLE cte_operator;
GRANT USAGE, CREATE ON SCHEMA test TO t_hosting;
GRANT USAGE ON SCHEMA test TO t_hosting_operator;
GRANT EXECUTE ON FUNCTION test.refusal(text), test.ledger_state(), test.engine_state() TO PUBLIC;
GRANT ALL ON test.observed_sqlstates TO PUBLIC;
SELECT cte_create_account('h-alice', ARRAY['USD']);
SELECT cte_create_account('h-shop', ARRAY['USD']);
SELECT cte_deposit('h-alice', 100, 'USD') IS NOT NULL AS funded;

-- Unknown until registered; registered again is a replay.
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_run_event('h', '[{"name": "charge", "type": "stripe.charge", "payload": {}}]')$$);
SELECT cte_register_external_type('stripe.charge', 'a card charge made by the checkout service') AS registered;
SELECT cte_register_external_type('stripe.charge') AS registered_again;
SELECT type, description, registered_by FROM cte_external_types ORDER BY type;
-- Refused: built-in names, malformed ones, too long, NULL, a description over its bound.
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type('external')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type('wallet.transfer')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type('Stripe Charge')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type(repeat('a', 129))$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type(NULL)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type('stripe.refund', repeat('d', 1025))$$);
-- Hosted or run by an executor, never both, whichever came first.
SET ROLE t_hosting;
CREATE FUNCTION test.h_exec(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql SET search_path = test, pg_temp AS $$ SELECT '{}'::jsonb $$;
SELECT cte_ctel.cte_register_executor('fee.collect', 'test.h_exec(uuid, jsonb)');
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('stripe.charge', 'test.h_exec(uuid, jsonb)')$$);
RESET ROLE;
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type('fee.collect')$$);
SELECT type FROM cte_external_types ORDER BY type;
-- Only an administrator registers one.
SET ROLE t_hosting_operator;
SELECT test.refusal($$SELECT cte_ctel.cte_register_external_type('shipping.label')$$);
RESET ROLE;

-- A checkout: the money moves, then the charge waits for the application.
SELECT event_id AS e FROM cte_run_event('h-checkout', '[
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "h-alice",
        "destination_account_id": "h-shop", "amount": 30, "currency": "USD"}},
    {"name": "charge", "type": "stripe.charge", "payload": {"card": "tok_1"}}]') \gset
SELECT status FROM cte_events WHERE id = :'e';
SELECT name, type, phase, status FROM cte_steps_awaiting WHERE event_id = :'e';
-- Its payload is the application's, but a JSON object all the same.
SELECT cte_create_event('h-bad') AS bad \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 'c', 'stripe.charge', '"text"')$$, :'bad'));
-- Claimed by its own name (a worker of external steps does not get it), and reported.
SELECT count(*) AS claimed_as_external FROM cte_claim_steps(ARRAY['external'], 'w-external')
 WHERE event_id = :'e';
SELECT transaction_id AS step, type, phase, payload, attempt, lease_token AS token
  FROM cte_claim_steps(ARRAY['stripe.charge'], 'w-stripe') WHERE event_id = :'e' \gset
SELECT :'type' AS type, :'phase' AS phase, :'payload' AS payload, :'attempt' AS attempt;
SELECT cte_complete_transaction(:'step', '{"charge_id": "ch_1"}', :'token') AS status;
SELECT status FROM cte_events WHERE id = :'e';

-- A charge that completed, then a step that fails: its compensation is asked of the
-- application, claimed in the compensate phase and reported.
SELECT event_id AS f FROM cte_run_event('h-refused', '[
    {"name": "charge", "type": "stripe.charge", "payload": {"card": "tok_2"}},
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "h-alice",
        "destination_account_id": "h-shop", "amount": 1000, "currency": "USD"}}]') \gset
SELECT transaction_id AS step, lease_token AS token
  FROM cte_claim_steps(ARRAY['stripe.charge'], 'w-stripe') WHERE event_id = :'f' \gset
SELECT cte_complete_transaction(:'step', '{"charge_id": "ch_2"}', :'token') AS status;
SELECT status FROM cte_events WHERE id = :'f';
SELECT phase, lease_token AS token
  FROM cte_claim_steps(ARRAY['stripe.charge'], 'w-stripe') WHERE event_id = :'f' \gset
SELECT :'phase' AS phase;
SELECT cte_complete_compensation(:'step', '{"refund_id": "re_2"}', :'token') AS status;
SELECT status FROM cte_events WHERE id = :'f';
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
