-- The error catalog: every reason a call can be refused for has its own SQLSTATE, listed by
-- cte_error_catalog() and in docs/errors.md. Each reason is triggered once below, in catalog
-- order; the last query shows that no reason was left out.
SET search_path = cte_ctel, test;
TRUNCATE test.observed_sqlstates;
-- One reason needs a transaction of its own: a journal cut refuses REPEATABLE READ.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT test.refusal($$SELECT cte_ctel.cte_ledger_digest()$$); -- isolation_unsupported
COMMIT;
BEGIN;
SELECT reason, sqlstate FROM cte_error_catalog() ORDER BY reason;
SELECT count(*) AS reasons, count(DISTINCT sqlstate) AS distinct_sqlstates FROM cte_error_catalog();

SELECT cte_create_account('alice', ARRAY['USD']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 10, 'USD') IS NOT NULL AS posted;

SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', NULL, 'USD')$$);         -- null_argument
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 's',
    'wallet.deposit', '{"account_id": "alice", "amount": "ten", "currency": "USD"}')$$); -- amount_malformed
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 'NaN', 'USD')$$);        -- amount_not_finite
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 0, 'USD')$$);            -- amount_not_positive
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 0.001, 'USD')$$);        -- amount_scale_exceeded
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1e20, 'USD')$$);         -- amount_too_large
SELECT test.refusal($$SELECT cte_ctel.cte_balance(repeat('a', 65), 'USD')$$);       -- text_too_long
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('@me', ARRAY['USD'])$$);  -- identifier_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('NEW', 20)$$);            -- currency_scale_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('c', ARRAY[]::text[])$$);  -- currency_list_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('c', ARRAY['USD'], false, '1')$$); -- metadata_invalid
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'alice', 1, 'USD')$$);  -- same_account
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('c',
    (SELECT array_agg('C' || lpad(i::text, 3, '0')) FROM generate_series(1, 33) i))$$); -- limit_exceeded
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1, 'XYZ')$$);           -- currency_unknown
SELECT test.refusal($$SELECT cte_ctel.cte_create_currency('USD', 3)$$);             -- currency_exists
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('carol', 1, 'USD')$$);            -- account_unknown
SELECT test.refusal($$SELECT cte_ctel.cte_create_account('alice', ARRAY['USD'])$$); -- account_exists
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 1, 'EUR')$$);            -- currency_not_held
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('@world', 1, 'USD')$$);           -- system_account_refused
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('bob', 'alice', 1, 'USD')$$);    -- insufficient_funds
SELECT test.refusal($$DELETE FROM cte_ctel.cte_entries$$);                          -- journal_append_only
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 'fx',
    'wallet.exchange', '{"source_account_id": "alice", "source_currency": "USD", "source_amount": 1,
    "destination_account_id": "alice", "destination_currency": "EUR", "exchange_rate": -1}')$$); -- rate_invalid
SELECT cte_create_event('done') AS done \gset
SELECT cte_start_event(:'done');
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L)$$, :'done'));   -- transition_not_allowed
SELECT test.refusal($$SELECT cte_ctel.cte_cancel_event(gen_random_uuid())$$);        -- event_unknown
SELECT test.refusal($$SELECT cte_ctel.cte_fail_transaction(gen_random_uuid(), 'x')$$); -- transaction_unknown
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 's',
    'no.such.type', '{}')$$);                                                       -- type_unknown
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 's',
    'wallet.deposit', '{"account_id": "alice"}')$$);                               -- payload_invalid
SELECT cte_create_event('once', idempotency_key => 'k-1') IS NOT NULL AS created;
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('twice', idempotency_key => 'k-1')$$); -- idempotency_conflict
SELECT cte_deposit('alice', 1, 'USD', 'ref-1') IS NOT NULL AS posted;
SELECT test.refusal($$SELECT cte_ctel.cte_add_transaction(cte_ctel.cte_create_event('x'), 's',
    'wallet.deposit', '{"account_id": "alice", "amount": 1, "currency": "USD", "reference": "ref-1"}')$$); -- duplicate_reference
