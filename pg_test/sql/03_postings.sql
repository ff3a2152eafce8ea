-- Postings: deposits bring money in through the @world system account, transfers move it
-- between wallets. Every posting is two entries of one currency that sum to zero; a wallet
-- entry records the balance it left behind. Amounts are exact: never rounded, never a float.
SET search_path = cte_ctel, test;
BEGIN;

SELECT cte_create_account('alice', ARRAY['USD', 'JPY', 'BTC']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_create_account('overdraft', ARRAY['USD'], allow_negative => true);

SELECT cte_deposit('alice', 100.50, 'USD', 'dep-1') IS NOT NULL AS posted;
SELECT cte_deposit('alice', 1500, 'JPY') IS NOT NULL AS posted;
SELECT cte_deposit('alice', 0.00000001, 'BTC') IS NOT NULL AS posted;
SELECT cte_deposit('alice', 10.100, 'USD') IS NOT NULL AS trailing_zeros_are_exact;
SELECT cte_transfer('alice', 'bob', 60.25, 'USD', 'pay-1') IS NOT NULL AS posted;
SELECT cte_transfer('overdraft', 'bob', 5, 'USD') IS NOT NULL AS overdraft_may_go_negative;

SELECT account_id, currency, balance, available FROM cte_ledger_balances
 WHERE account_id IN ('alice', 'bob', 'overdraft', '@world')
   AND currency IN ('USD', 'JPY', 'BTC') ORDER BY account_id, currency;

-- The journal, posting by posting.
SELECT kind, account_id, currency, amount, balance_after, reference
  FROM cte_entries ORDER BY id;
SELECT count(DISTINCT posting_id) AS postings, count(*) AS entries,
       bool_and(balanced) AS every_posting_balances
  FROM cte_entries
  JOIN (SELECT posting_id, sum(amount) = 0 AS balanced FROM cte_entries GROUP BY posting_id) p
 USING (posting_id);

-- System accounts are not updated in place: each posting appends a delta, and folding the
-- deltas into the system balance leaves every balance as it was.
SELECT count(*) AS pending_deltas FROM cte_system_deltas;
SELECT cte_balance('@world', 'USD') AS world_usd_before_fold;
SELECT cte_fold_system_balances() AS folded;
SELECT count(*) AS pending_deltas FROM cte_system_deltas;
SELECT cte_balance('@world', 'USD') AS world_usd_after_fold;
SELECT account_id, currency, folded_balance FROM cte_system_balances
 WHERE account_id = '@world' AND currency IN ('USD', 'JPY', 'BTC') ORDER BY currency;
SELECT count(*) AS violations FROM cte_verify_ledger();

-- Refusals. Amounts: zero, negative, not finite, too precise, too large.
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 0, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', -5, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 'NaN', 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 'Infinity', 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', '-Infinity', 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 10.001, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1.5, 'JPY')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 0.000000001, 'BTC')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1e16, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1e40, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', NULL, 'USD')$$);
-- Accounts and currencies.
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('nobody', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('bob', 1, 'JPY')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('bob', 1, 'XYZ')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('bob', 1, 'usd')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('@world', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('bob', 1, 'USD', repeat('r', 129))$$);
-- Transfers.
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('bob', 'alice', 1000, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('bob', 'alice', 65.26, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'alice', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'nobody', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('nobody', 'alice', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'bob', 1, 'JPY')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', '@world', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer(NULL, 'bob', 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', NULL, 1, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'bob', 1, NULL)$$);

-- Exactly the whole balance can be spent, and not a cent more.
SELECT cte_transfer('bob', 'alice', 65.25, 'USD') IS NOT NULL AS spent_everything;
SELECT cte_balance('bob', 'USD') AS bob_usd;
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('bob', 'alice', 0.01, 'USD')$$);
SELECT count(*) AS violations FROM cte_verify_ledger();

ROLLBACK;
