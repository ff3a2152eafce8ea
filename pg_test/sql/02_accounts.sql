-- Accounts: a wallet holds one balance per listed currency, starts at zero, and may be
-- allowed to go negative. Ids are 1 to 64 bytes of printable text; '@' starts system ids only.
SET search_path = cte_ctel, test;
BEGIN;

SELECT cte_create_account('alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('credit-line', ARRAY['USD'], allow_negative => true,
                          metadata => '{"limit": "5000.00", "owner": "treasury"}');
SELECT cte_create_account('élodie wallet #1', ARRAY['JPY']);
SELECT cte_create_account(repeat('x', 64), ARRAY['USD']) = repeat('x', 64) AS longest_id_ok;

SELECT id, is_system, allow_negative, metadata FROM cte_accounts
 WHERE id IN ('alice', 'credit-line', 'élodie wallet #1', '@world', '@exchange') ORDER BY id;
SELECT * FROM cte_account_balances('alice');
SELECT cte_balance('alice', 'EUR') AS balance, cte_available_balance('alice', 'EUR') AS available;
SELECT * FROM cte_account_balances('credit-line');

-- Refusals, each changing nothing.
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('alice', ARRAY['USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['XXX'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['USD', 'ZZZ', 'YYY'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['usd'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY[]::text[])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['USD', 'USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['USD', NULL])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('', ARRAY['USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account(' bob', ARRAY['USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account(E'bo\tb', ARRAY['USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('@bank', ARRAY['USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account(repeat('x', 65), ARRAY['USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account(NULL, ARRAY['USD'])$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', NULL)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['USD'], NULL)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['USD'], false, '[1, 2]')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['USD'], false, '"text"')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob', ARRAY['USD'], false,
                       jsonb_build_object('blob', repeat('x', 9000)))$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('bob',
                       (SELECT array_agg('C' || lpad(i::text, 3, '0')) FROM generate_series(1, 33) i))$$);
SELECT count(*) AS bob_exists FROM cte_accounts WHERE id = 'bob';

-- Balances of what does not exist.
SELECT test.refusal($$SELECT cte_ctel.cte_balance('nobody', 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_balance('alice', 'JPY')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_balance('alice', 'XXX')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_balance('alice', NULL)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_available_balance(NULL, 'USD')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_balances('nobody')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_balances(repeat('y', 65))$$);

ROLLBACK;
