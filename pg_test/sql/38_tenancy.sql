-- Read tenancy (SPEC §12): off by default, when every reader reads everything as before. On, a
-- member of cte_tenant reads only the accounts whose owner is a role it has the rights of, and
-- the events, steps, entries, liens and changes that touch them: in the tables, the views and
-- the read functions alike. A read outside is refused with 42501 whether or not the account
-- exists, and changes nothing. Administrators, superusers and roles outside cte_tenant read
-- everything. Writes are not scoped (a shop still pays another's account).
SET search_path = cte_ctel, test;
BEGIN;
CREATE ROLE t_shop_a IN ROLE cte_operator, cte_tenant;
CREATE ROLE t_shop_b IN ROLE cte_operator, cte_tenant;
-- A login of shop A's application: it has t_shop_a's rights (and is a tenant through it).
CREATE ROLE t_shop_a_app IN ROLE t_shop_a;
CREATE ROLE t_auditor IN ROLE cte_reader;
CREATE ROLE t_platform IN ROLE cte_admin, cte_tenant;
GRANT USAGE ON SCHEMA test TO PUBLIC;
GRANT EXECUTE ON FUNCTION test.refusal(text), test.ledger_state(), test.engine_state() TO PUBLIC;
GRANT ALL ON test.observed_sqlstates TO PUBLIC;

-- Each account belongs to the role that opened it; an administrator gives one to another role.
SET ROLE t_platform;
SELECT cte_create_account('tn-platform', ARRAY['USD']);
SELECT cte_create_account('tn-seller-b', ARRAY['USD']);
SELECT cte_set_account_owner('tn-seller-b', 't_shop_b');
RESET ROLE;
SET ROLE t_shop_a;
SELECT cte_ctel.cte_create_account('tn-buyer-a', ARRAY['USD']);
RESET ROLE;
SELECT id, owner FROM cte_accounts WHERE id LIKE 'tn-%' ORDER BY id;

-- Money moves: the buyer pays seller B (shop A's event), the platform pays seller B a bonus,
-- the platform holds funds on its own account.
SELECT cte_deposit('tn-buyer-a', 100, 'USD', 'tn-in-a') IS NOT NULL AS funded;
SELECT cte_deposit('tn-platform', 500, 'USD', 'tn-in-p') IS NOT NULL AS funded;
SET ROLE t_shop_a;
SELECT cte_ctel.cte_transfer('tn-buyer-a', 'tn-seller-b', 30, 'USD', 'tn-order-1',
                             '{"shop": "tn", "order": 1}') AS order_1 \gset
RESET ROLE;
SET ROLE t_platform;
SELECT cte_transfer('tn-platform', 'tn-seller-b', 5, 'USD', 'tn-bonus',
                    '{"shop": "tn", "order": 2}') AS bonus \gset
SELECT ctel_create_lien(NULL, 'tn-platform', 7, 'USD') AS platform_lien \gset
RESET ROLE;
SELECT (cte_run_maintenance() ->> 'changes_sequenced')::int > 0 AS sequenced;

-- Off (the default): a tenant reads everything, as before (the policies say so).
SELECT count(*) AS tenancy_rows FROM cte_read_tenancy;
SET ROLE t_shop_a;
SELECT count(*) AS accounts FROM cte_accounts WHERE id LIKE 'tn-%';
SELECT cte_balance('tn-platform', 'USD') AS platform_balance;
RESET ROLE;

-- On: only an administrator turns it on or off; again is the same.
SET ROLE t_shop_a;
SELECT test.refusal($$SELECT cte_ctel.cte_set_read_tenancy(true)$$);
RESET ROLE;
SET ROLE t_platform;
SELECT cte_set_read_tenancy(true) AS on, cte_set_read_tenancy(true) AS again;
RESET ROLE;
SELECT enabled_by FROM cte_read_tenancy;
SELECT count(*) AS policies, count(DISTINCT tablename) AS tables,
       count(*) FILTER (WHERE c.relrowsecurity) AS with_row_security
  FROM pg_policies p JOIN pg_class c ON c.relname = p.tablename
                    AND c.relnamespace = 'cte_ctel'::regnamespace
 WHERE p.schemaname = 'cte_ctel' AND p.policyname = 'cte_read_tenancy';
SELECT test.ledger_state() || test.engine_state() AS before \gset

-- Shop A reads its own account, its entries, the events that touched it, and nothing else.
SET ROLE t_shop_a;
SELECT id FROM cte_accounts WHERE id LIKE 'tn-%' ORDER BY id;
SELECT account_id, balance FROM cte_balances WHERE account_id LIKE 'tn-%' ORDER BY 1;
SELECT account_id, amount FROM cte_entries WHERE account_id LIKE 'tn-%' ORDER BY id;
SELECT account_id, balance, available FROM cte_ledger_balances
 WHERE account_id LIKE 'tn-%' OR account_id LIKE '@%' ORDER BY 1;
SELECT count(*) FILTER (WHERE id = :'order_1') AS own_event,
       count(*) FILTER (WHERE id = :'bonus') AS platform_event,
       count(*) FILTER (WHERE created_by = 't_shop_a') AS created_by_a
  FROM cte_events;
SELECT count(*) FILTER (WHERE event_id = :'order_1') > 0 AS own_steps,
       count(*) FILTER (WHERE event_id = :'bonus') AS platform_steps
  FROM cte_transactions;
SELECT count(*) AS liens, count(*) FILTER (WHERE id = :'platform_lien') AS platform_lien FROM cte_liens;
SELECT count(*) AS system_rows FROM (SELECT account_id FROM cte_system_balances
                                     UNION ALL SELECT account_id FROM cte_system_deltas) s;
SELECT count(*) FILTER (WHERE event_id = :'order_1') > 0 AS own_history,
       count(*) FILTER (WHERE event_id = :'bonus' OR lien_id = :'platform_lien') AS platform_history
  FROM cte_event_history;
SELECT count(*) FILTER (WHERE event_id = :'order_1') > 0 AS own_changes,
       count(*) FILTER (WHERE event_id = :'bonus' OR :'platform_lien' = ANY (lien_ids)
                          OR account_id = 'tn-platform') AS platform_changes
  FROM cte_change_log;
-- The read functions answer the same: the feed and a consumer skip the others' changes.
SELECT count(*) FILTER (WHERE event_id = :'order_1') > 0 AS own_changes,
       count(*) FILTER (WHERE event_id = :'bonus' OR lien_id = :'platform_lien'
                          OR account_id = 'tn-platform') AS platform_changes
  FROM cte_changes(0, 10000);
SELECT cte_create_consumer('tn-export', 0) AS start;
SELECT count(*) FILTER (WHERE event_id = :'order_1') > 0 AS own_changes,
       count(*) FILTER (WHERE event_id = :'bonus' OR lien_id = :'platform_lien'
                          OR account_id = 'tn-platform') AS platform_changes
  FROM cte_consumer_next('tn-export', 10000);
SELECT name, metadata FROM cte_find_events('{"shop": "tn"}') ORDER BY name;
SELECT cte_balance('tn-buyer-a', 'USD') AS balance,
       cte_available_balance('tn-buyer-a', 'USD') AS available;
SELECT currency, balance FROM cte_account_balances('tn-buyer-a');
SELECT kind, amount, counterparty FROM cte_account_statement('tn-buyer-a', 'USD') ORDER BY entry_id;
SELECT cte_balance_at('tn-buyer-a', 'USD', 'infinity') AS balance_at;
SELECT closing, entries FROM cte_statement_summary('tn-buyer-a', 'USD', '-infinity', 'infinity');
SELECT cte_event_graph(:'order_1') IS NOT NULL AS own_graph;
-- Anything else is refused (42501), an unknown account as one that exists, and nothing changes.
SELECT test.refusal($$SELECT cte_ctel.cte_balance('tn-seller-b', 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_balance('tn-no-such-account', 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_available_balance('tn-platform', 'USD')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_balances('tn-platform')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_account_statement('tn-seller-b', 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_balance_at('@world', 'USD', now())$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_statement_summary('tn-seller-b', 'USD', '-infinity', 'infinity')$$);
SELECT test.refusal(format($$SELECT cte_ctel.cte_event_graph(%L)$$, :'bonus'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_dry_run(%L)$$, :'bonus'));
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_verify_ledger()$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_verify_chains()$$);
SELECT test.refusal($$SELECT cte_ctel.cte_verify_digest('0:' || repeat('0', 64))$$);
-- A tenant still pays another's account.
SELECT cte_ctel.cte_transfer('tn-buyer-a', 'tn-seller-b', 1, 'USD', 'tn-order-3') IS NOT NULL AS paid;
RESET ROLE;
SELECT test.ledger_state() || test.engine_state() <> :'before' AS only_the_payment_changed;
SELECT test.ledger_state() || test.engine_state() AS before \gset

-- Shop A's application login has shop A's rights: it reads what shop A reads.
SET ROLE t_shop_a_app;
SELECT id FROM cte_accounts WHERE id LIKE 'tn-%' ORDER BY id;
SELECT cte_balance('tn-buyer-a', 'USD') AS balance;
RESET ROLE;
-- Shop B reads the account it was given and both events that paid it, not the buyer's account.
SET ROLE t_shop_b;
SELECT id FROM cte_accounts WHERE id LIKE 'tn-%' ORDER BY id;
SELECT name FROM cte_find_events('{"shop": "tn"}') ORDER BY name;
SELECT count(*) FILTER (WHERE account_id = 'tn-seller-b') AS own_entries,
       count(*) FILTER (WHERE account_id <> 'tn-seller-b') AS others FROM cte_entries;
SELECT test.refusal($$SELECT cte_ctel.cte_balance('tn-buyer-a', 'USD')$$);
RESET ROLE;
-- What writes could tell or reach (found by an outside attack before release): a tenant takes
-- no money out of, and holds none on, an account it may not read, refused before its balance
-- is looked at (an insufficient_funds refusal would name what it holds), directly, in a step
-- or by a refund; it acts on no event it may not read (whose id a reply may have told it); it
-- claims and reports no step of one; a dry run, which shows every touched account's balance,
-- is refused to it; and a key or reference another holds is refused without naming what
-- holds it. Nothing changes.
SET ROLE t_platform;
SELECT event_id AS payout FROM cte_run_event('tn-payout',
    '[{"name": "bank", "type": "external", "payload": {"card": "tn-secret"}}]', 'tn-payout-1') \gset
SELECT id AS payout_step FROM cte_transactions WHERE event_id = :'payout' \gset
SELECT ctel_create_lien(NULL, 'tn-platform', 3, 'USD') AS platform_hold \gset
SELECT cte_create_event('tn-later', idempotency_key => 'tn-later-1') AS later \gset
RESET ROLE;
SET ROLE t_shop_a;
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('tn-seller-b', 'tn-buyer-a', 1000000, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'tn-seller-b', 1000000, 'USD')$$);
SELECT cte_ctel.cte_create_event('tn-probe') AS probe \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 'take', 'wallet.transfer',
    '{"source_account_id": "tn-seller-b", "destination_account_id": "tn-buyer-a", "amount": 1, "currency": "USD"}')$$, :'probe'));
