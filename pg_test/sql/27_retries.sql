-- Every write is safe to retry (SPEC §9): the same key with the same request is a replay (the
-- first call's result, nothing moves, no error); the same key with another request is an
-- idempotency_conflict naming the key, its HINT naming the original. Each case below was a
-- bug of 0.2.0 (54762cd): a retried capture charged twice, a full refund of money that went
-- on through an escrow account was refused, a retried refund was refused, an event's key
-- returned the old event for a different request.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('y-buyer', ARRAY['USD']);
SELECT cte_create_account('y-escrow', ARRAY['USD']);
SELECT cte_create_account('y-seller', ARRAY['USD']);
SELECT cte_create_account('y-market', ARRAY['USD']);
SELECT cte_deposit('y-buyer', 500, 'USD', 'y-topup') IS NOT NULL AS funded;

-- A capture sent twice (a timeout, then a retry): one capture, the same id.
SELECT ctel_create_lien(NULL, 'y-buyer', 100, 'USD') AS hold \gset
SELECT ctel_capture_lien(:'hold', 'y-seller', 20, 'ship-1', false) AS capture_1 \gset
SELECT test.ledger_state() AS before_replay \gset
SELECT ctel_capture_lien(:'hold', 'y-seller', 20, 'ship-1', false) = :'capture_1' AS same_capture,
       test.ledger_state() = :'before_replay' AS nothing_moved;
SELECT ctel_capture_lien(:'hold', 'y-seller', 20.00, 'ship-1', false) = :'capture_1' AS same_amount_other_digits;
SELECT amount, captured_amount, status FROM cte_liens WHERE id = :'hold';
-- The same reference for another request is a conflict (amount, destination, final), and
-- changes nothing.
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'y-seller', 25, 'ship-1', false)$$, :'hold'));
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'y-market', 20, 'ship-1', false)$$, :'hold'));
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'y-seller', 20, 'ship-1', true)$$, :'hold'));
-- The HINT names the original capture's posting.
DO $$
DECLARE
    hint text;
BEGIN
    PERFORM cte_ctel.ctel_capture_lien(
        (SELECT id FROM cte_ctel.cte_liens WHERE account_id = 'y-buyer' AND amount = 100),
        'y-seller', 25, 'ship-1', false);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RAISE NOTICE 'hint names the first capture: %', hint LIKE '%' || (
        SELECT posting_id::text FROM cte_ctel.cte_entries WHERE reference = 'ship-1' LIMIT 1) || '%';
END $$;
-- A final capture, then its replay after it ended the lien: the same id, nothing more.
SELECT ctel_capture_lien(:'hold', 'y-seller', 30, 'ship-2', true) AS capture_2 \gset
SELECT ctel_capture_lien(:'hold', 'y-seller', 30, 'ship-2', true) = :'capture_2' AS same_final_capture;
SELECT amount, captured_amount, status FROM cte_liens WHERE id = :'hold';
SELECT cte_balance('y-buyer', 'USD') AS buyer, cte_available_balance('y-buyer', 'USD') AS buyer_available,
       cte_balance('y-seller', 'USD') AS seller;
-- A capture replayed after its lien expired (the reply was lost, the hold ran out meanwhile)
-- returns the first capture: the key is read before the lien's state.
SELECT ctel_create_lien(NULL, 'y-buyer', 4, 'USD', now() + interval '1 hour') AS short_hold \gset
SELECT ctel_capture_lien(:'short_hold', 'y-seller', 1, 'ship-x', false) AS short_capture \gset
UPDATE cte_liens SET expires_at = clock_timestamp() - interval '1 second' WHERE id = :'short_hold';
SELECT (cte_run_maintenance() ->> 'liens_expired')::int >= 1 AS expired;
SELECT status FROM cte_liens WHERE id = :'short_hold';
SELECT ctel_capture_lien(:'short_hold', 'y-seller', 1, 'ship-x', false) = :'short_capture' AS same_capture;
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'y-seller', 1, 'ship-y', false)$$, :'short_hold'));
-- A reference is unique per lien: another lien may use it.
SELECT ctel_create_lien(NULL, 'y-buyer', 10, 'USD') AS hold_2 \gset
SELECT ctel_capture_lien(:'hold_2', 'y-seller', 10, 'ship-1') IS NOT NULL AS other_lien_same_reference;
-- A release sent twice: the second returns without error and changes nothing.
SELECT ctel_create_lien(NULL, 'y-buyer', 5, 'USD') AS hold_3 \gset
SELECT ctel_release_lien(:'hold_3', 'not needed');
SELECT test.ledger_state() AS before_release_replay \gset
SELECT ctel_release_lien(:'hold_3', 'not needed');
SELECT test.ledger_state() = :'before_release_replay' AS release_replay_changed_nothing,
       (SELECT count(*) FROM cte_event_history WHERE lien_id = :'hold_3') AS lien_changes;

