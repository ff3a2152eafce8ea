-- Fills a database on a released cte_ctel (psql variable old_version: 0.1.0 or 0.2.0) through
-- the API both have, the way an application would: money,
-- a completed and a compensated event, an event waiting on an external step, liens (one to
-- expire soon), a registered custom executor, idempotency keys, queued notifications.
\set ON_ERROR_STOP on
\set QUIET on
CREATE EXTENSION cte_ctel VERSION :'old_version';
SET search_path = cte_ctel, public;
SELECT cte_create_currency('POINTS', 0);
SELECT cte_create_account('u-alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('u-bob', ARRAY['USD']);
SELECT cte_create_account('u-fees', ARRAY['USD', 'POINTS'], metadata => '{"kind": "fees"}');
SELECT cte_create_account('u-credit', ARRAY['USD'], allow_negative => true);
SELECT cte_deposit('u-alice', 500.00, 'USD', 'psp-1');
SELECT cte_deposit('u-alice', 80.50, 'EUR', 'psp-2');
SELECT cte_transfer('u-alice', 'u-bob', 100.25, 'USD', 'p2p-1');
SELECT cte_transfer('u-credit', 'u-bob', 12.00, 'USD');

-- A custom step type, written in PL/pgSQL.
CREATE FUNCTION public.upgrade_fee(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$ BEGIN RETURN jsonb_build_object('fee', payload->'fee'); END $$;
CREATE FUNCTION public.upgrade_fee_undo(transaction_id uuid, payload jsonb, result jsonb)
RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$;
SELECT cte_register_executor('fee.note', 'public.upgrade_fee(uuid, jsonb)',
                             'public.upgrade_fee_undo(uuid, jsonb, jsonb)');

-- A completed three-step event with an idempotency key.
SELECT cte_create_event('checkout', idempotency_key => 'order-1') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "u-alice", "destination_account_id": "u-bob", "amount": 20, "currency": "USD"}');
SELECT cte_add_transaction(:'e', 'fee', 'fee.note', '{"fee": 1.50}');
SELECT cte_add_transaction(:'e', 'points', 'wallet.deposit',
    '{"account_id": "u-fees", "amount": 7, "currency": "POINTS", "reference": "pts-1"}');
SELECT cte_start_event(:'e');

-- A compensated event: its second step cannot be covered.
SELECT cte_create_event('too-much') AS e \gset
SELECT cte_add_transaction(:'e', 'pay', 'wallet.transfer',
    '{"source_account_id": "u-alice", "destination_account_id": "u-bob", "amount": 5, "currency": "USD"}');
SELECT cte_add_transaction(:'e', 'overdraw', 'wallet.transfer',
    '{"source_account_id": "u-bob", "destination_account_id": "u-alice", "amount": 100000, "currency": "USD"}');
SELECT cte_start_event(:'e');

-- An event waiting on an external payout, with a withdrawal holding its funds.
SELECT cte_create_event('payout', timeout => '1 day', idempotency_key => 'payout-1') AS e \gset
SELECT cte_add_transaction(:'e', 'hold', 'wallet.withdrawal',
    '{"account_id": "u-bob", "amount": 30, "currency": "USD", "reference": "wd-1"}');
SELECT cte_add_transaction(:'e', 'bank', 'external', '{"rail": "sepa"}');
SELECT cte_start_event(:'e');

-- Liens: one standalone and active, one for the payout event, one expiring soon.
SELECT ctel_create_lien(NULL, 'u-alice', 40, 'USD', metadata => '{"order": "o-9"}');
SELECT ctel_create_lien(:'e', 'u-alice', 10, 'EUR');
SELECT ctel_create_lien(NULL, 'u-alice', 3, 'USD', now() + interval '12 seconds');
-- A captured and a released lien.
SELECT ctel_create_lien(NULL, 'u-alice', 25, 'USD') AS l \gset
SELECT ctel_capture_lien(:'l', 'u-fees', 10);
SELECT ctel_create_lien(NULL, 'u-alice', 2, 'USD') AS l \gset
SELECT ctel_release_lien(:'l', 'changed my mind');

-- Notifications queued for the worker (notify_by_worker), and system balances folded once.
SET cte_ctel.notify_by_worker = on;
SELECT cte_transfer('u-bob', 'u-alice', 1.25, 'USD', 'p2p-2');
RESET cte_ctel.notify_by_worker;
SELECT cte_fold_system_balances();
SELECT cte_deposit('u-alice', 9.99, 'USD', 'psp-3');