SELECT cte_ctel.cte_add_transaction(:'probe', 'pay', 'wallet.transfer',
    '{"source_account_id": "tn-buyer-a", "destination_account_id": "tn-seller-b", "amount": 1, "currency": "USD"}')
    IS NOT NULL AS a_payment_may_be_added;
SELECT test.refusal(format($$SELECT cte_ctel.cte_dry_run(%L)$$, :'probe'));
SELECT test.refusal(format($$SELECT cte_ctel.ctel_create_lien(%L, 'tn-buyer-a', 0.01, 'USD')$$, :'later'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 'x', 'external', '{}')$$, :'later'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L)$$, :'later'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'mine now')$$, :'bonus'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'changed my mind')$$, :'order_1'));
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'tn-buyer-a')$$, :'platform_hold'));
SELECT test.refusal(format($$SELECT cte_ctel.ctel_release_lien(%L)$$, :'platform_hold'));
SELECT count(*) AS claimed FROM cte_claim_steps(ARRAY['external'], 'tn-worker');
SELECT test.refusal(format($$SELECT cte_ctel.cte_complete_transaction(%L)$$, :'payout_step'));
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('mine', idempotency_key => 'tn-later-1')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('tn-buyer-a', 'tn-seller-b', 2, 'USD', 'tn-bonus')$$);
-- (A second attack, on the fixes.) A replay under another's key or reference does not tell the
-- tenant that one's event; nor may it add a currency to another's account.
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('tn-later', idempotency_key => 'tn-later-1')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('tn-platform', 500, 'USD', 'tn-in-p')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_add_currency('tn-seller-b', 'EUR')$$);
-- (A third attack.) Another's event is not named by a cancel, another's capture by a refund of
-- it, and another's step's lease is not extended, each as an unknown one would be refused.
SELECT test.refusal(format($$SELECT cte_ctel.cte_cancel_event(%L, 'not mine')$$, :'later'));
SELECT test.refusal($$SELECT cte_ctel.cte_cancel_event(gen_random_uuid(), 'nobody''s')$$);
SELECT test.refusal(format($$SELECT * FROM cte_ctel.cte_extend_lease(%L, gen_random_uuid(), '1 hour')$$, :'payout_step'));
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_extend_lease(gen_random_uuid(), gen_random_uuid(), '1 hour')$$);
RESET ROLE;
SET ROLE t_platform;
SELECT ctel_create_lien(NULL, 'tn-platform', 1, 'USD') AS platform_hold_2 \gset
SELECT ctel_capture_lien(:'platform_hold_2', 'tn-seller-b') AS platform_capture \gset
RESET ROLE;
SET ROLE t_shop_a;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_capture(%L, 'not mine')$$, :'platform_capture'));
SELECT test.refusal($$SELECT cte_ctel.cte_reverse_capture(gen_random_uuid(), 'nobody''s')$$);
RESET ROLE;
-- A refund is refused before it is planned when it would take money back from an account the
-- tenant may not read, so a seller that spent what it was paid tells nothing of its balance;
-- the same for a refund of a lien's capture the tenant made to the seller.
SELECT cte_balance('tn-seller-b', 'USD') - 1 AS spent \gset
SELECT cte_transfer('tn-seller-b', 'tn-platform', :spent, 'USD') IS NOT NULL AS seller_spent;
SET ROLE t_shop_a;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'changed my mind', 5)$$, :'order_1'));
SELECT cte_ctel.ctel_create_lien(NULL, 'tn-buyer-a', 2, 'USD') AS own_hold \gset
SELECT cte_ctel.ctel_capture_lien(:'own_hold', 'tn-seller-b') AS capture \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_capture(%L, 'changed my mind')$$, :'capture'));
RESET ROLE;
SELECT cte_transfer('tn-platform', 'tn-seller-b', :spent, 'USD') IS NOT NULL AS seller_paid_back;
-- The extension's own roles own nothing a tenant reads (every tenant has their rights): an
-- account opened while acting as cte_operator is no tenant's, and none is given to them.
SET ROLE t_platform;
SET ROLE cte_operator;
SELECT cte_create_account('tn-shared', ARRAY['USD']);
RESET ROLE;
SELECT test.refusal($$SELECT cte_ctel.cte_set_account_owner('tn-platform', 'cte_operator')$$);
SET ROLE t_shop_a;
SELECT count(*) AS shared_accounts FROM cte_accounts WHERE id = 'tn-shared';
SELECT test.refusal($$SELECT cte_ctel.cte_balance('tn-shared', 'USD')$$);
RESET ROLE;
-- Seller B may refund what paid it: the money comes out of its own account.
SET ROLE t_shop_b;
SELECT cte_ctel.cte_reverse_event(:'bonus', 'returned to the platform') IS NOT NULL AS refunded;
RESET ROLE;
SELECT status FROM cte_events WHERE id = :'payout';
-- A tenant cannot step out by SET ROLE to a role it is a member of: its login is a tenant.
SET SESSION AUTHORIZATION t_shop_a;
SET ROLE cte_reader;
SELECT count(*) AS accounts FROM cte_accounts WHERE id LIKE 'tn-%';
SELECT test.refusal($$SELECT cte_ctel.cte_balance('tn-platform', 'USD')$$);
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT test.ledger_state() || test.engine_state() AS before \gset

