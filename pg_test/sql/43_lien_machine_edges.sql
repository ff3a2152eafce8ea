-- Edges of the lien machine (issue 21), each found by a review of the move of every lien
-- decision into the core, and each failing before its fix:
-- 1. An expires_at in the far future (PostgreSQL takes times up to 294276 AD): the machine
--    reads a lien's expiry as microseconds since 1970, which such a time overflowed (22003) on
--    every read of the lien, so it could be neither released nor captured: its funds were held
--    for good. Now a time after 200000 AD reads as that (it never comes), and before 1970 as
--    1970 (it has passed).
-- 2. A capture of a lien that may not be captured (released, expired, pending) with an amount
--    that is not one: refused for the lien (transition_not_allowed), as before the move, not
--    for the amount.
-- 3. An executor named by an oid no function has (regprocedure takes a bare number unchecked):
--    refused (executor_invalid), not an internal error.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('le-a', ARRAY['USD']);
SELECT cte_create_account('le-b', ARRAY['USD']);
SELECT cte_deposit('le-a', 100, 'USD') IS NOT NULL AS funded;

SELECT ctel_create_lien(NULL, 'le-a', 10, 'USD', '294270-01-01 00:00:00+00') AS far \gset
SELECT ctel_create_lien(NULL, 'le-a', 20, 'USD', 'infinity') AS never \gset
SELECT ctel_create_lien(NULL, 'le-a', 30, 'USD', '294270-01-01 00:00:00+00') AS far_capture \gset
SELECT balance, reserved FROM cte_balances WHERE account_id = 'le-a';
SELECT ctel_release_lien(:'far');
SELECT ctel_release_lien(:'never');
SELECT ctel_capture_lien(:'far_capture', 'le-b', 5, NULL, false) IS NOT NULL AS captured_part;
SELECT status FROM cte_liens WHERE id IN (:'far', :'never', :'far_capture') ORDER BY amount;
SELECT account_id, balance, reserved FROM cte_balances WHERE account_id LIKE 'le-%' ORDER BY 1;

-- The released lien: refused for what it is, whatever the amount asked.
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, 'le-b', 0)$q$, :'far'));
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, 'le-b', 1.001)$q$, :'far'));
-- The active one: now its amount is read.
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, 'le-b', 1.001)$q$, :'far_capture'));

-- No function has oid 4000000000.
SET ROLE test_registrar;
SELECT test.refusal($q$SELECT cte_ctel.cte_register_executor('le.none', 4000000000::oid::regprocedure)$q$);
RESET ROLE;
SELECT * FROM cte_verify_ledger();
ROLLBACK;
