-- Currencies: the common ISO 4217 ones come registered with their scales; more can be added.
-- A currency's scale is the most decimals any amount of it may have.
SET search_path = cte_ctel, test;
BEGIN;

SELECT code, scale FROM cte_currencies
 WHERE code IN ('USD', 'EUR', 'GBP', 'JPY', 'KWD', 'BTC') ORDER BY code;
SELECT count(*) >= 60 AS many_registered FROM cte_currencies;

-- Registering a new currency also gives every system account a balance in it.
SELECT cte_create_currency('USDC', 6);
SELECT code, scale FROM cte_currencies WHERE code = 'USDC';
SELECT account_id, currency, balance FROM cte_ledger_balances
 WHERE currency = 'USDC' ORDER BY account_id;

-- Registering it again with the same scale changes nothing.
SELECT test.ledger_state() AS before \gset
SELECT cte_create_currency('USDC', 6);
SELECT test.ledger_state() = :'before' AS unchanged;

-- Refusals: each its own SQLSTATE, and the ledger unchanged.
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('USDC', 2)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('usd', 2)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('US', 2)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('ABCDEFGHIJKLM', 2)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('1AB', 2)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('AB-C', 2)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('NEW', -1)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('NEW', 13)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency(NULL, 2)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('NEW', NULL)$$);
SELECT count(*) AS new_registered FROM cte_currencies WHERE code = 'NEW';

-- A backend keeps the scales it has read (a scale never changes), but not one read from a
-- currency registered in a (sub)transaction that rolled back: it is unknown again.
SELECT cte_create_account('cur-alice', ARRAY['USD']);
SAVEPOINT before_tmp;
SELECT cte_create_currency('TMPX', 4);
SELECT cte_balance('@world', 'TMPX') AS read_its_scale;
ROLLBACK TO SAVEPOINT before_tmp;
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('cur-alice', 1, 'TMPX')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_balance('@world', 'TMPX')$$);
SELECT cte_create_currency('TMPX', 2);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('cur-alice', 1.001, 'TMPX')$$);

ROLLBACK;