-- A lien's key replayed after its event ended returns the lien (0.2.0 checked the event first
-- and refused: transition_not_allowed).
SELECT cte_create_event('held order') AS held_order \gset
SELECT cte_add_transaction(:'held_order', 'ship', 'external', '{}') IS NOT NULL AS added;
SELECT ctel_create_lien(:'held_order', 'y-buyer', 2, 'USD', idempotency_key => 'y-hold-e') AS event_hold \gset
SELECT cte_start_event(:'held_order');
SELECT cte_cancel_event(:'held_order', 'out of stock');
SELECT cte_complete_compensation((SELECT id FROM cte_transactions WHERE event_id = :'held_order'));
SELECT e.status AS event, l.status AS lien FROM cte_events e JOIN cte_liens l ON l.event_id = e.id
 WHERE l.id = :'event_hold';
SELECT ctel_create_lien(:'held_order', 'y-buyer', 2, 'USD', idempotency_key => 'y-hold-e') = :'event_hold' AS same_lien;

-- A checkout through escrow: buyer -> escrow 100, escrow -> seller 90, escrow -> market 10.
-- Its full refund undoes it newest first, although escrow holds nothing now.
SELECT cte_create_event('checkout') AS checkout \gset
SELECT cte_add_transaction(:'checkout', 'pay', 'wallet.transfer',
    '{"source_account_id": "y-buyer", "destination_account_id": "y-escrow", "amount": 100, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'checkout', 'payout', 'wallet.transfer',
    '{"source_account_id": "y-escrow", "destination_account_id": "y-seller", "amount": 90, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'checkout', 'fee', 'wallet.transfer',
    '{"source_account_id": "y-escrow", "destination_account_id": "y-market", "amount": 10, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'checkout');
SELECT account_id, balance FROM cte_ledger_balances
 WHERE account_id LIKE 'y-%' AND currency = 'USD' ORDER BY 1;
SELECT cte_reverse_event(:'checkout', 'order cancelled', reference => 'rma-9') AS refund \gset
SELECT account_id, balance FROM cte_ledger_balances
 WHERE account_id LIKE 'y-%' AND currency = 'USD' ORDER BY 1;
-- Its entries, newest posting first: escrow gets the money back before it gives it back.
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'refund' ORDER BY j.id;
-- Retried with its reference: the same refund, nothing moves (0.2.0: refund_exceeds_event).
SELECT test.ledger_state() AS before_refund_replay \gset
SELECT cte_reverse_event(:'checkout', 'order cancelled, retried', reference => 'rma-9') = :'refund' AS same_refund,
       test.ledger_state() = :'before_refund_replay' AS nothing_moved;
-- The same reference for a part, or for another event, is a conflict.
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'x', 5, 'rma-9')$$, :'checkout'));

-- A partial refund retried with its reference: the same refund (0.2.0: duplicate_reference).
SELECT cte_transfer('y-buyer', 'y-seller', 40, 'USD', 'y-order-2') AS sale \gset
SELECT cte_reverse_event(:'sale', 'one item back', 15, 'rma-10') AS part \gset
SELECT cte_reverse_event(:'sale', 'one item back', 15.00, 'rma-10') = :'part' AS same_part;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'one item back', 16, 'rma-10')$$, :'sale'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'the rest', NULL, 'rma-10')$$, :'sale'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'other event', 1, 'rma-10')$$, :'checkout'));
SELECT cte_balance('y-buyer', 'USD') AS buyer, cte_balance('y-seller', 'USD') AS seller;

