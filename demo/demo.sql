-- The cte_ctel demo: a few wallets, money moving between them, and the ledger checking itself.
\set QUIET on
\pset footer off
CREATE EXTENSION cte_ctel;
SET search_path = cte_ctel, public;

\echo
\echo '## Currencies: the common ISO 4217 ones come registered; here is one more'
SELECT cte_create_currency('POINTS', 0);
SELECT code, scale FROM cte_currencies WHERE code IN ('USD', 'EUR', 'JPY', 'BTC', 'POINTS') ORDER BY code;

\echo '## Opening accounts'
SELECT cte_create_account('alice', ARRAY['USD', 'EUR']) AS opened;
SELECT cte_create_account('bob', ARRAY['USD']) AS opened;
SELECT cte_create_account('merchant', ARRAY['USD', 'POINTS'], metadata => '{"kind": "merchant"}') AS opened;

\echo '## Money in: deposits come from the @world system account'
SELECT cte_deposit('alice', 250.00, 'USD', 'bank-in-001') IS NOT NULL AS deposited;
SELECT cte_deposit('alice', 80.50, 'EUR', 'bank-in-002') IS NOT NULL AS deposited;

\echo '## Money moving: alice pays bob, bob pays the merchant'
SELECT cte_transfer('alice', 'bob', 100.25, 'USD', 'p2p-42') IS NOT NULL AS transferred;
SELECT cte_transfer('bob', 'merchant', 19.99, 'USD', 'order-7') IS NOT NULL AS transferred;

\echo '## Refusals change nothing. Each has its own SQLSTATE (docs/errors.md):'
DO $$
DECLARE
    attempt text;
BEGIN
    FOREACH attempt IN ARRAY ARRAY[
        $q$SELECT cte_ctel.cte_transfer('bob', 'alice', 1000, 'USD')$q$,
        $q$SELECT cte_ctel.cte_deposit('alice', 10.001, 'USD')$q$,
        $q$SELECT cte_ctel.cte_deposit('alice', 'NaN', 'USD')$q$,
        $q$SELECT cte_ctel.cte_deposit('bob', 5, 'EUR')$q$,
        $q$SELECT cte_ctel.cte_deposit('carol', 5, 'USD')$q$
    ] LOOP
        BEGIN
            EXECUTE attempt;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE '% -> %: %', attempt, SQLSTATE, SQLERRM;
        END;
    END LOOP;
END
$$;

