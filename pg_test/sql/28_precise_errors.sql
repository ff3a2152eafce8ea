-- Errors that named the wrong reason or leaked a raw PostgreSQL code (issue 20, each failing on
-- 0.2.0 as noted): a dry run of a step whose result is nested deeper than 128 levels (XX000
-- "recursion limit exceeded", while the real run completes); a step appended after one at
-- order 2147483647 (raw 22003 "integer out of range"); amounts "100." and ".5", numbers to SQL
-- but refused in a JSON string (one parser, one rule); 1e308 reported as text_too_long.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('p-alice', ARRAY['USD']);
SELECT cte_create_account('p-bob', ARRAY['USD']);
SELECT cte_deposit('p-alice', 100, 'USD') IS NOT NULL AS funded;

-- A result 200 levels deep: the dry run shows it as the real run stores it.
CREATE FUNCTION test.deep_result(transaction_id uuid, payload jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT (repeat('[', 200) || '1' || repeat(']', 200))::jsonb $$;
SELECT test.register_executor('deep.result', 'test.deep_result(uuid, jsonb)');
SELECT cte_create_event('deep') AS deep \gset
SELECT cte_add_transaction(:'deep', 'deep', 'deep.result', '{}') IS NOT NULL AS added;
SELECT d ->> 'status' AS would_end, length(d -> 'steps' -> 0 ->> 'result') AS result_text_length
  FROM cte_dry_run(:'deep') AS d;
SELECT cte_start_event(:'deep');
SELECT length(result::text) AS stored_result_text_length FROM cte_transactions WHERE event_id = :'deep';

-- The last order taken: the next step is refused with its reason and changes nothing; one
-- given an order of its own below it is added.
SELECT cte_create_event('orders') AS o \gset
SELECT cte_add_transaction(:'o', 'last', 'external', '{}', "order" => 2147483647) IS NOT NULL AS added;
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 'after', 'external', '{}')$$, :'o'));
SELECT cte_add_transaction(:'o', 'first', 'external', '{}', "order" => 1) IS NOT NULL AS added_below;
SELECT name, "order" FROM cte_transactions WHERE event_id = :'o' ORDER BY "order";

-- "100." and ".5" are amounts in a JSON string as they are in SQL.
SELECT cte_transfer('p-alice', 'p-bob', 100., 'USD') IS NOT NULL AS sql_point_last,
       cte_transfer('p-bob', 'p-alice', .5, 'USD') IS NOT NULL AS sql_point_first;
SELECT cte_create_event('json points') AS j \gset
SELECT cte_add_transaction(:'j', 'a', 'wallet.transfer',
    '{"source_account_id": "p-bob", "destination_account_id": "p-alice", "amount": "10.", "currency": "USD"}') IS NOT NULL AS json_point_last;
SELECT cte_add_transaction(:'j', 'b', 'wallet.transfer',
    '{"source_account_id": "p-bob", "destination_account_id": "p-alice", "amount": ".5", "currency": "USD"}') IS NOT NULL AS json_point_first;
SELECT cte_start_event(:'j');
SELECT cte_balance('p-alice', 'USD') AS alice, cte_balance('p-bob', 'USD') AS bob;
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 'a', 'wallet.deposit',
    '{"account_id": "p-bob", "amount": ".", "currency": "USD"}')$$);

-- Too large, however it is written.
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('p-alice', 'p-bob', 1e308, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('p-alice', 1e17, 'USD')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 'a', 'wallet.deposit',
    '{"account_id": "p-bob", "amount": 1e308, "currency": "USD"}')$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
