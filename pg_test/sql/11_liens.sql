-- Liens: funds reserved on a wallet. Available = balance - active liens; it never goes below
-- zero on an account that may not go negative. A lien is captured (in full or in part, the
-- rest given back), released, or expires; an event's liens never outlive it.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('shop', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;

-- A standalone hold: the balance stays, what is available drops.
SELECT ctel_create_lien(NULL, 'alice', 30, 'USD', metadata => '{"why": "hotel"}') AS hold \gset
SELECT status, amount, expires_at FROM cte_liens WHERE id = :'hold';
SELECT * FROM cte_account_balances('alice') WHERE currency = 'USD';
-- Held funds cannot be spent twice: not by a transfer, not by another lien.
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'shop', 70.01, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 70.01, 'USD')$$);
SELECT cte_transfer('alice', 'shop', 70, 'USD') IS NOT NULL AS spent_the_rest;
SELECT cte_available_balance('alice', 'USD') AS available;

-- Capture part of it: 12.50 moves to the shop, the other 17.50 is given back.
SELECT cte_deposit('alice', 5, 'USD') IS NOT NULL AS funded;
SELECT ctel_capture_lien(:'hold', 'shop', 12.50) IS NOT NULL AS captured;
SELECT status, captured_amount, reason FROM cte_liens WHERE id = :'hold';
SELECT account_id, balance, reserved, available FROM cte_ledger_balances
 WHERE account_id IN ('alice', 'shop') AND currency = 'USD' ORDER BY account_id;
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'shop')$$, :'hold'));
SELECT test.refusal(format($$SELECT cte_ctel.ctel_release_lien(%L)$$, :'hold'));

-- Release gives everything back; a capture of more than is held is refused.
SELECT ctel_create_lien(NULL, 'alice', 10, 'USD') AS small \gset
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'shop', 10.01)$$, :'small'));
SELECT ctel_release_lien(:'small', 'customer left');
SELECT status, reason FROM cte_liens WHERE id = :'small';
SELECT cte_available_balance('alice', 'USD') AS available;

-- Refusals.
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 0, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 1.001, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 1, 'JPY')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'nobody', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, '@world', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 1, 'USD', '2000-01-01 00:00:00+00')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(gen_random_uuid(), 'alice', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_release_lien(gen_random_uuid())$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_capture_lien(gen_random_uuid(), 'shop')$$);
SELECT ctel_create_lien(NULL, 'alice', 1, 'USD') AS one \gset
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'alice')$$, :'one'));
SELECT ctel_release_lien(:'one');
SELECT test.refusal($$SELECT cte_ctel.ctel_release_lien(NULL)$$);

-- A lien for an event that has not started is pending: it takes its funds when the event
-- starts, and is released when the event ends.
SELECT cte_create_event('booking') AS e \gset
SELECT ctel_create_lien(:'e', 'alice', 20, 'USD') AS pending \gset
SELECT status FROM cte_liens WHERE id = :'pending';
SELECT cte_available_balance('alice', 'USD') AS available_before_start;
SELECT cte_add_transaction(:'e', 'confirm', 'external', '{}') AS confirm \gset
SELECT cte_start_event(:'e');
SELECT status FROM cte_liens WHERE id = :'pending';
SELECT cte_available_balance('alice', 'USD') AS available_while_running;
SELECT cte_complete_transaction(:'confirm');
SELECT status, reason FROM cte_liens WHERE id = :'pending';
SELECT cte_available_balance('alice', 'USD') AS available_after;

-- If an event's liens cannot all take their funds, it does not start, and says why.
SELECT cte_create_event('too expensive') AS x \gset
SELECT ctel_create_lien(:'x', 'alice', 1000, 'USD') IS NOT NULL AS pending_lien;
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L)$$, :'x'));
SELECT status FROM cte_events WHERE id = :'x';
SELECT test.refusal(format($$SELECT cte_ctel.ctel_create_lien(%L, 'alice', 1, 'USD')$$, :'e'));

