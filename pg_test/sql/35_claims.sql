-- Steps claimed by the application's workers, with leases (SPEC §10). A waiting external step
-- goes to one worker at a time; its reports carry the lease's token; a lease that runs out is a
-- try-again failure of that attempt (the step is claimable again with attempt + 1 after its
-- retry), and at the last attempt the step fails for good and its event compensates. Time is
-- moved by hand: a lease is made to run out by setting its end in the past.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['w-shop', 'w-bank']) a ORDER BY 1;
SELECT cte_deposit('w-shop', 100, 'USD') IS NOT NULL AS funded;
SELECT event_id AS payout FROM cte_run_event('payout', '[
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "w-shop", "destination_account_id": "w-bank", "amount": 10, "currency": "USD"}},
    {"name": "bank", "type": "external", "payload": {"rail": "sepa"}, "max_attempts": 2}]', 'w-payout') \gset

-- One worker gets it; another finds nothing to claim.
SELECT transaction_id AS bank, type, phase, payload, attempt, lease_token AS token
  FROM cte_claim_steps(ARRAY['external'], 'worker-a', '1 minute') \gset
SELECT :'type' AS type, :'phase' AS phase, :'payload' AS payload, :'attempt' AS attempt;
SELECT count(*) AS for_worker_b FROM cte_claim_steps(ARRAY['external'], 'worker-b');
SELECT lease_worker, lease_expires_at IS NOT NULL AS leased FROM cte_steps_awaiting WHERE transaction_id = :'bank';
-- A report without the token, or with another, is refused while the lease holds; changes nothing.
SELECT test.refusal(format($$SELECT cte_ctel.cte_complete_transaction(%L)$$, :'bank'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_complete_transaction(%L, NULL, gen_random_uuid())$$, :'bank'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_extend_lease(%L, gen_random_uuid())$$, :'bank'));
SELECT cte_extend_lease(:'bank', :'token', '2 minutes') > now() AS extended;

-- The lease runs out: a try-again failure; after its retry the step is claimable again, attempt 2.
UPDATE cte_transactions SET lease_expires_at = clock_timestamp() - interval '1 second' WHERE id = :'bank';
SELECT (cte_run_maintenance() ->> 'leases_expired')::int AS leases_expired;
SELECT status, attempts, next_attempt_at IS NOT NULL AS retry_scheduled, error FROM cte_transactions WHERE id = :'bank';
-- The worker that stalled reports under its old token: refused, it was not the holder any more.
SELECT test.refusal(format($$SELECT cte_ctel.cte_complete_transaction(%L, NULL, %L)$$, :'bank', :'token'));
UPDATE cte_transactions SET next_attempt_at = clock_timestamp() - interval '1 second' WHERE id = :'bank';
SELECT (cte_run_maintenance() ->> 'events_retried')::int AS retried;
SELECT attempt, lease_token AS token2 FROM cte_claim_steps(ARRAY['external'], 'worker-b') \gset
SELECT :'attempt' AS attempt;
-- Its last attempt's lease runs out too: the step fails for good, the event compensates.
UPDATE cte_transactions SET lease_expires_at = clock_timestamp() - interval '1 second' WHERE id = :'bank';
SELECT (cte_run_maintenance() ->> 'leases_expired')::int AS leases_expired;
SELECT e.status AS event, t.status AS step, t.attempts FROM cte_events e JOIN cte_transactions t ON t.event_id = e.id
 WHERE t.id = :'bank';
SELECT cte_balance('w-shop', 'USD') AS shop, cte_balance('w-bank', 'USD') AS bank_account;

-- A compensation is claimed too (phase compensate), and reported under its lease.
SELECT event_id AS second FROM cte_run_event('second payout', '[
    {"name": "bank", "type": "external", "payload": {"rail": "swift"}}]', 'w-payout-2') \gset
SELECT cte_cancel_event(:'second', 'customer cancelled');
SELECT transaction_id AS step2, phase, lease_token AS token3 FROM cte_claim_steps(ARRAY['external'], 'worker-a') \gset
SELECT :'phase' AS phase;
SELECT cte_complete_compensation(:'step2', '{"reversed": true}', :'token3');
SELECT lease_token IS NULL AS lease_ended FROM cte_transactions WHERE id = :'step2';
-- Bad arguments.
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_claim_steps(ARRAY['external'], 'w', '0 seconds')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_claim_steps(ARRAY['external'], '', '1 minute')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_claim_steps(NULL, 'w')$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