\echo '## An event: three steps, the last of which cannot be paid, so the first two are compensated'
SELECT cte_create_account('shop', ARRAY['USD', 'EUR']) AS opened;
SELECT cte_create_event('checkout', 'pay, top up, then an impossible payment') AS checkout \gset
SELECT cte_add_transaction(:'checkout', 'pay the shop', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "shop", "amount": 20, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'checkout', 'loyalty top-up', 'wallet.deposit',
    '{"account_id": "alice", "amount": 0.1, "currency": "EUR", "reference": "promo-1"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'checkout', 'pay far too much', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "shop", "amount": 100000, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'checkout') AS event_status;
SELECT "order", name, status, error FROM cte_transactions WHERE event_id = :'checkout' ORDER BY "order";

\echo '## Its history: every status change, who made it and when (each also a change of the feed, cte_changes)'
-- seq is the order the changes were made (the changes of one drive share an id).
SELECT h.old_status, h.new_status, t.name AS transaction, h.actor
  FROM cte_event_history h LEFT JOIN cte_transactions t ON t.id = h.transaction_id
 WHERE h.event_id = :'checkout' ORDER BY h.seq;

\echo '## Its picture: cte_event_graph draws it as Mermaid (or DOT); docs/pictures/ shows one rendered'
\pset format unaligned
\pset tuples_only on
SELECT cte_event_graph(:'checkout');
\pset tuples_only off
\pset format aligned

\echo '## A dry run: what a new checkout would do if its second step failed; nothing is kept'
SELECT cte_create_event('checkout-2', 'the same, tried first') AS checkout2 \gset
SELECT cte_add_transaction(:'checkout2', 'pay the shop', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "shop", "amount": 20, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'checkout2', 'ship', 'wallet.transfer',
    '{"source_account_id": "shop", "destination_account_id": "bob", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_balance('alice', 'USD') AS alice_before \gset
SELECT r->>'status' AS would_end, jsonb_path_query_array(r, '$.steps[*].status') AS steps_would_be,
       cte_balance('alice', 'USD') = :alice_before AS nothing_moved
  FROM cte_dry_run(:'checkout2', 'ship') r;
SELECT status FROM cte_events WHERE id = :'checkout2';

\echo '## A scheduled start: the worker starts it at its time (here: a minute from now)'
SELECT cte_start_event(:'checkout2', now() + interval '1 minute') AS scheduled;
SELECT status, not_before > now() AS waits_for_its_time FROM cte_events WHERE id = :'checkout2';

\echo '## An exchange: 100.00 USD at 0.85 into EUR, with a 2.50 USD fee to the shop'
SELECT cte_create_event('fx') AS fx \gset
SELECT cte_add_transaction(:'fx', 'convert', 'wallet.exchange', '{
    "source_account_id": "alice", "source_currency": "USD", "source_amount": 100.00,
    "destination_account_id": "alice", "destination_currency": "EUR", "exchange_rate": 0.85,
    "fee_account_id": "shop", "fee_amount": 2.50, "reference": "fx-1"}') IS NOT NULL AS added;
SELECT cte_start_event(:'fx') AS event_status;
SELECT kind, account_id, currency, amount FROM cte_entries WHERE reference = 'fx-1' ORDER BY id;

\echo '## A batch: items run in order, all or nothing, with a result per item'
SELECT cte_create_event('payouts') AS batch \gset
SELECT cte_add_transaction(:'batch', 'weekly payouts', 'batch.operation', '{"batch_id": "week-48",
    "transactions": [
      {"id": "p-1", "type": "wallet.transfer", "payload": {"source_account_id": "alice",
        "destination_account_id": "bob", "amount": 5, "currency": "USD"}},
      {"id": "p-2", "type": "wallet.withdrawal", "payload": {"account_id": "alice",
        "amount": 10, "currency": "USD"}}]}') IS NOT NULL AS added;
SELECT cte_start_event(:'batch') AS event_status;
SELECT item ->> 'id' AS item, item ->> 'type' AS type, item ->> 'status' AS status
  FROM cte_transactions, jsonb_array_elements(result -> 'items') AS item
 WHERE event_id = :'batch';

\echo '## Liens: a hold that expires on its own, with nobody calling anything'
-- The background worker attaches to this database a few seconds after it is created.
DO $$
BEGIN
    FOR attempt IN 1..60 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity
                           WHERE backend_type = 'cte_ctel maintenance' AND datname = current_database());
        PERFORM pg_sleep(0.5);
    END LOOP;
END
$$;
SELECT backend_type, datname FROM pg_stat_activity WHERE backend_type = 'cte_ctel maintenance';
SELECT ctel_create_lien(NULL, 'bob', 50, 'USD', now() + interval '2 seconds') AS hold \gset
SELECT status, amount, cte_available_balance('bob', 'USD') AS bob_available FROM cte_liens WHERE id = :'hold';
SELECT pg_sleep(3.5);
SELECT status, reason, cte_available_balance('bob', 'USD') AS bob_available FROM cte_liens WHERE id = :'hold';

\echo '## A withdrawal holds its funds while the bank payout runs; the payout fails, the hold is released'
SELECT cte_create_event('cash out') AS cashout \gset
SELECT cte_add_transaction(:'cashout', 'withdraw', 'wallet.withdrawal',
    '{"account_id": "bob", "amount": 60, "currency": "USD", "reference": "wd-1"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'cashout', 'bank payout', 'external', '{"iban": "DE00 0000"}') AS payout \gset
SELECT cte_start_event(:'cashout') AS event_status;
SELECT balance, reserved, available FROM cte_ledger_balances WHERE account_id = 'bob' AND currency = 'USD';
SELECT cte_fail_transaction(:'payout', 'beneficiary bank rejected the transfer', retryable => false) AS event_status;
SELECT l.status, l.amount, l.reason FROM cte_liens l JOIN cte_transactions t ON t.id = l.transaction_id
 WHERE t.event_id = :'cashout';
SELECT balance, reserved, available FROM cte_ledger_balances WHERE account_id = 'bob' AND currency = 'USD';

\echo '## A two-shipment order: hold 50, capture 20 as the first box ships, then the final 25; 5 goes back'
SELECT cte_deposit('alice', 100, 'USD', 'topup-demo') IS NOT NULL AS topped_up;
SELECT ctel_create_lien(NULL, 'alice', 50, 'USD', idempotency_key => 'order-77') AS order_hold \gset
SELECT ctel_create_lien(NULL, 'alice', 50, 'USD', idempotency_key => 'order-77') = :'order_hold' AS retry_returns_the_same_hold;
SELECT ctel_capture_lien(:'order_hold', 'shop', 20, 'box-1', final => false) IS NOT NULL AS first_box;
SELECT status, amount, captured_amount, cte_available_balance('alice', 'USD') AS alice_available FROM cte_liens WHERE id = :'order_hold';
SELECT ctel_capture_lien(:'order_hold', 'shop', 25, 'box-2') IS NOT NULL AS last_box;
SELECT status, amount, captured_amount, reason FROM cte_liens WHERE id = :'order_hold';

\echo '## A refund: part of a sale comes back, linked to it; refunds never exceed what was paid'
SELECT cte_transfer('alice', 'shop', 30, 'USD', 'sale-demo') AS sale \gset
SELECT cte_reverse_event(:'sale', 'one item returned', 12, 'rma-demo') AS refund \gset
SELECT name, status, description, refund_of = :'sale' AS refunds_the_sale FROM cte_events WHERE id = :'refund';
DO $$
BEGIN
    PERFORM cte_ctel.cte_reverse_event((SELECT event_id FROM cte_ctel.cte_transactions WHERE reference = 'sale-demo'), 'too much', 20);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'a refund of 20 more -> %: %', SQLSTATE, SQLERRM;
END
$$;

\echo '## A marketplace checkout: one posting splits 80.00 between the seller (90%), the platform''s fee (8%) and the tax office (the rest)'
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['seller', 'platform', 'tax']) a ORDER BY 1;
SELECT cte_deposit('alice', 200, 'USD', 'top-up-2') IS NOT NULL AS alice_tops_up;
SELECT event_id AS market_checkout, status FROM cte_run_event('market checkout', '[{"name": "split", "type": "wallet.split", "payload": {
    "source_account_id": "alice", "currency": "USD", "amount": "80.00", "reference": "market-1",
    "legs": [{"account_id": "seller", "percent": 90}, {"account_id": "platform", "percent": 8}],
    "remainder_account_id": "tax"}}]', 'market-checkout-1') \gset