-- wallet.withdrawal holds its funds while the event runs; they leave only when it completes.
SELECT cte_create_event('cash out') AS w \gset
SELECT cte_add_transaction(:'w', 'withdraw', 'wallet.withdrawal',
    '{"account_id": "alice", "amount": 7, "currency": "USD", "reference": "wd-7"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'w', 'bank payout', 'external', '{}') AS payout \gset
SELECT cte_start_event(:'w');
SELECT l.status, l.amount FROM cte_liens l JOIN cte_transactions t ON t.id = l.transaction_id
 WHERE t.event_id = :'w';
SELECT balance, reserved, available FROM cte_ledger_balances WHERE account_id = 'alice' AND currency = 'USD';
SELECT test.refusal(format($$SELECT cte_ctel.ctel_release_lien(
    (SELECT l.id FROM cte_ctel.cte_liens l JOIN cte_ctel.cte_transactions t ON t.id = l.transaction_id
      WHERE t.event_id = %L))$$, :'w'));
SELECT cte_complete_transaction(:'payout', '{"bank_ref": "ok"}');
SELECT l.status, l.captured_amount FROM cte_liens l JOIN cte_transactions t ON t.id = l.transaction_id
 WHERE t.event_id = :'w';
SELECT balance, reserved, available FROM cte_ledger_balances WHERE account_id = 'alice' AND currency = 'USD';
SELECT kind, account_id, amount FROM cte_entries WHERE reference = 'wd-7' ORDER BY id;

-- A withdrawal whose payout then fails: the held funds are released, nothing left the wallet.
SELECT cte_create_event('failed payout') AS fw \gset
SELECT cte_add_transaction(:'fw', 'withdraw', 'wallet.withdrawal',
    '{"account_id": "alice", "amount": 9, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'fw', 'bank payout', 'external', '{}') AS fpayout \gset
SELECT cte_start_event(:'fw');
SELECT cte_available_balance('alice', 'USD') AS available_while_held;
SELECT cte_fail_transaction(:'fpayout', 'beneficiary bank rejected it', retryable => false);
SELECT l.status, l.reason FROM cte_liens l JOIN cte_transactions t ON t.id = l.transaction_id
 WHERE t.event_id = :'fw';
SELECT balance, reserved, available FROM cte_ledger_balances WHERE account_id = 'alice' AND currency = 'USD';

-- An exchange holds its source funds and fee, and posts every leg as the event completes.
SELECT cte_create_event('fx') AS fx \gset
SELECT cte_add_transaction(:'fx', 'convert', 'wallet.exchange', '{"source_account_id": "alice",
    "source_currency": "USD", "source_amount": 10, "destination_account_id": "alice",
    "destination_currency": "EUR", "exchange_rate": "0.9", "fee_account_id": "shop",
    "fee_amount": "0.50", "reference": "fx-9"}') IS NOT NULL AS added;
SELECT cte_start_event(:'fx');
SELECT l.amount, l.status FROM cte_liens l JOIN cte_transactions t ON t.id = l.transaction_id
 WHERE t.event_id = :'fx';
SELECT kind, account_id, currency, amount FROM cte_entries WHERE reference = 'fx-9' ORDER BY id;

-- Expiry: maintenance expires a lien at expires_at and gives its funds back. Time is frozen
-- inside this transaction, so the expiry is moved into the past by hand.
SELECT ctel_create_lien(NULL, 'alice', 3, 'USD', now() + interval '1 hour') AS expiring \gset
SELECT cte_available_balance('alice', 'USD') AS available_held;
SELECT cte_run_maintenance() ->> 'liens_expired' AS expired_early;
UPDATE cte_liens SET expires_at = now() WHERE id = :'expiring';
SELECT cte_run_maintenance() ->> 'liens_expired' AS expired_when_due;
SELECT status FROM cte_liens WHERE id = :'expiring';
SELECT cte_available_balance('alice', 'USD') AS available_after_expiry;
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'shop')$$, :'expiring'));

-- No lien is left holding anything its event no longer needs, and every reservation adds up.
SELECT count(*) AS liens_held_past_their_event FROM cte_liens l JOIN cte_events e ON e.id = l.event_id
 WHERE l.status IN ('pending', 'active') AND e.status IN ('completed', 'compensated', 'failed');
SELECT * FROM cte_verify_ledger();
SAVEPOINT corrupt;
UPDATE cte_balances SET reserved = reserved + 1 WHERE account_id = 'alice' AND currency = 'USD';
SELECT check_name, detail FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT corrupt;
ROLLBACK;