-- An event's key: the same request returns the event; another name, description, timeout or
-- metadata is a conflict (0.2.0 returned the old event for all but another name).
SELECT cte_create_event('order', 'order 77', '10 minutes', '{"order": 77}', 'y-order-77') AS ev \gset
SELECT cte_create_event('order', 'order 77', '600 seconds', '{"order": 77}', 'y-order-77') = :'ev' AS replayed;
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('order', 'order 78', '10 minutes', '{"order": 77}', 'y-order-77')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('order', 'order 77', '11 minutes', '{"order": 77}', 'y-order-77')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('order', 'order 77', '10 minutes', '{"order": 78}', 'y-order-77')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('refund', 'order 77', '10 minutes', '{"order": 77}', 'y-order-77')$$);
SELECT count(*) AS events_with_the_key FROM cte_events WHERE idempotency_key = 'y-order-77';

-- The one-call shortcuts: a transfer or deposit retried with its reference returns the first
-- event and moves nothing (0.2.0: duplicate_reference); another request under the reference
-- is a conflict, and so is a reference another kind of call holds.
SELECT cte_transfer('y-buyer', 'y-seller', 7, 'USD', 'y-p2p-1') AS p2p \gset
SELECT test.ledger_state() AS before_p2p_replay \gset
SELECT cte_transfer('y-buyer', 'y-seller', 7.00, 'USD', 'y-p2p-1') = :'p2p' AS same_transfer,
       test.ledger_state() = :'before_p2p_replay' AS nothing_moved;
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('y-buyer', 'y-seller', 8, 'USD', 'y-p2p-1')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('y-buyer', 'y-market', 7, 'USD', 'y-p2p-1')$$);
SELECT cte_deposit('y-market', 3, 'USD', 'y-psp-1') AS dep \gset
SELECT cte_deposit('y-market', 3, 'USD', 'y-psp-1') = :'dep' AS same_deposit;
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('y-market', 4, 'USD', 'y-psp-1')$$);
-- A step of a multi-step event holding the reference: another call, so a conflict.
SELECT cte_create_event('two steps') AS two \gset
SELECT cte_add_transaction(:'two', 'in', 'wallet.deposit',
    '{"account_id": "y-market", "amount": 1, "currency": "USD", "reference": "y-psp-2"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'two', 'out', 'wallet.transfer',
    '{"source_account_id": "y-market", "destination_account_id": "y-seller", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'two');
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('y-market', 1, 'USD', 'y-psp-2')$$);
SELECT count(*) AS events_of_y_p2p_1 FROM cte_transactions WHERE reference = 'y-p2p-1';

-- cte_run_event: create, add and start in one call under one key. A replay returns the event
-- with its current status and replayed = true, and moves nothing.
SELECT * FROM cte_run_event('payout', '[
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "y-buyer",
     "destination_account_id": "y-seller", "amount": 12.50, "currency": "USD"}},
    {"name": "fee", "type": "wallet.transfer", "payload": {"source_account_id": "y-seller",
     "destination_account_id": "y-market", "amount": 0.50, "currency": "USD"},
     "description": "platform fee"}]', 'y-run-1') \gset run_
SELECT :'run_status' AS status, :'run_replayed' AS replayed;
SELECT test.ledger_state() AS before_run_replay \gset
SELECT event_id = :'run_event_id' AS same_event, status, replayed,
       test.ledger_state() = :'before_run_replay' AS nothing_moved
  FROM cte_run_event('payout', '[
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "y-buyer",
     "destination_account_id": "y-seller", "amount": 12.5, "currency": "USD"}},
    {"name": "fee", "type": "wallet.transfer", "payload": {"source_account_id": "y-seller",
     "destination_account_id": "y-market", "amount": 0.5, "currency": "USD"},
     "description": "platform fee", "max_attempts": 3}]', 'y-run-1');
