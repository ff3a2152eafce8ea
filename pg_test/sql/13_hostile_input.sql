-- Hostile input: well over a hundred calls that must all be refused, across every function --
-- bad amounts, currencies and ids, SQL injection strings, malformed, oversized and deeply
-- nested JSON, wrong types in payloads, unknown step types, NULLs everywhere, and transitions
-- that are not allowed. Each shows its SQLSTATE and that neither the ledger nor the engine
-- changed (test.refusal flags [LEDGER CHANGED] otherwise, and "NOT REFUSED" if it went through).
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;
SELECT cte_create_event('open') AS e \gset
SELECT cte_create_event('done') AS done \gset
SELECT cte_add_transaction(:'done', 'pay', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'done');
SELECT cte_create_event('waits') AS x_event \gset
SELECT cte_add_transaction(:'x_event', 'bank', 'external', '{}') AS x \gset
SELECT cte_start_event(:'x_event');
SELECT ctel_create_lien(NULL, 'alice', 10, 'USD') AS hold \gset
SELECT ctel_create_lien(NULL, 'alice', 10, 'USD') AS gone \gset
SELECT ctel_release_lien(:'gone');
TRUNCATE test.observed_sqlstates;

-- Amounts: zero, negative, not finite, too precise, too large, not a number.
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 0, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', -0, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', -1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 0.000, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 'NaN', 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 'Infinity', 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', '-Infinity', 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 10.001, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 0.001, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1e16, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 99999999999999999999.99, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1e-300, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', '5 USD', 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', '0x1G', 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', '1,5', 'USD')$q$);
-- PostgreSQL 16 and later read integer literals in hex, octal and binary and with underscores
-- ('0x10', '0o20', '0b10000', '1_6') as numeric input, exactly: 16. 15 refuses them (22P02). On
-- every major the deposit is either refused with nothing changed or credits exactly 16; each
-- case is undone after its check, so the rest of the file sees the same ledger on every major.
CREATE FUNCTION test.exact_or_refused(amount text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    before_state text := test.ledger_state() || test.engine_state();
    before numeric := cte_ctel.cte_balance('alice', 'USD');
BEGIN
    BEGIN
        EXECUTE format('SELECT cte_ctel.cte_deposit(%L, %L, %L)', 'alice', amount, 'USD');
        IF cte_ctel.cte_balance('alice', 'USD') = before + 16 THEN
            RAISE SQLSTATE 'T0016'; -- credited exactly 16: undo it
        END IF;
        RETURN amount || ': credited ' || (cte_ctel.cte_balance('alice', 'USD') - before);
    EXCEPTION
        WHEN SQLSTATE 'T0016' THEN RETURN amount || ': exact or refused';
        WHEN invalid_text_representation THEN
            IF test.ledger_state() || test.engine_state() = before_state THEN
                RETURN amount || ': exact or refused';
            END IF;
            RETURN amount || ': refused, but the ledger changed';
    END;
END
$$;
SELECT test.exact_or_refused(amount) FROM unnest(ARRAY['0x10', '0o20', '0b10000', '1_6']) AS amount;
SELECT test.refusal($q$SELECT cte_ctel.cte_transfer('alice', 'bob', 0, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_transfer('alice', 'bob', -5, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_transfer('alice', 'bob', 'NaN', 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_transfer('alice', 'bob', 0.005, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_transfer('alice', 'bob', 1e17, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 0, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', -1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 'Infinity', 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 1.001, 'USD')$q$);
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, 'bob', 0)$q$, :'hold'));
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, 'bob', 0.001)$q$, :'hold'));
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, 'bob', -3)$q$, :'hold'));

-- Currencies: badly shaped, unknown, not held.
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, 'usd')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, '')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, 'US')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, 'XXXX')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, 'USD ')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, E'US\nD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, 'ÜSD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, repeat('A', 13))$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, 'US$')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('alice', 1, '1AB')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('bob', 1, 'EUR')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_currency('GBP', 3)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_currency('NEW', 99)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account('x', ARRAY['USD', 'usd'])$q$);

