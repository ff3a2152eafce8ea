-- The built-in step types beyond transfers and deposits: a withdrawal, an exchange with a fee
-- (rounded half-to-even, each currency balanced through @exchange), and a batch that runs its
-- items in order, all or nothing, with a result per item.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD', 'EUR', 'JPY']);
SELECT cte_create_account('bob', ARRAY['USD', 'EUR']);
SELECT cte_create_account('fees', ARRAY['USD']);
SELECT cte_deposit('alice', 500, 'USD') IS NOT NULL AS funded;

-- Withdrawal: money leaves through @world.
SELECT cte_create_event('cash out') AS w \gset
SELECT cte_add_transaction(:'w', 'withdraw', 'wallet.withdrawal',
    '{"account_id": "alice", "amount": 25, "currency": "USD", "reference": "wd-1"}') IS NOT NULL AS added;
SELECT cte_start_event(:'w');
SELECT cte_balance('alice', 'USD') AS alice_usd;

-- The seed's exchange: 100.00 USD at 0.85 to EUR with a 2.50 USD fee.
SELECT cte_create_event('fx') AS x \gset
SELECT cte_add_transaction(:'x', 'convert', 'wallet.exchange', '{
    "source_account_id": "alice", "source_currency": "USD", "source_amount": 100.00,
    "destination_account_id": "bob", "destination_currency": "EUR", "exchange_rate": 0.85,
    "reference": "exchange-ref-123", "fee_account_id": "fees", "fee_amount": 2.50, "fee_currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'x');
SELECT kind, account_id, currency, amount FROM cte_entries
 WHERE reference = 'exchange-ref-123' ORDER BY id;
SELECT account_id, currency, balance FROM cte_ledger_balances
 WHERE (account_id, currency) IN (('alice', 'USD'), ('bob', 'EUR'), ('fees', 'USD'),
                                  ('@exchange', 'USD'), ('@exchange', 'EUR'))
 ORDER BY account_id, currency;

-- Rounding: 0.27 USD at 0.5 is 0.135 EUR, which rounds half-to-even to 0.14; 1.00 USD at
-- 151.235 is 151.235 JPY, which rounds to 151. A stated destination_amount must match.
SELECT cte_create_event('fx rounding') AS xr \gset
SELECT cte_add_transaction(:'xr', 'small', 'wallet.exchange', '{
    "source_account_id": "alice", "source_currency": "USD", "source_amount": "0.27",
    "destination_account_id": "alice", "destination_currency": "EUR", "exchange_rate": "0.5"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'xr', 'yen', 'wallet.exchange', '{
    "source_account_id": "alice", "source_currency": "USD", "source_amount": "1.00",
    "destination_account_id": "alice", "destination_currency": "JPY", "exchange_rate": "151.235",
    "destination_amount": 151}') IS NOT NULL AS added;
SELECT cte_start_event(:'xr');
SELECT currency, balance FROM cte_account_balances('alice') ORDER BY currency;
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 'bad', 'wallet.exchange', '{
    "source_account_id": "alice", "source_currency": "USD", "source_amount": "1.00",
    "destination_account_id": "alice", "destination_currency": "JPY", "exchange_rate": "151.235",
    "destination_amount": 152}')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 'bad', 'wallet.exchange', '{
    "source_account_id": "alice", "source_currency": "USD", "source_amount": "1.00",
    "destination_account_id": "alice", "destination_currency": "JPY", "exchange_rate": 0}')$$);

-- A batch: items in order, one result each.
SELECT cte_create_event('settlement') AS b \gset
SELECT cte_add_transaction(:'b', 'end of day', 'batch.operation', '{
    "batch_id": "batch-123", "description": "End-of-day settlement", "transactions": [
      {"id": "tx-1", "type": "wallet.transfer", "payload": {"source_account_id": "alice",
        "destination_account_id": "bob", "amount": 100.00, "currency": "USD", "reference": "b-1"}},
      {"id": "tx-2", "type": "wallet.exchange", "payload": {"source_account_id": "bob",
        "source_currency": "USD", "source_amount": 50.00, "destination_account_id": "bob",
        "destination_currency": "EUR", "exchange_rate": 0.85}}]}') IS NOT NULL AS added;
SELECT cte_start_event(:'b');
SELECT jsonb_path_query(result, '$.items[*]') - 'postings' AS item,
       jsonb_array_length(jsonb_path_query(result, '$.items[*].postings')) AS postings
  FROM cte_transactions WHERE event_id = :'b';
SELECT * FROM cte_account_balances('bob');

-- A batch whose second item cannot be paid leaves nothing of its first, and says which failed.
SELECT cte_create_event('bad batch') AS bb \gset
SELECT cte_add_transaction(:'bb', 'two items', 'batch.operation', '{"transactions": [
      {"id": "ok-1", "type": "wallet.transfer", "payload": {"source_account_id": "alice",
        "destination_account_id": "bob", "amount": 1, "currency": "USD"}},
      {"id": "too-much", "type": "wallet.transfer", "payload": {"source_account_id": "bob",
        "destination_account_id": "alice", "amount": 99999, "currency": "USD"}}]}') IS NOT NULL AS added;
SELECT test.ledger_state() AS before_batch \gset
SELECT cte_start_event(:'bb');
SELECT status, error_sqlstate, error FROM cte_transactions WHERE event_id = :'bb';
SELECT test.ledger_state() = :'before_batch' AS ledger_unchanged;

-- A batch is written all at once, but its items see what the items before them left: bob, who
-- holds 50 USD, can pay 60 only after alice's item; each entry records the balance it reached.
SELECT cte_create_event('chained batch') AS cb \gset
SELECT cte_add_transaction(:'cb', 'chain', 'batch.operation', '{"transactions": [
      {"id": "in", "type": "wallet.transfer", "payload": {"source_account_id": "alice",
        "destination_account_id": "bob", "amount": 10, "currency": "USD"}},
      {"id": "on", "type": "wallet.transfer", "payload": {"source_account_id": "bob",
        "destination_account_id": "alice", "amount": 60, "currency": "USD"}},
      {"id": "back", "type": "wallet.transfer", "payload": {"source_account_id": "alice",
        "destination_account_id": "bob", "amount": 0.5, "currency": "USD"}}]}') IS NOT NULL AS added;
SELECT cte_start_event(:'cb');
SELECT e.account_id, e.amount, e.balance_after
  FROM cte_entries e JOIN cte_transactions t ON t.id = e.transaction_id
 WHERE t.event_id = :'cb' AND e.currency = 'USD' ORDER BY e.id;
SELECT count(*) AS violations FROM cte_verify_ledger();

-- Payloads are checked when the step is added.
SELECT cte_create_event('checks') AS k \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.transfer',
    '{"source_account_id": "alice", "amount": 1, "currency": "USD"}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": "one", "currency": "USD"}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 1, "currency": "USD", "memo": "x"}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit',
    '{"account_id": "nobody", "amount": 1, "currency": "USD"}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit',
    '{"account_id": "bob", "amount": 1, "currency": "JPY"}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit',
    '{"account_id": "bob", "amount": 1.001, "currency": "USD"}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '[1, 2]')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.teleport', '{}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'batch.operation',
    '{"transactions": [{"id": 1, "type": "external", "payload": {}}]}')$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{}', max_attempts => 0)$$, :'k'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{}', "order" => 0)$$, :'k'));
SELECT cte_add_transaction(:'k', 'first', 'external', '{}', "order" => 5) IS NOT NULL AS added;
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{}', "order" => 5)$$, :'k'));
SELECT count(*) AS steps_in_checks FROM cte_transactions WHERE event_id = :'k';
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
