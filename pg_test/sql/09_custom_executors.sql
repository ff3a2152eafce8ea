-- Custom step types: a pair of functions in any PL, registered with cte_register_executor.
-- execute_fn(transaction_id, payload) returns the step's result (raising is a failure);
-- compensate_fn(transaction_id, payload, result) undoes it. Both run in the step's
-- subtransaction. Retryable failures (40001, 40P01, 55P03, 57014) are retried with backoff.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_create_account('fees', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;

-- The seed's fee.collection, in PL/pgSQL: it moves the fee with cte_transfer and, when
-- compensated, moves it back.
CREATE FUNCTION test.fee_collection(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cte_ctel.cte_transfer(payload->>'account_id', 'fees', (payload->>'amount')::numeric,
                                  payload->>'currency', 'fee:' || transaction_id);
    RETURN jsonb_build_object('status', 'completed', 'fee_type', payload->>'fee_type');
END
$$;
CREATE FUNCTION test.fee_refund(transaction_id uuid, payload jsonb, result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cte_ctel.cte_transfer('fees', payload->>'account_id', (payload->>'amount')::numeric,
                                  payload->>'currency', 'refund:' || transaction_id);
END
$$;
SELECT test.register_executor('fee.collection', 'test.fee_collection(uuid, jsonb)',
                             'test.fee_refund(uuid, jsonb, jsonb)');
SELECT type, execute_fn, compensate_fn FROM cte_executors ORDER BY type;

SELECT cte_create_event('fee then pay') AS e \gset
SELECT cte_add_transaction(:'e', 'fee', 'fee.collection',
    '{"account_id": "alice", "amount": "1.50", "currency": "USD", "fee_type": "service"}') IS NOT NULL AS added;
SELECT cte_start_event(:'e');
SELECT name, status, result FROM cte_transactions WHERE event_id = :'e';
SELECT cte_balance('alice', 'USD') AS alice, cte_balance('fees', 'USD') AS fees;

-- The fee is refunded when a later step fails.
SELECT cte_create_event('fee then fail') AS f \gset
SELECT cte_add_transaction(:'f', 'fee', 'fee.collection',
    '{"account_id": "alice", "amount": "2.00", "currency": "USD", "fee_type": "service"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'f', 'pay too much', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 5000, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'f');
SELECT name, status FROM cte_transactions WHERE event_id = :'f' ORDER BY "order";
SELECT cte_balance('alice', 'USD') AS alice, cte_balance('fees', 'USD') AS fees;

-- An executor that raises: the step fails with its SQLSTATE, nothing of it remains, and the
-- steps before it are compensated.
CREATE FUNCTION test.card_declined(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test.observed_sqlstates VALUES ('written by a failing step');
    RAISE EXCEPTION 'card % declined', payload->>'card' USING ERRCODE = 'P0001';
END
$$;
SELECT test.register_executor('card.charge', 'test.card_declined(uuid, jsonb)');
SELECT cte_create_event('charge') AS c \gset
SELECT cte_add_transaction(:'c', 'pay bob', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 3, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'c', 'charge card', 'card.charge', '{"card": "4242"}') IS NOT NULL AS added;
SELECT cte_start_event(:'c');
SELECT name, status, attempts, error_sqlstate, error FROM cte_transactions WHERE event_id = :'c' ORDER BY "order";
SELECT count(*) AS rows_left_by_failing_step FROM test.observed_sqlstates
 WHERE sqlstate = 'written by a failing step';
SELECT cte_balance('bob', 'USD') AS bob;

-- An executor that fails twice with a serialization failure, then succeeds. With no backoff
-- the retries run at once, within the same call.
CREATE SEQUENCE test.flaky_calls;
CREATE FUNCTION test.flaky(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    call bigint := nextval('test.flaky_calls');  -- sequences are not rolled back
BEGIN
    IF call <= 2 THEN
        RAISE EXCEPTION 'conflict on call %', call USING ERRCODE = '40001';
    END IF;
    RETURN jsonb_build_object('succeeded_on_call', call);
END
$$;
SELECT test.register_executor('flaky.step', 'test.flaky(uuid, jsonb)');
-- With no backoff a retry is due at once, but it never runs in the drive that scheduled it (a
-- deadlock retried inside the same transaction would meet the same locks): the next
-- maintenance pass (the worker) runs it.
SET LOCAL cte_ctel.retry_backoff_ms = 0;
SELECT cte_create_event('flaky') AS k \gset
SELECT cte_add_transaction(:'k', 'try hard', 'flaky.step', '{}') IS NOT NULL AS added;
SELECT cte_start_event(:'k');
SELECT status, attempts, max_attempts FROM cte_transactions WHERE event_id = :'k';
SELECT cte_run_maintenance() ->> 'events_retried' AS retried;
SELECT cte_run_maintenance() ->> 'events_retried' AS retried;
SELECT status, attempts, max_attempts, result FROM cte_transactions WHERE event_id = :'k';

-- An executor that always fails retryably runs out of attempts and the event is compensated.
CREATE FUNCTION test.always_busy(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'deadlock, again' USING ERRCODE = '40P01';
END
$$;
SELECT test.register_executor('busy.step', 'test.always_busy(uuid, jsonb)');
SELECT cte_create_event('busy') AS b \gset
SELECT cte_add_transaction(:'b', 'pay bob', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'b', 'never works', 'busy.step', '{}', max_attempts => 3) IS NOT NULL AS added;
SELECT cte_start_event(:'b');
SELECT cte_run_maintenance() ->> 'events_retried' AS retried;
SELECT cte_run_maintenance() ->> 'events_retried' AS retried;
SELECT name, status, attempts, error_sqlstate FROM cte_transactions WHERE event_id = :'b' ORDER BY "order";
SELECT status FROM cte_events WHERE id = :'b';

-- With a backoff, a retryable failure leaves the event waiting until the retry is due; then
-- maintenance runs it. Time is frozen in this transaction, so the retry is made due by hand.
-- Each wait doubles the one before, up to cte_ctel.retry_backoff_max_ms (raised here from its
-- one-minute default so that the doubling shows).
SET LOCAL cte_ctel.retry_backoff_ms = 60000;
SET LOCAL cte_ctel.retry_backoff_max_ms = 600000;
ALTER SEQUENCE test.flaky_calls RESTART;
SELECT cte_create_event('flaky later') AS l \gset
SELECT cte_add_transaction(:'l', 'try later', 'flaky.step', '{}', max_attempts => 5) AS lx \gset
SELECT cte_start_event(:'l');
-- (Retry times are kept to the millisecond.)
SELECT status, attempts, round(extract(epoch FROM next_attempt_at - now())) AS retry_in_seconds
  FROM cte_transactions WHERE id = :'lx';
SELECT cte_run_maintenance() ->> 'events_retried' AS retried_before_due;
UPDATE cte_transactions SET next_attempt_at = now() WHERE id = :'lx';
SELECT cte_run_maintenance() ->> 'events_retried' AS retried_when_due;
SELECT status, attempts, round(extract(epoch FROM next_attempt_at - now())) AS retry_in_seconds
  FROM cte_transactions WHERE id = :'lx';
UPDATE cte_transactions SET next_attempt_at = now() WHERE id = :'lx';
SELECT cte_run_maintenance() ->> 'events_retried' AS retried_when_due;
SELECT status, attempts, result FROM cte_transactions WHERE id = :'lx';
SELECT status FROM cte_events WHERE id = :'l';

-- A compensation that fails for a "try again" reason (here a serialization failure) did not
-- fail: the call that ran it is refused with that code and nothing of it is kept, so the event
-- is not left failed for an operator; once the cause is gone, the same call compensates it.
CREATE FUNCTION test.undo_busy(transaction_id uuid, payload jsonb, result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('test.undo_busy', true) = 'on' THEN
        RAISE EXCEPTION 'could not serialize, try again' USING ERRCODE = '40001';
    END IF;
END
$$;
CREATE FUNCTION test.noted(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT '{"noted": true}'::jsonb $$;
SELECT test.register_executor('note.busy_undo', 'test.noted(uuid, jsonb)', 'test.undo_busy(uuid, jsonb, jsonb)');
SELECT cte_create_event('undo later') AS u \gset
SELECT cte_add_transaction(:'u', 'note', 'note.busy_undo', '{}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'u', 'payout', 'external', '{}') AS ux \gset
SELECT cte_start_event(:'u');
SET LOCAL test.undo_busy = 'on';
SELECT test.refusal(format($$SELECT cte_ctel.cte_fail_transaction(%L, 'declined')$$, :'ux'));
SELECT e.status AS event, t.status AS payout
  FROM cte_events e JOIN cte_transactions t ON t.event_id = e.id AND t.id = :'ux' WHERE e.id = :'u';
-- Not forever: past cte_ctel.compensation_timeout (one hour) after the event's deadline, such
-- a failure counts as final and the event is left failed for an operator.
SAVEPOINT late;
UPDATE cte_events SET deadline = now() - interval '2 hours' WHERE id = :'u';
SELECT cte_fail_transaction(:'ux', 'declined') AS long_past_its_deadline;
SELECT status, error FROM cte_events WHERE id = :'u';
ROLLBACK TO SAVEPOINT late;
SET LOCAL test.undo_busy = 'off';
SELECT cte_fail_transaction(:'ux', 'declined');

-- Registration refusals.
SET ROLE test_registrar;
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('wallet.transfer', 'test.flaky(uuid, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('Bad Name', 'test.flaky(uuid, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('fee.wrong', 'test.fee_refund(uuid, jsonb, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('fee.wrong', 'test.flaky(uuid, jsonb)', 'test.flaky(uuid, jsonb)')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('fee.wrong', 'test.missing(uuid, jsonb)')$$);
RESET ROLE;
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 's', 'not.registered', '{}')$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
