-- Fills a database through the current API with every kind of state the extension stores:
-- money in wallets and system accounts (deltas folded and not), completed, compensated,
-- failed and waiting events, a retry scheduled, an external step asked to compensate, liens
-- active, pending, captured, released and about to expire, references of steps and batch
-- items, a custom executor, idempotency keys, named feed consumers, a balance monitor, read
-- tenancy on with an account given to a tenant, and changes both sequenced into the feed and
-- still in the outbox. Used by the dump, backup,
-- failover and pg_upgrade tests.
\set ON_ERROR_STOP on
\set QUIET on
CREATE EXTENSION IF NOT EXISTS cte_ctel;
SET search_path = cte_ctel, public;
SELECT cte_create_currency('POINTS', 0);
SELECT cte_create_account('l-alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('l-bob', ARRAY['USD']);
SELECT cte_create_account('l-fees', ARRAY['USD', 'POINTS'], metadata => '{"kind": "fees"}');
SELECT cte_create_account('l-credit', ARRAY['USD'], allow_negative => true);
SELECT cte_deposit('l-alice', 500.00, 'USD', 'psp-1');
SELECT cte_deposit('l-alice', 80.50, 'EUR', 'psp-2');
SELECT cte_transfer('l-alice', 'l-bob', 100.25, 'USD', 'p2p-1');
SELECT cte_transfer('l-credit', 'l-bob', 12.00, 'USD');
SELECT cte_fold_system_balances();
SELECT cte_deposit('l-alice', 9.99, 'USD', 'psp-3');

CREATE FUNCTION public.lifecycle_fee(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN RETURN jsonb_build_object('fee', payload->'fee'); END $$;
CREATE FUNCTION public.lifecycle_busy(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'busy' USING ERRCODE = '40001'; END $$;
-- Registered as SPEC §12 asks: by a role that is not a superuser, owning both functions,
-- each pinned to its schema and pg_temp.
DO $do$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'script_registrar') THEN
        CREATE ROLE script_registrar NOLOGIN IN ROLE cte_admin;
    END IF;
END $do$;
ALTER FUNCTION public.lifecycle_fee(uuid, jsonb) OWNER TO script_registrar;
ALTER FUNCTION public.lifecycle_fee(uuid, jsonb) SET search_path = public, pg_temp;
ALTER FUNCTION public.lifecycle_busy(uuid, jsonb) OWNER TO script_registrar;
ALTER FUNCTION public.lifecycle_busy(uuid, jsonb) SET search_path = public, pg_temp;
SET ROLE script_registrar;
SELECT cte_register_executor('life.fee', 'public.lifecycle_fee(uuid, jsonb)');
SELECT cte_register_executor('life.busy', 'public.lifecycle_busy(uuid, jsonb)');
RESET ROLE;

-- Completed, with a batch whose items hold references.
SELECT cte_create_event('checkout', idempotency_key => 'order-1') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "l-alice", "destination_account_id": "l-bob", "amount": 20, "currency": "USD"}');
SELECT cte_add_transaction(:'e', 'fee', 'life.fee', '{"fee": 1.50}');
SELECT cte_add_transaction(:'e', 'settle', 'batch.operation',
    '{"transactions": [{"id": "1", "type": "wallet.deposit", "payload": {"account_id": "l-fees", "amount": 7, "currency": "POINTS", "reference": "pts-1"}}]}');
SELECT cte_start_event(:'e');
-- Compensated.
SELECT cte_create_event('too-much') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "l-alice", "destination_account_id": "l-bob", "amount": 5, "currency": "USD"}');
SELECT cte_add_transaction(:'e', 'overdraw', 'wallet.transfer',
    '{"source_account_id": "l-bob", "destination_account_id": "l-alice", "amount": 100000, "currency": "USD"}');
SELECT cte_start_event(:'e');
-- Waiting on an external payout, its funds held, with an event lien pending since before it
-- started and now active.
SELECT cte_create_event('payout', timeout => '1 day', idempotency_key => 'payout-1') AS e \gset
SELECT cte_add_transaction(:'e', 'hold', 'wallet.withdrawal',
    '{"account_id": "l-bob", "amount": 30, "currency": "USD", "reference": "wd-1"}');
SELECT cte_add_transaction(:'e', 'bank', 'external', '{"rail": "sepa"}');
SELECT ctel_create_lien(:'e', 'l-alice', 10, 'EUR');
SELECT cte_start_event(:'e');
-- Waiting on a scheduled retry.
SELECT cte_create_event('retrying', timeout => '1 day', idempotency_key => 'retry-1') AS e \gset
SELECT cte_add_transaction(:'e', 'busy', 'life.busy', '{}', max_attempts => 5);
SELECT cte_start_event(:'e');
-- An external step asked to compensate (cancelled while it waited).
SELECT cte_create_event('in-doubt', timeout => '1 day', idempotency_key => 'doubt-1') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "l-alice", "destination_account_id": "l-bob", "amount": 3, "currency": "USD"}');
SELECT cte_add_transaction(:'e', 'bank', 'external', '{}');
SELECT cte_start_event(:'e');
SELECT cte_cancel_event(:'e', 'customer asked');
-- Created, not started.
SELECT cte_create_event('later', timeout => '1 day', idempotency_key => 'later-1') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "l-alice", "destination_account_id": "l-bob", "amount": 1, "currency": "USD"}');
SELECT ctel_create_lien(:'e', 'l-alice', 2, 'USD');

-- Liens on their own: active, captured, released, and one that expires in a few seconds.
SELECT ctel_create_lien(NULL, 'l-alice', 40, 'USD', metadata => '{"order": "o-9"}');
SELECT ctel_create_lien(NULL, 'l-alice', 25, 'USD') AS l \gset
SELECT ctel_capture_lien(:'l', 'l-fees', 10);
SELECT ctel_create_lien(NULL, 'l-alice', 2, 'USD') AS l \gset
SELECT ctel_release_lien(:'l', 'changed my mind');
SELECT ctel_create_lien(NULL, 'l-alice', 3, 'USD', now() + interval '4 seconds');
-- A balance monitor (SPEC §11) on alice, just below what the last transfer brings her to: that
-- transfer crosses it, so a monitor change waits in the outbox with it.
SELECT cte_create_monitor('l-alice', 'USD', 'above', cte_available_balance('l-alice', 'USD') + 1)
    IS NOT NULL AS watching;
-- Half of the changes get their place in the feed now; the rest wait in the outbox.
SELECT cte_run_maintenance() IS NOT NULL AS sequenced;
SELECT cte_transfer('l-bob', 'l-alice', 1.25, 'USD', 'p2p-2');
-- A named consumer of the feed (SPEC §10) that read from the start and acknowledged the first
-- two changes, and one created at the head.
SELECT cte_create_consumer('life-books', 0);
SELECT cte_consumer_ack('life-books', (SELECT position FROM cte_consumer_next('life-books', 2)
                                        ORDER BY position DESC LIMIT 1));
SELECT cte_create_consumer('life-alerts');
-- Read tenancy (SPEC §12) on, and bob's account given to a tenant role (roles are the cluster's:
-- made once).
DO $do$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'life_shop') THEN
        CREATE ROLE life_shop IN ROLE cte_operator, cte_tenant;
    END IF;
END $do$;
SELECT cte_set_account_owner('l-bob', 'life_shop');
SELECT cte_set_read_tenancy(true);
