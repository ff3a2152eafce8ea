-- A balance is never rounded (0.3.0, found while adding the core's assertions). Amounts fit a
-- Decimal by their bounds (16 digits before the point, 12 after at most), but a wallet's
-- balance grows, and Decimal's own addition rounds a sum that needs more than its 96 bits at
-- full scale instead of failing. Before: in a 12-decimal currency, the eighth deposit of the
-- largest amount lost the balance's last decimal, a tiny deposit after it was lost whole, and
-- cte_verify_ledger() found the balance off its entries and the currency's sum off zero. Now
-- the deposit that would round is refused (limit_exceeded) and changes nothing.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_currency('XPT', 12);
SELECT cte_create_account('exact-big', ARRAY['XPT']);
SELECT count(cte_deposit('exact-big', 9999999999999999.999999999999, 'XPT')) AS deposited
  FROM generate_series(1, 7);
SELECT balance FROM cte_balances WHERE account_id = 'exact-big';
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('exact-big', 9999999999999999.999999999999, 'XPT')$$);
SELECT cte_deposit('exact-big', 0.000000000001, 'XPT') IS NOT NULL AS tiny_deposited;
SELECT balance, balance = (SELECT sum(amount) FROM cte_entries WHERE account_id = 'exact-big')
       AS equals_its_entries
  FROM cte_balances WHERE account_id = 'exact-big';
SELECT * FROM cte_verify_ledger();
ROLLBACK;
