-- The error catalog: every reason a call can be refused for has its own SQLSTATE, listed by
-- cte_error_catalog() and in docs/errors.md. Each reason is triggered once below, in catalog
-- order; the last query shows that no reason was left out.
SET search_path = cte_ctel, test;
BEGIN;
SELECT reason, sqlstate FROM cte_error_catalog() ORDER BY reason;
SELECT count(*) AS reasons, count(DISTINCT sqlstate) AS distinct_sqlstates FROM cte_error_catalog();

SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 10, 'USD') IS NOT NULL AS posted;
TRUNCATE test.observed_sqlstates;

SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', NULL, 'USD')$$);         -- null_argument
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 'ten', 'USD')$$);        -- amount_malformed
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 'NaN', 'USD')$$);        -- amount_not_finite
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 0, 'USD')$$);            -- amount_not_positive
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 0.001, 'USD')$$);        -- amount_scale_exceeded
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1e20, 'USD')$$);         -- amount_too_large
SELECT test.refusal($$SELECT cte_ctel.cte_balance(repeat('a', 65), 'USD')$$);       -- text_too_long
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('@me', ARRAY['USD'])$$);  -- identifier_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('NEW', 20)$$);            -- currency_scale_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('c', ARRAY[]::text[])$$);  -- currency_list_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('c', ARRAY['USD'], false, '1')$$); -- metadata_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'alice', 1, 'USD')$$);  -- same_account
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('c',
    (SELECT array_agg('C' || lpad(i::text, 3, '0')) FROM generate_series(1, 33) i))$$); -- limit_exceeded
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1, 'XYZ')$$);           -- currency_unknown
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('USD', 3)$$);             -- currency_exists
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('carol', 1, 'USD')$$);            -- account_unknown
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('alice', ARRAY['USD'])$$); -- account_exists
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1, 'EUR')$$);            -- currency_not_held
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('@world', 1, 'USD')$$);           -- system_account_refused
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('bob', 'alice', 1, 'USD')$$);    -- insufficient_funds
SELECT test.refusal($$DELETE FROM cte_ctel.cte_entries$$);                          -- journal_append_only

-- Every reason was triggered, except those no SQL function can reach yet: rate_invalid is
-- the exchange rate's refusal, reachable once the wallet.exchange step exists.
SELECT c.reason AS not_triggered
  FROM cte_error_catalog() c
 WHERE c.sqlstate NOT IN (SELECT sqlstate FROM test.observed_sqlstates)
 ORDER BY 1;
ROLLBACK;