-- A reader outside cte_tenant, and an administrator inside it, read everything.
SET ROLE t_auditor;
SELECT id FROM cte_accounts WHERE id LIKE 'tn-%' ORDER BY id;
SELECT count(*) AS violations FROM cte_verify_ledger();
RESET ROLE;
SET ROLE t_platform;
SELECT id FROM cte_accounts WHERE id LIKE 'tn-%' ORDER BY id;
SELECT cte_balance('tn-buyer-a', 'USD') AS buyer_balance;
RESET ROLE;

-- Owners: given to none, shop B no longer reads it; bad requests are refused, nothing changes.
SET ROLE t_platform;
SELECT cte_set_account_owner('tn-seller-b', NULL) IS NULL AS given_to_none;
SELECT test.refusal($$SELECT cte_ctel.cte_set_account_owner('tn-no-such-account', 't_shop_b')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_set_account_owner('tn-seller-b', 't_no_such_role')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_set_account_owner(NULL, 't_shop_b')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_set_read_tenancy(NULL)$$);
RESET ROLE;
SELECT id, owner FROM cte_accounts WHERE id LIKE 'tn-%' ORDER BY id;
SET ROLE t_shop_b;
SELECT count(*) AS accounts FROM cte_accounts WHERE id LIKE 'tn-%';
SELECT test.refusal($$SELECT cte_ctel.cte_set_account_owner('tn-seller-b', 't_shop_b')$$);
RESET ROLE;

-- Off again: every reader reads everything.
SET ROLE t_platform;
SELECT cte_set_read_tenancy(false) AS on, cte_set_read_tenancy(false) AS again;
RESET ROLE;
SELECT count(*) AS tenancy_rows FROM cte_read_tenancy;
SET ROLE t_shop_a;
SELECT count(*) AS accounts FROM cte_accounts WHERE id LIKE 'tn-%';
SELECT cte_balance('tn-seller-b', 'USD') AS seller_balance;
RESET ROLE;
SELECT test.ledger_state() || test.engine_state() = :'before' AS unchanged;
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