-- Account ids: empty, blank, reserved, too long, control characters, injection attempts.
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account('', ARRAY['USD'])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account(' ', ARRAY['USD'])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account('@world', ARRAY['USD'])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account(repeat('a', 65), ARRAY['USD'])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account(E'a\tb', ARRAY['USD'])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account(E'a\nb', ARRAY['USD'])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account(repeat('é', 33), ARRAY['USD'])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('', 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit(' ', 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit('@world', 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit(repeat('a', 65), 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit($i$'; DROP TABLE cte_ctel.cte_entries; --$i$, 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit($i$alice' OR '1'='1$i$, 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_transfer('alice', $i$bob'); DELETE FROM cte_ctel.cte_liens; --$i$, 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_balance('alice''--', 'USD')$q$);

-- Malformed JSON (refused by PostgreSQL's own jsonb input).
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '[1,')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', 'nul')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{"a": }')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{"a" 1}')$q$, :'e'));

-- Oversized and deeply nested JSON.
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', (jsonb_build_object('x', repeat('[', 200) || repeat(']', 200)::jsonb)))$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', ('{"account_id": "alice", "amount": 1, "currency": "USD", "x": ' || repeat('{"a": ', 150) || '1' || repeat('}', 151))::jsonb)$q$, :'e'));
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account('deep', ARRAY['USD'], false, (repeat('{"a": ', 150) || '1' || repeat('}', 150))::jsonb)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('deep', metadata => (repeat('{"a": ', 150) || '1' || repeat('}', 150))::jsonb)$q$);
SELECT test.refusal($q$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 1, 'USD', NULL, (repeat('{"a": ', 150) || '1' || repeat('}', 150))::jsonb)$q$);
-- A payload the ledger does not read (an external or custom step's) is the application's: it
-- is never parsed here (nor printed), so its depth is not the ledger's to bound.
SELECT cte_add_transaction(cte_create_event('deep external'), 's', 'external',
    (repeat('{"a": ', 150) || '1' || repeat('}', 150))::jsonb) IS NOT NULL AS accepted;
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', jsonb_build_object('blob', repeat('x', 9 * 1024 * 1024)))$q$, :'e'));
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account('big', ARRAY['USD'], false, jsonb_build_object('blob', repeat('x', 9000)))$q$);
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'batch.operation', jsonb_build_object('transactions', (SELECT jsonb_agg(jsonb_build_object('id', i, 'type', 'wallet.deposit', 'payload', jsonb_build_object('account_id', 'alice', 'amount', 1, 'currency', 'USD'))) FROM generate_series(1, 10001) i)))$q$, :'e'));

-- Payloads with missing fields, unknown fields and wrong types.
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": {"value": 1}, "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": 42, "amount": 1, "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": 1, "currency": ["USD"]}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": [1], "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": true, "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": null, "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": "1e999999", "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": 1e400, "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": 0.1000000000000000055511151231257827, "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": 1, "currency": "USD", "reference": 7}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "amount": 1, "currency": "USD", "amount ": 1}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{"account_id": "alice", "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.deposit', '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.transfer', '{"source_account_id": "alice", "destination_account_id": "alice", "amount": 1, "currency": "USD"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.exchange', '{"source_account_id": "alice", "source_currency": "USD", "source_amount": 1, "destination_account_id": "alice", "destination_currency": "EUR", "exchange_rate": "1e-30"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.exchange', '{"source_account_id": "alice", "source_currency": "USD", "source_amount": 1, "destination_account_id": "alice", "destination_currency": "EUR", "exchange_rate": "abc"}')$q$, :'e'));
-- A rate too large for a decimal is refused as rate_invalid (0.3.0 before: an internal error,
-- XX000, from an assertion the parse reached), as a JSON number and as text.
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.exchange', '{"source_account_id": "alice", "source_currency": "USD", "source_amount": 1, "destination_account_id": "alice", "destination_currency": "EUR", "exchange_rate": 1e30}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.exchange', '{"source_account_id": "alice", "source_currency": "USD", "source_amount": 1, "destination_account_id": "alice", "destination_currency": "EUR", "exchange_rate": "12345678901234567890123456789012"}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'batch.operation', '{"transactions": {"id": 1}}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'batch.operation', '{"transactions": [{"id": [1], "type": "wallet.deposit", "payload": {}}]}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '"just text"')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', 'null')$q$, :'e'));

-- Step types that do not exist.
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.transfer ', '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'WALLET.TRANSFER', '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'wallet.teleport', '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', repeat('a', 200), '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'x; drop table y', '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', '', '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', '.', '{}')$q$, :'e'));

-- NULLs everywhere.
SELECT test.refusal($q$SELECT cte_ctel.cte_create_currency(NULL, NULL)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_account('x', ARRAY[NULL]::text[])$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_balance(NULL, NULL)$q$);
SELECT test.refusal($q$SELECT * FROM cte_ctel.cte_account_balances(NULL)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_deposit(NULL, 1, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_transfer('alice', 'bob', NULL, 'USD')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event(NULL)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('x', timeout => NULL)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_add_transaction(NULL, 's', 'external', '{}')$q$);
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, NULL, 'external', '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', NULL, '{}')$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', NULL)$q$, :'e'));
SELECT test.refusal($q$SELECT cte_ctel.cte_start_event(NULL)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_cancel_event(NULL)$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_complete_transaction(NULL)$q$);
SELECT test.refusal(format($q$SELECT cte_ctel.cte_fail_transaction(%L, NULL)$q$, :'x'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_fail_transaction(%L, 'e', NULL)$q$, :'x'));
SELECT test.refusal($q$SELECT cte_ctel.ctel_create_lien(NULL, NULL, 1, 'USD')$q$);
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, NULL)$q$, :'hold'));
SELECT test.refusal($q$SELECT cte_ctel.cte_register_executor(NULL, 'test.refusal(text)')$q$);

