-- wallet.split (SPEC §11): one posting that debits the source once and credits each leg, by
-- amount or by percent (shared in cents by largest remainder, ties to the earlier leg), what is
-- left going to the remainder account. Checked when the step is added; compensated and refunded
-- as the one posting it is.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['s-buyer', 's-seller', 's-market', 's-platform', 's-tax']) a ORDER BY 1;
SELECT cte_deposit('s-buyer', 500, 'USD') IS NOT NULL AS funded;

SELECT status FROM cte_run_event('checkout', '[{"name": "split", "type": "wallet.split", "payload": {
    "source_account_id": "s-buyer", "currency": "USD", "amount": "100.01", "reference": "s-order-1",
    "legs": [{"account_id": "s-seller", "percent": 90}, {"account_id": "s-market", "percent": 7.5},
             {"account_id": "s-tax", "amount": "1.00"}],
    "remainder_account_id": "s-platform"}}]', 's-checkout');
SELECT id AS checkout FROM cte_events WHERE idempotency_key = 's-checkout' \gset
-- One posting. 90% of 100.01 is 90.009 and 7.5% is 7.50075: together 97.50975, rounded to
-- 97.51, shared by largest remainder as 90.01 and 7.50; the tax leg takes 1.00 and the platform
-- the 1.50 left.
SELECT count(DISTINCT j.posting_id) AS postings FROM cte_entries j
  JOIN cte_transactions t ON t.id = j.transaction_id WHERE t.event_id = :'checkout';
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'checkout' ORDER BY j.id;
-- Refunded in part: from each payee in proportion to what it received.
SELECT cte_reverse_event(:'checkout', 'one item back', 10, 's-rma-1') AS part \gset
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'part' ORDER BY j.id;

-- Compensated as one posting when a later step fails.
SELECT status FROM cte_run_event('checkout that fails', '[
    {"name": "split", "type": "wallet.split", "payload": {"source_account_id": "s-buyer", "currency": "USD",
     "amount": 20, "legs": [{"account_id": "s-seller", "percent": 50}, {"account_id": "s-market", "percent": 50}]}},
    {"name": "too much", "type": "wallet.transfer", "payload": {"source_account_id": "s-seller",
     "destination_account_id": "s-buyer", "amount": 100000, "currency": "USD"}}]', 's-checkout-2');
SELECT account_id, balance FROM cte_ledger_balances WHERE account_id LIKE 's-%' ORDER BY 1;

-- Refused when added, nothing written: legs that leave something with no remainder account,
-- legs over the amount, a leg with both or neither, a bad percent, a split to itself.
SELECT cte_create_event('bad splits') AS bad \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "amount": 9}]}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "amount": 9}, {"account_id": "s-market", "percent": 20}], "remainder_account_id": "s-platform"}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller"}], "remainder_account_id": "s-platform"}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "percent": "12.123456"}], "remainder_account_id": "s-platform"}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-buyer", "amount": 10}]}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "amount": 5}], "remainder_account_id": "s-seller"}'));
-- Hostile legs: 10,000 of them (over the 1,000 a split may have), a percent over 100, a zero
-- leg, a negative leg, a negative percent, legs that are not an array.
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    jsonb_build_object('source_account_id', 's-buyer', 'currency', 'USD', 'amount', 100000,
                       'remainder_account_id', 's-platform',
                       'legs', (SELECT jsonb_agg(jsonb_build_object('account_id', 's-seller', 'amount', '0.01'))
                                  FROM generate_series(1, 10000)))));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "percent": 101}], "remainder_account_id": "s-platform"}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "amount": 0}], "remainder_account_id": "s-platform"}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "amount": -5}], "remainder_account_id": "s-platform"}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": [{"account_id": "s-seller", "percent": -10}], "remainder_account_id": "s-platform"}'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.split', %L)$$, :'bad',
    '{"source_account_id": "s-buyer", "currency": "USD", "amount": 10, "legs": {"account_id": "s-seller", "amount": 5}, "remainder_account_id": "s-platform"}'));
SELECT count(*) AS steps_of_bad FROM cte_transactions WHERE event_id = :'bad';
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
