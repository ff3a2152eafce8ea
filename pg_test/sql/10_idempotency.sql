-- Idempotency: the same idempotency key returns the same event (and so applies nothing
-- twice); the same key for another event is refused. A payload's reference is unique per
-- step type among steps that did not fail.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);

SELECT cte_create_event('deposit', idempotency_key => 'req-1') AS first \gset
SELECT cte_create_event('deposit', idempotency_key => 'req-1') AS again \gset
SELECT :'first' = :'again' AS same_event;
SELECT count(*) AS events_with_key FROM cte_events WHERE idempotency_key = 'req-1';
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('withdrawal', idempotency_key => 'req-1')$$);

-- A retried request finds its event already done and posts nothing twice.
SELECT cte_add_transaction(:'first', 'in', 'wallet.deposit',
    '{"account_id": "alice", "amount": 10, "currency": "USD", "reference": "bank-1"}') IS NOT NULL AS added;
SELECT cte_start_event(:'first');
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L)$$,
    cte_create_event('deposit', idempotency_key => 'req-1')));
SELECT cte_balance('alice', 'USD') AS alice_once;

-- A second deposit with the same reference is refused: in an event (duplicate_reference), or
-- through cte_deposit, whose key the reference is and which another call holds
-- (idempotency_conflict; 27_retries shows the replay of the same cte_deposit).
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('again'), 'in',
    'wallet.deposit', '{"account_id": "alice", "amount": 10, "currency": "USD", "reference": "bank-1"}')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 10, 'USD', 'bank-1')$$);
-- The same reference on another step type is another reference.
SELECT cte_transfer('alice', 'bob', 1, 'USD', 'bank-1') IS NOT NULL AS transferred;

-- A step that failed frees its reference.
SELECT cte_create_event('too big') AS big \gset
SELECT cte_add_transaction(:'big', 'pay', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 500, "currency": "USD", "reference": "pay-9"}') IS NOT NULL AS added;
SELECT cte_start_event(:'big');
SELECT cte_transfer('alice', 'bob', 2, 'USD', 'pay-9') IS NOT NULL AS reference_reused;

-- Keys and names are bounded and printable.
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('x', idempotency_key => repeat('k', 129))$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('x', timeout => '0 seconds')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('x', timeout => '31 days')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('x', metadata => '[]')$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
