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

\echo '## Balances'
SELECT a.account_id, b.currency, b.balance, b.available
  FROM (VALUES ('alice'), ('bob'), ('merchant')) AS a(account_id),
       LATERAL cte_account_balances(a.account_id) b
 ORDER BY 1, 2;

\echo '## The @world system account is the mirror image of all money that came in'
SELECT cte_balance('@world', 'USD') AS world_usd, cte_balance('@world', 'EUR') AS world_eur;

\echo '## The journal: every posting is a balanced pair of entries'
SELECT kind, account_id, currency, amount, balance_after, reference
  FROM cte_entries ORDER BY id;

\echo '## Double entry holds: cte_verify_ledger() lists every broken invariant (none)'
SELECT count(*) AS violations FROM cte_verify_ledger();

\echo '## The journal is append-only, even for a superuser'
DO $$
BEGIN
    UPDATE cte_ctel.cte_entries SET amount = amount * 2;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'UPDATE cte_entries -> %: %', SQLSTATE, SQLERRM;
END
$$;