SELECT :'status' AS checkout_status;
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'market_checkout' ORDER BY j.id;
\echo '## One item comes back: 20.00 refunded, taken from each payee in proportion to what it received'
SELECT cte_reverse_event(:'market_checkout', 'one item returned', 20, 'market-rma-1') AS market_refund \gset
SELECT j.account_id, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'market_refund' ORDER BY j.id;

\echo '## A balance monitor: the shop asks to hear when its available balance goes above 100.00'
SELECT cte_create_monitor('shop', 'USD', 'above', 100) AS shop_monitor \gset
SELECT cte_balance('shop', 'USD') AS shop_before;
SELECT cte_transfer('alice', 'shop', 70, 'USD', 'big-order') IS NOT NULL AS big_order;
-- The crossing is a change of kind monitor, written with the transfer (the feed worker gives it
-- its position a moment later; cte_event_history shows it at once).
SELECT kind, account_id, new_status AS condition, reason FROM cte_event_history
 WHERE kind = 'monitor' ORDER BY seq;

\echo '## Alice''s statement (last 6 entries): running balance, kind, what posted it, the other side'
SELECT kind, amount, balance_after, reference, event_name, counterparty
  FROM (SELECT * FROM cte_account_statement('alice', 'USD', "limit" => 1000) ORDER BY entry_id DESC LIMIT 6) last
 ORDER BY entry_id;
SELECT cte_balance_at('alice', 'USD', now() - interval '1 hour') AS alice_an_hour_ago,
       cte_balance('alice', 'USD') AS alice_now;
\echo '## The statement''s summary for the last hour: opening + credits - debits = closing, to the cent'
SELECT opening, credits, debits, closing, entries, opening + credits - debits = closing AS reconciles
  FROM cte_statement_summary('alice', 'USD', now() - interval '1 hour', now());
\echo '## The same hour as CSV, with its opening and closing lines (COPY ... TO STDOUT; \\copy writes a file)'
SELECT now() - interval '1 hour' AS "from", now() AS "to" \gset
COPY (
    SELECT at, kind, amount, balance, reference, counterparty FROM (
        SELECT 0 AS part, 0::bigint AS entry_id, :'from'::timestamptz AS at, 'opening' AS kind,
               NULL::numeric AS amount, opening AS balance, NULL AS reference, NULL AS counterparty
          FROM cte_statement_summary('alice', 'USD', :'from', :'to')
        UNION ALL
        SELECT 1, entry_id, at, kind, amount, balance_after, reference, counterparty
          FROM cte_account_statement('alice', 'USD', :'from', :'to', NULL, 10000)
        UNION ALL
        SELECT 2, 0, :'to'::timestamptz, 'closing', NULL, closing, NULL, NULL
          FROM cte_statement_summary('alice', 'USD', :'from', :'to')
    ) lines ORDER BY part, entry_id
) TO STDOUT WITH (FORMAT csv, HEADER);

\echo '## Balances'
SELECT a.account_id, b.currency, b.balance, b.available
  FROM (VALUES ('alice'), ('bob'), ('merchant'), ('shop')) AS a(account_id),
       LATERAL cte_account_balances(a.account_id) b
 ORDER BY 1, 2;

\echo '## The @world system account is the mirror image of all money that came in'
SELECT cte_balance('@world', 'USD') AS world_usd, cte_balance('@world', 'EUR') AS world_eur;

\echo '## The journal (last 12 entries): every posting balances in its currency; reversals undo'
SELECT kind, account_id, currency, amount, balance_after, reference
  FROM (SELECT * FROM cte_entries ORDER BY id DESC LIMIT 12) last ORDER BY id;

\echo '## Double entry holds: cte_verify_ledger() lists every broken invariant (none)'
SELECT count(*) AS violations FROM cte_verify_ledger();

\echo '## The journal is tamper-evident: each wallet''s entries form a SHA-256 chain; a digest to publish'
SELECT entries_checked, broken_entry_id FROM cte_verify_chains();
SELECT cte_ledger_digest() AS digest \gset
SELECT :'digest' AS published_digest, cte_verify_digest(:'digest') AS ledger_extends_it;

\echo '## The journal is append-only, even for a superuser'
DO $$
BEGIN
    UPDATE cte_ctel.cte_entries SET amount = amount * 2;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'UPDATE cte_entries -> %: %', SQLSTATE, SQLERRM;
END
$$;
