-- The large ledger of `bench/run scale`, loaded after setup.sql (with naccounts = 0): :naccounts
-- accounts funded with a billion USD each and :postings journal postings (two entries each),
-- in the engine and in the plain baseline alike. Rows are written directly, not through the
-- API, as the API would take hours for this much: the journal is synthetic (each posting a
-- deposit of 0.01 from @world; balance_after is not a running sum, so cte_verify_ledger() is
-- not expected to pass here). What it measures is the cost of tables and indexes this size.
-- Rows are generated in index order so that loading stays fast with the indexes in place.
\set ON_ERROR_STOP 1
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
CREATE TEMP TABLE ids AS
SELECT id, row_number() OVER (ORDER BY id COLLATE "C") AS n
  FROM (SELECT 'a' || i AS id FROM generate_series(1, :naccounts) i) a ORDER BY id COLLATE "C";

INSERT INTO cte_ctel.cte_accounts (id) SELECT id FROM ids;
INSERT INTO cte_ctel.cte_balances (account_id, currency, allow_negative, balance)
SELECT id, 'USD', false, 1000000000 FROM ids;
INSERT INTO plain.balances (account_id, currency, balance) SELECT id, 'USD', 1000000000 FROM ids;

-- :postings postings spread evenly over the accounts, account by account.
\set per_account (:postings / :naccounts)
INSERT INTO cte_ctel.cte_entries (posting_id, kind, account_id, currency, amount, balance_after)
SELECT pg_catalog.lpad(pg_catalog.to_hex(ids.n * 1000 + k), 32, '0')::uuid, 'deposit', side.account, 'USD', side.amount,
       CASE WHEN side.account = '@world' THEN NULL ELSE 1000000000 END
  FROM ids, generate_series(1, :per_account) k,
       LATERAL (VALUES ('@world', -0.01), (ids.id, 0.01)) AS side(account, amount);
INSERT INTO plain.entries (posting_id, account_id, currency, amount, balance_after)
SELECT pg_catalog.lpad(pg_catalog.to_hex(ids.n * 1000 + k), 32, '0')::uuid, side.account, 'USD', side.amount,
       CASE WHEN side.account = '@world' THEN NULL ELSE 1000000000 END
  FROM ids, generate_series(1, :per_account) k,
       LATERAL (VALUES ('@world', -0.01), (ids.id, 0.01)) AS side(account, amount);
-- One heavy account: a1 gets 200,000 postings more, for the statement page and the balance as of
-- an instant; bench.heavy keeps where its run starts in each journal.
CREATE TABLE bench.heavy (engine_first bigint, plain_first bigint);
INSERT INTO bench.heavy SELECT (SELECT max(id) FROM cte_ctel.cte_entries), (SELECT max(id) FROM plain.entries);
INSERT INTO cte_ctel.cte_entries (posting_id, kind, account_id, currency, amount, balance_after)
SELECT pg_catalog.lpad(pg_catalog.to_hex(k), 32, 'f')::uuid, 'deposit', side.account, 'USD', side.amount,
       CASE WHEN side.account = '@world' THEN NULL ELSE 1000000000 END
  FROM generate_series(1, 200000) k, LATERAL (VALUES ('@world', -0.01), ('a1', 0.01)) AS side(account, amount);
INSERT INTO plain.entries (posting_id, account_id, currency, amount, balance_after)
SELECT pg_catalog.lpad(pg_catalog.to_hex(k), 32, 'f')::uuid, side.account, 'USD', side.amount,
       CASE WHEN side.account = '@world' THEN NULL ELSE 1000000000 END
  FROM generate_series(1, 200000) k, LATERAL (VALUES ('@world', -0.01), ('a1', 0.01)) AS side(account, amount);
VACUUM ANALYZE;
SELECT (SELECT count(*) FROM cte_ctel.cte_accounts WHERE NOT is_system) AS accounts,
       (SELECT count(*) FROM cte_ctel.cte_entries) AS engine_entries,
       (SELECT count(*) FROM plain.entries) AS plain_entries;