-- Names, keys, timeouts, counts and times out of bounds.
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event(repeat('n', 129))$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event(E'tab\there')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('x', repeat('d', 1025))$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('x', idempotency_key => '')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('x', timeout => '-1 day')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('x', timeout => '100 years')$q$);
-- A timeout finer than the engine's milliseconds is refused, never rounded (0.3.0 before: '1
-- microsecond' ran as 1 ms and '1.5 milliseconds' as 1 ms); '2.5 seconds' is whole milliseconds.
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('x', timeout => '1 microsecond')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_create_event('x', timeout => '1.5 milliseconds')$q$);
SELECT cte_ctel.cte_create_event('whole-ms', timeout => '2.5 seconds') IS NOT NULL AS whole_milliseconds_accepted;
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{}', max_attempts => -1)$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{}', max_attempts => 2147483647)$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{}', "order" => -5)$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, repeat('s', 200), 'external', '{}')$q$, :'e'));
SELECT test.refusal($q$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 1, 'USD', 'epoch')$q$);
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_release_lien(%L, repeat('r', 2000))$q$, :'hold'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_cancel_event(%L, repeat('r', 2000))$q$, :'x_event'));

-- Transitions that are not allowed.
SELECT test.refusal(format($q$SELECT cte_ctel.cte_start_event(%L)$q$, :'done'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_add_transaction(%L, 's', 'external', '{}')$q$, :'done'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_cancel_event(%L)$q$, :'done'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_complete_transaction((SELECT id FROM cte_ctel.cte_transactions WHERE event_id = %L))$q$, :'done'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_fail_transaction((SELECT id FROM cte_ctel.cte_transactions WHERE event_id = %L), 'late')$q$, :'done'));
SELECT test.refusal(format($q$SELECT cte_ctel.cte_complete_transaction((SELECT id FROM cte_ctel.cte_transactions WHERE event_id = %L))$q$, :'e'));
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_capture_lien(%L, 'bob')$q$, :'gone'));
-- Releasing a released lien again is a replay (SPEC §9): no error, nothing changes.
SELECT test.ledger_state() AS before_release_again \gset
SELECT ctel_release_lien(:'gone');
SELECT test.ledger_state() = :'before_release_again' AS unchanged;
SELECT test.refusal(format($q$SELECT cte_ctel.ctel_create_lien(%L, 'alice', 1, 'USD')$q$, :'done'));
SELECT test.refusal($q$SELECT cte_ctel.cte_start_event(gen_random_uuid())$q$);
SELECT test.refusal($q$SELECT cte_ctel.ctel_capture_lien(gen_random_uuid(), 'bob')$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_complete_transaction(gen_random_uuid())$q$);
SELECT test.refusal($q$SELECT cte_ctel.cte_register_executor('wallet.deposit', 'test.refusal(text)')$q$);
-- (As a registrar that is not a superuser, so that the function's shape is what is refused.)
SET ROLE test_registrar;
SELECT test.refusal($q$SELECT cte_ctel.cte_register_executor('x.y', 'test.refusal(text)')$q$);
RESET ROLE;

-- Injection strings are only data: values are always bound, never spliced into SQL, so an
-- account may well be called that, and nothing else happens.
SELECT cte_create_account($i$'; DROP TABLE cte_ctel.cte_entries; --$i$, ARRAY['USD']) AS opened;
SELECT cte_create_account($i$x' OR '1'='1$i$, ARRAY['USD']) AS opened;
SELECT cte_deposit($i$'; DROP TABLE cte_ctel.cte_entries; --$i$, 1, 'USD') IS NOT NULL AS deposited;
SELECT cte_transfer($i$'; DROP TABLE cte_ctel.cte_entries; --$i$, $i$x' OR '1'='1$i$, 1, 'USD')
       IS NOT NULL AS transferred;
SELECT id, balance FROM cte_accounts JOIN cte_balances ON account_id = id
 WHERE id LIKE '%''%' ORDER BY id;
SELECT to_regclass('cte_ctel.cte_entries') IS NOT NULL AS journal_still_there,
       (SELECT count(*) FROM cte_balances WHERE account_id = 'alice') AS alice_rows;

-- How many refusals, by SQLSTATE; and the ledger is whole.
SELECT count(*) >= 100 AS at_least_a_hundred_refusals FROM test.observed_sqlstates;
SELECT sqlstate, count(*) FROM test.observed_sqlstates GROUP BY sqlstate ORDER BY sqlstate;
SELECT * FROM cte_verify_ledger();
ROLLBACK;
