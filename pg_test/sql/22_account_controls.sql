-- Account controls (SPEC §3 v2): a currency added to an account, a floor per balance (an
-- overdraft line, or a minimum to keep), freezing and closing. Each refusal leaves the ledger
-- as it was (test.refusal flags [LEDGER CHANGED] otherwise), and the ledger verifies after each
-- step. Every change is in the change feed.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('ac-alice', ARRAY['USD']);
SELECT cte_create_account('ac-bob', ARRAY['USD']);
SELECT cte_deposit('ac-alice', 100, 'USD') IS NOT NULL AS funded;

-- A currency added: a zero balance, with the account's floor; adding it again changes nothing.
SELECT cte_add_currency('ac-alice', 'EUR') AS added, cte_add_currency('ac-alice', 'EUR') AS again;
SELECT currency, balance, reserved, available FROM cte_account_balances('ac-alice');
SELECT test.refusal($$SELECT cte_ctel.cte_add_currency('ac-alice', 'XYZ')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_add_currency('nobody', 'EUR')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_add_currency('@world', 'EUR')$$);

-- A floor: an overdraft line of 50 lets alice spend down to -50, and no further.
SELECT cte_set_limits('ac-alice', 'USD', -50);
SELECT cte_transfer('ac-alice', 'ac-bob', 150, 'USD') IS NOT NULL AS overdrawn;
SELECT balance, available FROM cte_account_balances('ac-alice') WHERE currency = 'USD';
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('ac-alice', 'ac-bob', 0.01, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'ac-alice', 0.01, 'USD')$$);
-- A floor above what the balance can spend now is refused; so is one the currency cannot hold.
SELECT test.refusal($$SELECT cte_ctel.cte_set_limits('ac-alice', 'USD', -49.99)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_set_limits('ac-alice', 'USD', -50.001)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_set_limits('ac-alice', 'JPY', 0)$$);
-- Money coming back is never refused, even below the floor of zero it will get again.
SELECT cte_transfer('ac-bob', 'ac-alice', 150, 'USD') IS NOT NULL AS repaid;
-- A positive floor: bob must keep 100 of his 150.
SELECT cte_deposit('ac-bob', 150, 'USD') IS NOT NULL AS funded;
SELECT cte_set_limits('ac-bob', 'USD', 100);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('ac-bob', 'ac-alice', 50.01, 'USD')$$);
SELECT cte_transfer('ac-bob', 'ac-alice', 50, 'USD') IS NOT NULL AS down_to_the_floor;
-- NULL: no floor at all (what allow_negative gives); then back to zero once it is repaid.
SELECT cte_set_limits('ac-bob', 'USD', NULL);
SELECT cte_transfer('ac-bob', 'ac-alice', 1000, 'USD') IS NOT NULL AS unlimited;
SELECT test.refusal($$SELECT cte_ctel.cte_set_limits('ac-bob', 'USD', 0)$$);
SELECT cte_transfer('ac-alice', 'ac-bob', 1000, 'USD') IS NOT NULL AS repaid;
SELECT cte_set_limits('ac-bob', 'USD', 0);
SELECT account_id, currency, balance, min_balance, status FROM cte_ledger_balances
 WHERE account_id IN ('ac-alice', 'ac-bob') ORDER BY 1, 2;
-- The row's CHECK holds the floor too, whatever the code does.
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET balance = balance - 1000
                       WHERE account_id = 'ac-alice' AND currency = 'USD'$$);
SELECT count(*) AS violations FROM cte_verify_ledger();