SELECT test.refusal($$SELECT cte_ctel.cte_register_executor('external',
    'cte_ctel.cte_error_catalog()')$$);                                             -- executor_invalid
SELECT cte_create_event('ordered') AS ordered \gset
SELECT cte_add_transaction(:'ordered', 'a', 'external', '{}', "order" => 1) IS NOT NULL AS added;
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 'b', 'external', '{}',
    "order" => 1)$$, :'ordered'));                                                  -- order_taken
SELECT test.refusal($$SELECT cte_ctel.cte_create_event('x', timeout => '-1 minute')$$); -- timeout_invalid
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 'c', 'external', '{}',
    max_attempts => 101)$$, :'ordered'));                                           -- argument_out_of_range

SELECT test.refusal($$SELECT cte_ctel.ctel_release_lien(gen_random_uuid())$$);     -- lien_unknown
SELECT ctel_create_lien(NULL, 'alice', 1, 'USD') AS hold \gset
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'bob', 2)$$, :'hold')); -- capture_exceeds_lien
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'alice', 1, 'USD',
    '2000-01-01 00:00:00+00')$$);                                                   -- expiry_invalid
SELECT cte_create_account('frozen', ARRAY['USD']);
SELECT cte_deposit('frozen', 5, 'USD') IS NOT NULL AS posted;
SELECT cte_freeze_account('frozen', 'under review');
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('frozen', 'alice', 1, 'USD')$$); -- account_frozen
SELECT cte_create_account('gone', ARRAY['USD']);
SELECT cte_close_account('gone');
SELECT test.refusal($$SELECT cte_ctel.cte_transfer('alice', 'gone', 1, 'USD')$$);   -- account_closed
SELECT test.refusal($$SELECT cte_ctel.cte_set_limits('alice', 'USD', 100)$$);      -- floor_above_available
SELECT test.refusal($$SELECT cte_ctel.cte_close_account('alice')$$);               -- account_not_empty
SELECT cte_transfer('alice', 'bob', 2, 'USD', 'refund-me') AS paid \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'too much', 3)$$, :'paid')); -- refund_exceeds_event
SELECT cte_create_event('two postings') AS two \gset
SELECT cte_add_transaction(:'two', 'first', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'two', 'second', 'wallet.transfer',
    '{"source_account_id": "bob", "destination_account_id": "alice", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'two');
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'part of it', 1)$$, :'two')); -- refund_partial_unsupported
SELECT cte_create_event('leased') AS leased \gset
SELECT cte_add_transaction(:'leased', 'bank', 'external', '{}') AS leased_step \gset
SELECT cte_start_event(:'leased');
SELECT test.refusal(format($$SELECT cte_ctel.cte_complete_transaction(%L, NULL, gen_random_uuid())$$, :'leased_step')); -- lease_expired

-- An SQL argument that is not a number is refused by PostgreSQL's own numeric input (22P02),
-- before the extension sees it.
SELECT test.refusal($$SELECT cte_ctel.cte_deposit('alice', 'ten', 'USD')$$);

-- Every reason was triggered.
SELECT c.reason AS not_triggered
  FROM cte_error_catalog() c
 WHERE c.sqlstate NOT IN (SELECT sqlstate FROM test.observed_sqlstates)
 ORDER BY 1;

-- Refusals have a class of their own, one PostgreSQL does not use: every code's class is absent
-- from the server's own list of error codes (errcodes.txt in its share directory).
WITH postgres_classes AS (
    SELECT DISTINCT left(m[1], 2) AS class
      FROM regexp_matches(pg_read_file((SELECT setting FROM pg_config WHERE name = 'SHAREDIR')
                                       || '/errcodes.txt'), '^([0-9A-Z]{5})\s', 'gn') AS m)
SELECT (SELECT count(*) FROM postgres_classes) > 40 AS read_postgres_classes,
       array_agg(DISTINCT left(c.sqlstate, 2)) AS refusal_classes,
       count(*) FILTER (WHERE left(c.sqlstate, 2) IN (SELECT class FROM postgres_classes))
           AS refusals_in_a_postgres_class
  FROM cte_error_catalog() c;
ROLLBACK;
