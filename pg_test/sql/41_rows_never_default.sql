-- A row the store cannot read stops the call; it is never read as a default (0.3.0, issue 21).
-- Before: a wallet's chain head that is not a link was read as the chain's start, and the next
-- posting linked from there as if the wallet had no history. Here a head of 5 bytes, written
-- around every guard by a superuser, makes the next posting on that wallet fail as an internal
-- error (XX000) naming what it could not read, and nothing is posted.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('rd-a', ARRAY['USD']);
SELECT cte_create_account('rd-b', ARRAY['USD']);
SELECT cte_deposit('rd-a', 10, 'USD') IS NOT NULL AS funded;
UPDATE cte_balances SET chain_head = '\x0102030405' WHERE account_id = 'rd-a';
CREATE TEMP TABLE caught (sqlstate text, names_the_head boolean);
DO $$
BEGIN
    PERFORM cte_ctel.cte_transfer('rd-a', 'rd-b', 1, 'USD');
EXCEPTION WHEN OTHERS THEN
    INSERT INTO caught VALUES (SQLSTATE, SQLERRM LIKE '%a chain head of 32 bytes missing%');
END
$$;
SELECT * FROM caught;
SELECT account_id, balance FROM cte_balances WHERE account_id IN ('rd-a', 'rd-b') ORDER BY 1;
SELECT count(*) AS entries_of_rd_b FROM cte_entries WHERE account_id = 'rd-b';
ROLLBACK;
