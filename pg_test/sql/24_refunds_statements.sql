-- Refunds (cte_reverse_event), account statements and balances as of an instant (SPEC §3, §4
-- v2). A refund is a new event linked to a completed one, posting the mirror image of what it
-- moved (entries of kind refund), in full or, for one posting between two accounts, in part;
-- together the refunds of an event never return more than it moved.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('r-buyer', ARRAY['USD', 'EUR']);
SELECT cte_create_account('r-shop', ARRAY['USD']);
SELECT cte_create_account('r-fees', ARRAY['USD']);
SELECT cte_deposit('r-buyer', 100, 'USD', 'psp-r1') AS topup \gset
SELECT cte_transfer('r-buyer', 'r-shop', 60, 'USD', 'order-1') AS sale \gset

-- Two partial refunds, then the rest; a fourth finds nothing left.
SELECT cte_reverse_event(:'sale', 'one item returned', 15, 'rma-1') AS refund_1 \gset
SELECT cte_reverse_event(:'sale', 'a second item returned', 20) AS refund_2 \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'too much', 25.01)$$, :'sale'));
SELECT cte_reverse_event(:'sale', 'the rest') AS refund_3 \gset
-- A refund is an event that has run: starting or cancelling it is a transition not allowed
-- (0.2.0 answered payload_invalid, planning its step first; found by the model checker).
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L)$$, :'refund_3'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_cancel_event(%L)$$, :'refund_3'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'again')$$, :'sale'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'again', 0.01)$$, :'sale'));
-- Each is an event of its own, completed, linked to the sale; its entries are of kind refund.
SELECT e.name, e.status, e.description, e.refund_of = :'sale' AS of_the_sale, t.type, t.reference
  FROM cte_events e JOIN cte_transactions t ON t.event_id = e.id
 WHERE e.refund_of IS NOT NULL ORDER BY e.created_at, t.reference NULLS LAST;
SELECT j.account_id, j.kind, j.amount, j.reference FROM cte_entries j
  JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id IN (:'refund_1', :'refund_2', :'refund_3') ORDER BY j.id;
SELECT account_id, balance FROM cte_ledger_balances
 WHERE account_id IN ('r-buyer', 'r-shop') AND currency = 'USD' ORDER BY 1;
-- A refund's reference is unique: the same reference for another request (here another
-- event) is an idempotency conflict (27_retries: the same request again is a replay).
SELECT cte_transfer('r-buyer', 'r-shop', 10, 'USD') AS sale_2 \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'retried', 1, 'rma-1')$$, :'sale_2'));

-- An event whose money went on from a payee (r-shop paid r-fees) is refunded whole, once;
-- in part only with legs (29_partial_refunds).
SELECT cte_create_event('checkout') AS checkout \gset
SELECT cte_add_transaction(:'checkout', 'pay', 'wallet.transfer',
    '{"source_account_id": "r-buyer", "destination_account_id": "r-shop", "amount": 8, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'checkout', 'fee', 'wallet.transfer',
    '{"source_account_id": "r-shop", "destination_account_id": "r-fees", "amount": 0.50, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'checkout');
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part', 1)$$, :'checkout'));
SELECT cte_reverse_event(:'checkout', 'order cancelled') AS checkout_refund \gset
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'checkout_refund' ORDER BY j.id;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'twice')$$, :'checkout'));

-- Refused: an event not completed, a refund itself, an unknown event, a blank reason.
SELECT cte_create_event('waiting') AS waiting \gset
SELECT cte_add_transaction(:'waiting', 'bank', 'external', '{}') IS NOT NULL AS added;
SELECT cte_start_event(:'waiting');
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'not yet')$$, :'waiting'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'refund a refund')$$, :'refund_1'));
SELECT test.refusal($$SELECT cte_ctel.cte_reverse_event('00000000-0000-0000-0000-000000000000', 'who')$$);
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, ' ')$$, :'sale_2'));
-- A deposit is refunded to where it came from: out of the wallet, back to @world.
SELECT cte_reverse_event(:'topup', 'chargeback', 5) IS NOT NULL AS charged_back;
-- A refund into a frozen account still posts (it settles what was agreed); a refund out of a
-- wallet that no longer has the money is refused for funds.
SELECT cte_freeze_account('r-buyer', 'review');
SELECT cte_reverse_event(:'sale_2', 'refund while frozen', 2) IS NOT NULL AS refunded;
SELECT cte_unfreeze_account('r-buyer');
SELECT cte_transfer('r-shop', 'r-buyer', (SELECT balance FROM cte_balances WHERE account_id = 'r-shop' AND currency = 'USD'), 'USD') IS NOT NULL AS shop_emptied;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'no money left', 1)$$, :'sale_2'));
SELECT count(*) AS violations FROM cte_verify_ledger();

