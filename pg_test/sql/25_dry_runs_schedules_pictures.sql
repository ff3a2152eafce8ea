-- Dry runs (cte_dry_run), scheduled starts (cte_start_event(…, not_before)) and pictures of a
-- saga (cte_event_graph), SPEC §4 v2.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('d-alice', ARRAY['USD']);
SELECT cte_create_account('d-bob', ARRAY['USD']);
SELECT cte_create_account('d-fees', ARRAY['USD']);
SELECT cte_deposit('d-alice', 100, 'USD') IS NOT NULL AS funded;

-- A three-step checkout, still created: pay, a fee by a custom executor, a payout to the bank.
CREATE FUNCTION test.d_fee(transaction_id uuid, payload jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cte_ctel.cte_deposit('d-fees', (payload ->> 'fee')::numeric, 'USD');
    RETURN jsonb_build_object('fee', payload -> 'fee');
END $$;
SELECT test.register_executor('d.fee', 'test.d_fee(uuid, jsonb)');
SELECT cte_create_event('checkout') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "d-alice", "destination_account_id": "d-bob", "amount": 30, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'e', 'fee', 'd.fee', '{"fee": 1.50}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'e', 'payout', 'wallet.withdrawal',
    '{"account_id": "d-bob", "amount": 20, "currency": "USD"}') IS NOT NULL AS added;
SELECT test.ledger_state() || test.engine_state() AS before \gset

-- What it would do: every step completes, the postings, the balances it would leave.
-- (ids, new each time, are shown as <uuid>; system accounts' balances are left out, as earlier
-- files moved them.)
CREATE FUNCTION pg_temp.masked(value jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(jsonb_pretty(value), '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g') $$;
CREATE FUNCTION pg_temp.wallets(value jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT jsonb_pretty(jsonb_agg(b)) FROM jsonb_array_elements(value) b
     WHERE b ->> 'account_id' NOT LIKE '@%' $$;
SELECT r ->> 'status' AS status, pg_temp.masked(r -> 'steps') AS steps FROM cte_dry_run(:'e') r;
SELECT jsonb_pretty(r -> 'postings') AS postings, pg_temp.wallets(r -> 'balances') AS balances
  FROM cte_dry_run(:'e') r;
-- What it would do if the payout failed: the compensation path, newest first, and nothing left.
SELECT r ->> 'status' AS status, r ->> 'failed_on_purpose' AS failed_on_purpose, r ->> 'error' AS error,
       jsonb_pretty(r -> 'path') AS path, pg_temp.wallets(r -> 'balances') AS balances
  FROM cte_dry_run(:'e', 'payout') r;
-- Nothing of either was kept: the ledger and the engine are as they were, the event created.
SELECT test.ledger_state() || test.engine_state() = :'before' AS unchanged,
       (SELECT status FROM cte_events WHERE id = :'e') AS status;
-- Refused: an unknown step to fail at, an event already started, an unknown event.
SELECT test.refusal(format($$SELECT cte_ctel.cte_dry_run(%L, 'no such step')$$, :'e'));
SELECT cte_transfer('d-alice', 'd-bob', 1, 'USD') AS done \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_dry_run(%L)$$, :'done'));
SELECT test.refusal($$SELECT cte_ctel.cte_dry_run('00000000-0000-0000-0000-000000000000')$$);
-- A start the ledger would refuse is refused by the dry run too: a pending lien it cannot cover.
SELECT cte_create_event('too big') AS big \gset
SELECT ctel_create_lien(:'big', 'd-alice', 1000, 'USD') IS NOT NULL AS pending_lien;
SELECT test.refusal(format($$SELECT cte_ctel.cte_dry_run(%L)$$, :'big'));

-- The picture of the checkout after it ran, and of one that was compensated.
SELECT cte_start_event(:'e');
SELECT cte_event_graph(:'e') ~ '^flowchart LR' AS mermaid,
       cte_event_graph(:'e', 'dot') ~ '^digraph event' AS dot;
SELECT line FROM regexp_split_to_table(cte_event_graph(:'e'), '\n') AS line
 WHERE line ~ '-->|-\.->' ORDER BY line;
SELECT cte_create_event('failing') AS f \gset
SELECT cte_add_transaction(:'f', 'pay', 'wallet.transfer',
    '{"source_account_id": "d-alice", "destination_account_id": "d-bob", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'f', 'overdraw', 'wallet.transfer',
    '{"source_account_id": "d-alice", "destination_account_id": "d-bob", "amount": 9999, "currency": "USD"}') IS NOT NULL AS added;
