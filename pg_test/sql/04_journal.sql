-- The journal is append-only: UPDATE, DELETE and TRUNCATE of cte_entries are refused for
-- everyone, this superuser included. A posting is corrected by posting its reversal.
SET search_path = cte_ctel, test;
BEGIN;

SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_deposit('alice', 10, 'USD') IS NOT NULL AS posted;
SELECT current_setting('is_superuser') AS superuser;

SELECT test.refusal($$UPDATE cte_ctel.cte_entries SET amount = amount * 2$$);
SELECT test.refusal($$DELETE FROM cte_ctel.cte_entries$$);
SELECT test.refusal($$TRUNCATE cte_ctel.cte_entries$$);
SELECT count(*) AS entries, sum(amount) AS total FROM cte_entries;

-- The trigger function, like every function of the extension, has a fixed search_path.
SELECT p.proname, p.proconfig FROM pg_proc p
 WHERE p.proname = 'cte_journal_append_only';

ROLLBACK;