-- The statement of the buyer's USD: every entry in order, with its running balance, kind,
-- reference, event and step, and the other side of its posting.
SELECT entry_id IS NOT NULL AS has_id, kind, amount, balance_after, reference,
       event_name, transaction_name, counterparty, lien_id IS NOT NULL AS from_a_lien
  FROM cte_account_statement('r-buyer', 'USD');
-- A capture names its lien.
SELECT ctel_create_lien(NULL, 'r-buyer', 3, 'USD') AS hold \gset
SELECT ctel_capture_lien(:'hold', 'r-shop', 3, 'cap-1') IS NOT NULL AS captured;
SELECT kind, amount, reference, counterparty, lien_id = :'hold' AS the_hold
  FROM cte_account_statement('r-buyer', 'USD', after_entry => (SELECT max(id) - 2 FROM cte_entries));
-- Pages: 3 entries at a time, each page after the last entry of the one before, together the
-- whole statement once.
CREATE TEMP TABLE paged (entry_id bigint);
DO $$
DECLARE
    last bigint;
    got int;
BEGIN
    LOOP
        INSERT INTO paged SELECT entry_id FROM cte_ctel.cte_account_statement('r-buyer', 'USD',
            after_entry => last, "limit" => 3);
        GET DIAGNOSTICS got = ROW_COUNT;
        EXIT WHEN got = 0;
        SELECT max(entry_id) INTO last FROM paged;
    END LOOP;
END $$;
SELECT (SELECT count(*) FROM paged) = (SELECT count(*) FROM cte_account_statement('r-buyer', 'USD', "limit" => 1000)) AS whole,
       (SELECT count(DISTINCT entry_id) FROM paged) = (SELECT count(*) FROM paged) AS each_once;
-- A time window: from is included, to excluded (every entry here was written today).
SELECT count(*) AS entries_before_the_start FROM cte_account_statement('r-buyer', 'USD', "to" => '2000-01-01');
SELECT count(*) = (SELECT count(*) FROM cte_entries WHERE account_id = 'r-buyer' AND currency = 'USD') AS all_since
  FROM cte_account_statement('r-buyer', 'USD', "from" => '2000-01-01', "limit" => 1000);
-- A system account's statement has no running balance.
SELECT kind, amount, balance_after, counterparty FROM cte_account_statement('@world', 'USD')
 WHERE counterparty = 'r-buyer' ORDER BY entry_id LIMIT 2;
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_statement('r-buyer', 'GBP')$$);
-- A cursor must be an entry of the statement: one past the journal's end, or another
-- account's, has no place to resume from (it would start again from the first entry).
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_statement('r-buyer', 'USD', after_entry => 9223372036854775807)$$);
SELECT regexp_replace(test.refusal(format($$SELECT * FROM cte_ctel.cte_account_statement('r-buyer', 'USD', after_entry => %s)$$,
    (SELECT max(id) FROM cte_entries WHERE account_id = 'r-shop'))), '"\d+"', '"N"') AS refusal;
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_statement('nobody', 'USD')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_statement('r-buyer', 'USD', "limit" => 0)$$);

-- The balance at an instant: before the first entry, zero; now, the posted balance.
SELECT cte_balance_at('r-buyer', 'USD', '2000-01-01') AS at_the_start,
       cte_balance_at('r-buyer', 'USD', clock_timestamp()) = cte_balance('r-buyer', 'USD') AS now_is_posted,
       cte_balance_at('r-buyer', 'EUR', clock_timestamp()) AS never_used,
       cte_balance_at('@world', 'USD', clock_timestamp()) = cte_balance('@world', 'USD') AS system_too;
-- At each entry's time, the balance is that entry's balance_after.
SELECT bool_and(cte_balance_at('r-buyer', 'USD', s.at) = s.balance_after) AS each_entry
  FROM cte_account_statement('r-buyer', 'USD', "limit" => 1000) s;
SELECT test.refusal($$SELECT cte_ctel.cte_balance_at('r-buyer', 'USD', NULL)$$);
ROLLBACK;
