-- cte_verify_ledger() reports every broken invariant, one row each; a healthy ledger has none.
-- Here a superuser corrupts the ledger behind the API's back, one way at a time, and the check
-- names what broke. Each corruption is rolled back.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS posted;
SELECT cte_transfer('alice', 'bob', 40, 'USD') IS NOT NULL AS posted;
SELECT check_name, regexp_replace(detail, '[0-9a-f]{64}', '<sha-256>', 'g') AS detail FROM cte_verify_ledger();

-- A balance changed without entries: the balance no longer matches its entries, and the
-- currency no longer sums to zero.
SAVEPOINT corrupt;
UPDATE cte_balances SET balance = balance + 1 WHERE account_id = 'alice';
SELECT check_name, regexp_replace(detail, '[0-9a-f]{64}', '<sha-256>', 'g') AS detail FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT corrupt;

-- An entry without its counter-entry, its balance kept in step: the posting does not balance,
-- so the currency no longer sums to zero.
INSERT INTO cte_entries (posting_id, kind, account_id, currency, amount, balance_after)
VALUES ('00000000-0000-0000-0000-000000000001', 'deposit', 'bob', 'USD', 5, 45);
UPDATE cte_balances SET balance = 45 WHERE account_id = 'bob';
SELECT check_name, regexp_replace(detail, '[0-9a-f]{64}', '<sha-256>', 'g') AS detail FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT corrupt;

-- An entry whose recorded balance_after is not where its account's entries add up to.
INSERT INTO cte_entries (posting_id, kind, account_id, currency, amount, balance_after)
VALUES ('00000000-0000-0000-0000-000000000003', 'transfer', 'bob', 'USD', -5, 30),
       ('00000000-0000-0000-0000-000000000003', 'transfer', 'alice', 'USD', 5, 65);
UPDATE cte_balances SET balance = balance + CASE account_id WHEN 'bob' THEN -5 ELSE 5 END;
SELECT check_name, regexp_replace(regexp_replace(detail, '^entry \d+', 'entry N'), '[0-9a-f]{64}', '<sha-256>', 'g') AS detail
  FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT corrupt;

-- A posting that mixes currencies balances in sum but not per currency.
INSERT INTO cte_entries (posting_id, kind, account_id, currency, amount, balance_after)
VALUES ('00000000-0000-0000-0000-000000000002', 'transfer', '@world', 'EUR', -5, NULL),
       ('00000000-0000-0000-0000-000000000002', 'transfer', '@world', 'USD', 5, NULL);
SELECT check_name FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT corrupt;

-- An account that may not go negative below zero (only possible with its CHECK dropped).
ALTER TABLE cte_balances DROP CONSTRAINT cte_balances_available_check;
UPDATE cte_balances SET balance = -1 WHERE account_id = 'bob';
SELECT check_name FROM cte_verify_ledger() WHERE check_name = 'negative_balance';
ROLLBACK TO SAVEPOINT corrupt;

-- A system account delta lost: @world no longer matches its entries.
DELETE FROM cte_system_deltas WHERE id = (SELECT min(id) FROM cte_system_deltas);
SELECT check_name, regexp_replace(detail, '[0-9a-f]{64}', '<sha-256>', 'g') AS detail FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT corrupt;

-- A history row naming a step of another event (history has no foreign keys: this check is
-- what holds it).
INSERT INTO cte_change_outbox (event_id, actor, kinds, transaction_ids, lien_ids, old_statuses,
                               new_statuses)
SELECT e.id, 'test', ARRAY['transaction'], ARRAY[t.id], ARRAY[NULL::uuid], ARRAY['pending'],
       ARRAY['running']
  FROM cte_events e, cte_transactions t WHERE t.event_id <> e.id LIMIT 1;
SELECT check_name FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT corrupt;

-- The constraint backstops: even a superuser's direct write cannot break these.
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET balance = -1 WHERE account_id = 'bob'$$);
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET reserved = -1 WHERE account_id = 'bob'$$);
SELECT test.refusal($$INSERT INTO cte_ctel.cte_entries (posting_id, kind, account_id, currency, amount)
                      VALUES (gen_random_uuid(), 'deposit', 'bob', 'USD', 0)$$);
SELECT test.refusal($$INSERT INTO cte_ctel.cte_accounts (id, is_system) VALUES ('@fake', false)$$);
-- Money is finite: NaN and infinities are refused wherever money is stored.
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET balance = 'NaN' WHERE account_id = 'bob'$$);
SELECT test.refusal($$UPDATE cte_ctel.cte_balances SET balance = 'Infinity' WHERE account_id = 'bob'$$);
SELECT test.refusal($$INSERT INTO cte_ctel.cte_entries (posting_id, kind, account_id, currency, amount)
                      VALUES (gen_random_uuid(), 'deposit', '@world', 'USD', 'NaN')$$);
SELECT test.refusal($$INSERT INTO cte_ctel.cte_system_deltas (account_id, currency, amount)
                      VALUES ('@world', 'USD', '-Infinity')$$);
SELECT test.refusal($$INSERT INTO cte_ctel.cte_liens (account_id, currency, amount, status)
                      VALUES ('bob', 'USD', 'NaN', 'active')$$);

SELECT check_name, regexp_replace(detail, '[0-9a-f]{64}', '<sha-256>', 'g') AS detail FROM cte_verify_ledger();
ROLLBACK;
