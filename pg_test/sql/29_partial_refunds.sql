-- Partial refunds of events that paid out to several accounts (SPEC §9). An event that paid one
-- payer's money to several payees gives back a part from each in proportion to what it still
-- holds of what it received, in cents by largest remainder (ties to the payee paid first), in
-- one posting; `legs` name the parts instead, and are the only way for an event whose money
-- went on from a payee (escrow). 0.2.0 refused all of it: "only an event of one posting
-- between two accounts is refunded in part".
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['q-buyer', 'q-seller', 'q-market', 'q-escrow']) a ORDER BY 1;
SELECT cte_deposit('q-buyer', 500, 'USD') IS NOT NULL AS funded;

-- A checkout paying the seller 90 and the market 10 from the buyer.
SELECT status AS checkout FROM cte_run_event('checkout', '[
    {"name": "seller", "type": "wallet.transfer", "payload": {"source_account_id": "q-buyer", "destination_account_id": "q-seller", "amount": 90, "currency": "USD"}},
    {"name": "market", "type": "wallet.transfer", "payload": {"source_account_id": "q-buyer", "destination_account_id": "q-market", "amount": 10, "currency": "USD"}}]',
    'q-checkout');
SELECT id AS checkout FROM cte_events WHERE idempotency_key = 'q-checkout' \gset
-- 10.01 back: 9.009 and 1.001 are rounded by largest remainder to 9.01 and 1.00.
SELECT cte_reverse_event(:'checkout', 'one item back', 10.01, 'q-rma-1') AS part_1 \gset
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'part_1' ORDER BY j.id;
SELECT cte_reverse_event(:'checkout', 'one item back', 10.01, 'q-rma-1') = :'part_1' AS replayed;
-- The rest: each gives back what it still holds of what it received; then nothing is left.
SELECT cte_reverse_event(:'checkout', 'order cancelled') AS rest \gset
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'rest' ORDER BY j.id;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'again', 0.01)$$, :'checkout'));
SELECT account_id, balance FROM cte_ledger_balances
 WHERE account_id LIKE 'q-%' AND currency = 'USD' ORDER BY 1;

-- Through escrow: buyer -> escrow 100, escrow -> seller 90, escrow -> market 10. In part only
-- with legs; each leg is bounded by what its payee received, in the currency's scale.
SELECT status AS escrow_checkout FROM cte_run_event('escrow checkout', '[
    {"name": "hold", "type": "wallet.transfer", "payload": {"source_account_id": "q-buyer", "destination_account_id": "q-escrow", "amount": 100, "currency": "USD"}},
    {"name": "seller", "type": "wallet.transfer", "payload": {"source_account_id": "q-escrow", "destination_account_id": "q-seller", "amount": 90, "currency": "USD"}},
    {"name": "market", "type": "wallet.transfer", "payload": {"source_account_id": "q-escrow", "destination_account_id": "q-market", "amount": 10, "currency": "USD"}}]',
    'q-escrow-checkout');
SELECT id AS escrowed FROM cte_events WHERE idempotency_key = 'q-escrow-checkout' \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part', 10)$$, :'escrowed'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part', legs => '[{"account_id": "q-escrow", "amount": 1}]')$$, :'escrowed'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part', legs => '[{"account_id": "q-market", "amount": 10.01}]')$$, :'escrowed'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part', legs => '[{"account_id": "q-market", "amount": 0.001}]')$$, :'escrowed'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part', 6, legs => '[{"account_id": "q-seller", "amount": 5}]')$$, :'escrowed'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part', legs => '{"q-seller": 5}')$$, :'escrowed'));
SELECT cte_reverse_event(:'escrowed', 'a damaged item', 6, 'q-rma-2',
    '[{"account_id": "q-seller", "amount": 5}, {"account_id": "q-market", "amount": "1.00"}]') AS by_legs \gset
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'by_legs' ORDER BY j.id;
-- The same legs again replay; other legs under the reference are a conflict.
SELECT cte_reverse_event(:'escrowed', 'retried', 6, 'q-rma-2',
    '[{"account_id": "q-seller", "amount": 5}, {"account_id": "q-market", "amount": "1.00"}]') = :'by_legs' AS replayed;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'x', 6, 'q-rma-2', '[{"account_id": "q-seller", "amount": 6}]')$$, :'escrowed'));
SELECT account_id, balance FROM cte_ledger_balances
 WHERE account_id LIKE 'q-%' AND currency = 'USD' ORDER BY 1;
-- Found by the red team before release: legs gave a payer back more than it paid (x paid 10,
-- y 90, a leg of 100 went back to x); legs with unknown fields or NaN were read loosely; and a
-- proportional refund of amounts near the limits overflowed into an internal error.
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['q-x', 'q-y', 'q-b']) a ORDER BY 1;
SELECT cte_deposit('q-x', 10, 'USD') IS NOT NULL AND cte_deposit('q-y', 90, 'USD') IS NOT NULL AS funded;
SELECT status AS two_payers FROM cte_run_event('two payers', '[
    {"name": "x", "type": "wallet.transfer", "payload": {"source_account_id": "q-x", "destination_account_id": "q-b", "amount": 10, "currency": "USD"}},
    {"name": "y", "type": "wallet.transfer", "payload": {"source_account_id": "q-y", "destination_account_id": "q-b", "amount": 90, "currency": "USD"}}]',
    'q-two-payers');
SELECT id AS two FROM cte_events WHERE idempotency_key = 'q-two-payers' \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'r', NULL, NULL, '[{"account_id": "q-b", "amount": 100, "to": "q-x"}]')$$, :'two'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'r', NULL, NULL, '[{"account_id": "q-b", "amount": 1, "to": "q-x", "note": 1}]')$$, :'two'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'r', NULL, NULL, '[{"account_id": "q-b", "amount": "NaN", "to": "q-x"}]')$$, :'two'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'r', NULL, NULL, '[{"account_id": "q-b", "amount": 1, "to": 7}]')$$, :'two'));
SELECT cte_reverse_event(:'two', 'both back', NULL, NULL,
    '[{"account_id": "q-b", "amount": 10, "to": "q-x"}, {"account_id": "q-b", "amount": 90, "to": "q-y"}]') IS NOT NULL AS refunded;
SELECT cte_balance('q-x', 'USD') AS x, cte_balance('q-y', 'USD') AS y, cte_balance('q-b', 'USD') AS b;
SELECT cte_create_currency('QBIG', 12);
SELECT cte_create_account(a, ARRAY['QBIG']) FROM unnest(ARRAY['q-big', 'q-big-a', 'q-big-b']) a ORDER BY 1;
SELECT cte_deposit('q-big', 9000000000000000, 'QBIG') IS NOT NULL AS funded;
SELECT status AS big FROM cte_run_event('big', '[
    {"name": "a", "type": "wallet.transfer", "payload": {"source_account_id": "q-big", "destination_account_id": "q-big-a", "amount": 5000000000000000, "currency": "QBIG"}},
    {"name": "b", "type": "wallet.transfer", "payload": {"source_account_id": "q-big", "destination_account_id": "q-big-b", "amount": 3000000000000000, "currency": "QBIG"}}]',
    'q-big');
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'r', 1000000000000)$$,
    (SELECT id FROM cte_ctel.cte_events WHERE idempotency_key = 'q-big')));
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