SELECT ctel_create_lien(:'f', 'd-alice', 2, 'USD') IS NOT NULL AS held;
SELECT cte_start_event(:'f');
SELECT line FROM regexp_split_to_table(cte_event_graph(:'f'), '\n') AS line
 WHERE line ~ '-->|-\.->|style' ORDER BY line;
SELECT test.refusal(format($$SELECT cte_ctel.cte_event_graph(%L, 'svg')$$, :'f'));

-- A scheduled start: the event stays created, its start-by deadline counts from the time, its
-- lien stays pending; cancellable until then. Time stands still in this transaction, so the
-- worker's part (starting it when the time comes) is moved into the present by hand.
SELECT cte_create_event('payroll', timeout => '1 hour') AS p \gset
SELECT cte_add_transaction(:'p', 'salary', 'wallet.transfer',
    '{"source_account_id": "d-alice", "destination_account_id": "d-bob", "amount": 10, "currency": "USD"}') IS NOT NULL AS added;
SELECT ctel_create_lien(:'p', 'd-alice', 5, 'USD') IS NOT NULL AS pending_lien;
SELECT cte_start_event(:'p', now() + interval '24 hours');
SELECT status, not_before - now() AS starts_in, deadline - not_before AS start_by_after
  FROM cte_events WHERE id = :'p';
SELECT status FROM cte_liens WHERE event_id = :'p';
SELECT (cte_run_maintenance() ->> 'events_started')::int AS started_early;
-- A start is booked at most ten years ahead: later, or 'infinity', is refused with the time
-- asked for (never a day count, which would change every day), and the event keeps its
-- schedule. The times are fixed, so the messages hold on any day before 2989. ('24 hours'
-- rather than '1 day' above: a day across a change of summer time is 23 or 25 hours.)
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L, 'infinity')$$, :'p'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L, '2999-01-01 00:00:00+00')$$, :'p'));
-- The bound itself, on any day: 3654 days and an hour (87,697 hours) from now is refused (its
-- time, which moves with the clock, masked), 3653 days is booked. (The engine counts from the
-- clock, a little after this transaction's now(): exactly 3654 days would be a hair less.)
SELECT regexp_replace(
         test.refusal(format($$SELECT cte_ctel.cte_start_event(%L, now() + interval '87697 hours')$$, :'p')),
         'not_before is [^;]+;', 'not_before is <now + 3654 days 1 hour>;') AS refusal;
-- An hour past the bound is refused too (0.3.0 before: counted in whole days, anything short
-- of 3654 days passed; found by a red team).
SELECT regexp_replace(
         test.refusal(format($$SELECT cte_ctel.cte_start_event(%L, now() + interval '87673 hours')$$, :'p')),
         'not_before is [^;]+;', 'not_before is <now + 3653 days 1 hour>;') AS refusal;
SELECT cte_start_event(:'p', now() + interval '87672 hours') AS booked_at_the_bound;
SELECT not_before - now() AS starts_in FROM cte_events WHERE id = :'p';
SELECT cte_start_event(:'p', now() + interval '24 hours') AS booked_again;
SELECT status, not_before - now() AS starts_in FROM cte_events WHERE id = :'p';
-- Its time comes: maintenance starts it.
UPDATE cte_events SET not_before = now() - interval '1 second' WHERE id = :'p';
SELECT (cte_run_maintenance() ->> 'events_started')::int AS started;
SELECT status FROM cte_events WHERE id = :'p';
-- A scheduled event whose start the ledger refuses when its time comes is cancelled, with why.
SELECT cte_create_event('payroll 2') AS p2 \gset
SELECT cte_add_transaction(:'p2', 'salary', 'wallet.transfer',
    '{"source_account_id": "d-alice", "destination_account_id": "d-bob", "amount": 10, "currency": "USD"}') IS NOT NULL AS added;
SELECT ctel_create_lien(:'p2', 'd-alice', 5000, 'USD') IS NOT NULL AS pending_lien;
SELECT cte_start_event(:'p2', now() + interval '1 minute');
UPDATE cte_events SET not_before = now() - interval '1 second' WHERE id = :'p2';
SELECT (cte_run_maintenance() ->> 'events_started')::int AS started;
SELECT status, error FROM cte_events WHERE id = :'p2';
-- A scheduled event is cancellable before its time; a started one is not schedulable.
SELECT cte_create_event('payroll 3') AS p3 \gset
SELECT cte_start_event(:'p3', now() + interval '24 hours');
SELECT cte_cancel_event(:'p3', 'not needed');
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L, now() + interval '24 hours')$$, :'done'));
-- A time already past starts it at once.
SELECT cte_create_event('now') AS n \gset
SELECT cte_start_event(:'n', now() - interval '1 minute');
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