-- Frozen: no new debit, no new lien; credits still post, and so do the capture of a lien made
-- before the freeze and the compensation of an event that posted before it.
SELECT ctel_create_lien(NULL, 'ac-alice', 10, 'USD') AS before_freeze \gset
SELECT cte_create_event('paid before the freeze') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "ac-bob", "destination_account_id": "ac-alice", "amount": 5, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'e', 'bank', 'external', '{}') IS NOT NULL AS added;
SELECT cte_start_event(:'e');
SELECT cte_freeze_account('ac-alice', 'fraud review'), cte_freeze_account('ac-alice', 'again');
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('ac-alice', 'ac-bob', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'ac-alice', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_add_currency('ac-alice', 'GBP')$$);
SELECT cte_transfer('ac-bob', 'ac-alice', 1, 'USD') IS NOT NULL AS credited;
SELECT ctel_capture_lien(:'before_freeze', 'ac-bob', 4) IS NOT NULL AS captured;
-- The waiting event is cancelled: its compensation takes the 5 back out of the frozen account.
SELECT cte_cancel_event(:'e', 'customer cancelled');
SELECT cte_complete_compensation(t.id) FROM cte_transactions t WHERE t.event_id = :'e' AND t.type = 'external';
SELECT balance, available FROM cte_account_balances('ac-alice') WHERE currency = 'USD';
SELECT cte_unfreeze_account('ac-alice', 'cleared');
SELECT cte_transfer('ac-alice', 'ac-bob', 1, 'USD') IS NOT NULL AS debited_again;
SELECT count(*) AS violations FROM cte_verify_ledger();

-- Closed: only an empty account with nothing pending; after that it takes nothing at all.
SELECT cte_create_account('ac-carol', ARRAY['USD', 'EUR']);
SELECT cte_deposit('ac-carol', 3, 'USD') IS NOT NULL AS funded;
SELECT ctel_create_lien(NULL, 'ac-carol', 1, 'USD') AS carol_hold \gset
SELECT test.refusal($$SELECT cte_ctel.cte_close_account('ac-carol')$$);
SELECT cte_transfer('ac-carol', 'ac-bob', 2, 'USD') IS NOT NULL AS emptied;
SELECT test.refusal($$SELECT cte_ctel.cte_close_account('ac-carol')$$);
SELECT ctel_capture_lien(:'carol_hold', 'ac-bob') IS NOT NULL AS captured;
SELECT cte_close_account('ac-carol', 'customer left');
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('ac-carol', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('ac-bob', 'ac-carol', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'ac-carol', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_freeze_account('ac-carol', 'too late')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_unfreeze_account('ac-carol')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_set_limits('ac-carol', 'USD', -10)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_close_account('ac-carol')$$);
-- An event that would post to it is compensated, the refusal its error.
SELECT cte_create_event('to a closed account') AS closed_pay \gset
SELECT cte_add_transaction(:'closed_pay', 'pay', 'wallet.transfer',
    '{"source_account_id": "ac-bob", "destination_account_id": "ac-carol", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'closed_pay');
SELECT status, error_sqlstate, error FROM cte_transactions WHERE event_id = :'closed_pay';
-- A balance row closed with money on it is refused by its CHECK.
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET status = 'closed'
                       WHERE account_id = 'ac-bob' AND currency = 'USD'$$);
SELECT id, status, status_reason FROM cte_accounts WHERE id LIKE 'ac-%' ORDER BY id;
SELECT count(*) AS violations FROM cte_verify_ledger();

-- Every control is in the feed: the account, what changed, why, by whom.
SELECT cte_run_maintenance() IS NOT NULL AS sequenced;
SELECT account_id, old_status, new_status, reason FROM cte_changes(0, 10000)
 WHERE kind = 'account' ORDER BY position;

-- Only an admin sets limits, freezes and closes; an operator may add a currency.
CREATE ROLE ac_operator IN ROLE cte_operator;
GRANT USAGE ON SCHEMA test TO ac_operator;
GRANT ALL ON test.observed_sqlstates TO ac_operator;
SET ROLE ac_operator;
SELECT cte_ctel.cte_add_currency('ac-bob', 'EUR') AS added;
SELECT test.refusal($$SELECT cte_ctel.cte_set_limits('ac-bob', 'USD', -1000000)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_freeze_account('ac-bob', 'x')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_close_account('ac-bob')$$);
RESET ROLE;
ROLLBACK;