-- Other steps or another amount under the key: a conflict. (The start time is not part of the
-- request: the application may move a scheduled start before it comes.)
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_run_event('payout', '[
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "y-buyer",
     "destination_account_id": "y-seller", "amount": 13, "currency": "USD"}}]', 'y-run-1')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_run_event('payout', '[
    {"name": "pay", "type": "wallet.transfer", "payload": {"source_account_id": "y-buyer",
     "destination_account_id": "y-seller", "amount": 12.50, "currency": "USD"}},
    {"name": "fee", "type": "wallet.transfer", "payload": {"source_account_id": "y-seller",
     "destination_account_id": "y-market", "amount": 0.50, "currency": "USD"},
     "description": "platform fee", "max_attempts": 4}]', 'y-run-1')$$);
-- max_attempts is a whole number (2.5 was a raw 22P02).
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_run_event('x', '[{"name": "x", "type": "external", "payload": {}, "max_attempts": 2.5}]', 'y-run-9')$$);
-- All or nothing: a step refused when added leaves no event, and the key stays free.
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_run_event('bad', '[
    {"name": "ok", "type": "wallet.deposit", "payload": {"account_id": "y-buyer", "amount": 1, "currency": "USD"}},
    {"name": "broken", "type": "wallet.deposit", "payload": {"account_id": "y-buyer", "amount": 1.001, "currency": "USD"}}]',
    'y-run-2')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_run_event('bad', '{"not": "an array"}', 'y-run-2')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_run_event('bad', '[{"name": "x", "type": "external"}]', 'y-run-2')$$);
SELECT count(*) AS events_of_y_run_2 FROM cte_events WHERE idempotency_key = 'y-run-2';
-- A step that fails compensates the event, which keeps its key: a replay returns it as it ended.
SELECT status, replayed FROM cte_run_event('too much', '[
    {"name": "in", "type": "wallet.deposit", "payload": {"account_id": "y-market", "amount": 5, "currency": "USD", "reference": "y-run-3-in"}},
    {"name": "out", "type": "wallet.transfer", "payload": {"source_account_id": "y-market",
     "destination_account_id": "y-seller", "amount": 100000, "currency": "USD"}}]', 'y-run-2');
SELECT status, replayed FROM cte_run_event('too much', '[
    {"name": "in", "type": "wallet.deposit", "payload": {"account_id": "y-market", "amount": 5, "currency": "USD", "reference": "y-run-3-in"}},
    {"name": "out", "type": "wallet.transfer", "payload": {"source_account_id": "y-market",
     "destination_account_id": "y-seller", "amount": 100000, "currency": "USD"}}]', 'y-run-2');
-- Scheduled: it stays created; a replay says so.
SELECT status, replayed FROM cte_run_event('later', '[{"name": "x", "type": "external", "payload": {}}]',
    'y-run-4', not_before => now() + interval '24 hours');
SELECT status, replayed FROM cte_run_event('later', '[{"name": "x", "type": "external", "payload": {}}]',
    'y-run-4', not_before => now() + interval '24 hours');

-- Found by the red team on this version before release:
-- a one-call replay returned an event that moved nothing (an event named like the shortcut,
-- made by cte_create_event, whose unstarted step held the reference): now a conflict.
SELECT cte_create_event('wallet.transfer') AS lookalike \gset
SELECT cte_add_transaction(:'lookalike', 'wallet.transfer', 'wallet.transfer',
    '{"source_account_id": "y-buyer", "destination_account_id": "y-seller", "amount": "1.00", "currency": "USD", "reference": "y-look"}') IS NOT NULL AS added;
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('y-buyer', 'y-seller', 1, 'USD', 'y-look')$$);
-- a blank reference, or one with a control character, was a key like any other.
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('y-buyer', 'y-seller', 1, 'USD', '   ')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('y-buyer', 1, 'USD', E'a\nb')$$);

SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
