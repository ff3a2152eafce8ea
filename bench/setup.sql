-- Benchmark database: the extension, and a plain-SQL baseline of the same shape in its own
-- throwaway schema `plain` (balances locked in id order with a guarded update, journal rows
-- inserted), so each workload runs side by side with the best hand-written SQL equivalent.
-- :naccounts accounts a1..aN, each funded with a billion USD in both.
\set ON_ERROR_STOP 1
CREATE EXTENSION cte_ctel;

CREATE SCHEMA plain;
CREATE TABLE plain.balances (
    account_id text NOT NULL,
    currency   text NOT NULL,
    balance    numeric NOT NULL,
    reserved   numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, currency),
    CHECK (balance - reserved >= 0)
);
CREATE TABLE plain.entries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    posting_id    uuid NOT NULL,
    account_id    text NOT NULL,
    currency      text NOT NULL,
    amount        numeric NOT NULL,
    balance_after numeric,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON plain.entries (account_id, currency, id);
CREATE INDEX ON plain.entries (posting_id);
CREATE TABLE plain.liens (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id text,
                          amount numeric, status text);

-- One transfer: both rows locked in id order, the debit guarded, two journal rows.
CREATE FUNCTION plain.transfer(source text, destination text, amount numeric) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    posting uuid := gen_random_uuid();
    source_after numeric;
    destination_after numeric;
BEGIN
    IF source < destination THEN
        UPDATE plain.balances SET balance = balance - amount
         WHERE account_id = source AND currency = 'USD' AND balance - reserved >= amount
        RETURNING balance INTO source_after;
        UPDATE plain.balances SET balance = balance + amount
         WHERE account_id = destination AND currency = 'USD' RETURNING balance INTO destination_after;
    ELSE
        UPDATE plain.balances SET balance = balance + amount
         WHERE account_id = destination AND currency = 'USD' RETURNING balance INTO destination_after;
        UPDATE plain.balances SET balance = balance - amount
         WHERE account_id = source AND currency = 'USD' AND balance - reserved >= amount
        RETURNING balance INTO source_after;
    END IF;
    IF source_after IS NULL THEN
        RAISE EXCEPTION 'insufficient funds' USING ERRCODE = '23514';
    END IF;
    INSERT INTO plain.entries (posting_id, account_id, currency, amount, balance_after)
    VALUES (posting, source, 'USD', -amount, source_after),
           (posting, destination, 'USD', amount, destination_after);
    RETURN posting;
END $$;

CREATE FUNCTION plain.transfers(n int, source text, destination text, amount numeric) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..n LOOP
        PERFORM plain.transfer(source, destination, amount);
    END LOOP;
END $$;

-- A deposit that touches no shared row: the wallet and two journal rows.
CREATE FUNCTION plain.deposit(account text, amount numeric) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    posting uuid := gen_random_uuid();
    after numeric;
BEGIN
    UPDATE plain.balances SET balance = balance + amount
     WHERE account_id = account AND currency = 'USD' RETURNING balance INTO after;
    INSERT INTO plain.entries (posting_id, account_id, currency, amount, balance_after)
    VALUES (posting, '@world', 'USD', -amount, NULL), (posting, account, 'USD', amount, after);
END $$;

-- A hold, committed, then its capture in a second transaction (as a hold placed by one request
-- and captured by a later one): reserve and record; then release the hold and transfer.
CREATE PROCEDURE plain.lien_capture(source text, destination text, amount numeric)
LANGUAGE plpgsql AS $$
DECLARE
    lien bigint;
BEGIN
    UPDATE plain.balances SET reserved = reserved + amount
     WHERE account_id = source AND currency = 'USD' AND balance - reserved >= amount;
    INSERT INTO plain.liens (account_id, amount, status) VALUES (source, amount, 'active')
    RETURNING id INTO lien;
    COMMIT;
    IF source < destination THEN
        UPDATE plain.balances SET reserved = reserved - amount WHERE account_id = source AND currency = 'USD';
        PERFORM plain.transfer(source, destination, amount);
    ELSE
        PERFORM 1 FROM plain.balances WHERE account_id = destination AND currency = 'USD' FOR UPDATE;
        UPDATE plain.balances SET reserved = reserved - amount WHERE account_id = source AND currency = 'USD';
        PERFORM plain.transfer(source, destination, amount);
    END IF;
    UPDATE plain.liens SET status = 'captured' WHERE id = lien;
END $$;

-- 1000 transfers among 10 accounts, in one transaction.
CREATE FUNCTION plain.batch(first int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 0..999 LOOP
        PERFORM plain.transfer('a' || (first + i % 10), 'a' || (first + (i + 1) % 10), 0.01);
    END LOOP;
END $$;

-- The same 1000 transfers set-based, as a hand-written settlement job would post them: the
-- wallets locked in id order and each moved by its net in one UPDATE ... FROM (refused if any
-- would end below zero), and the 2,000 journal rows, each with its running balance, in one
-- multi-row INSERT.
CREATE FUNCTION plain.batch_set(first int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    moved int;
    wallets int;
BEGIN
    WITH legs AS MATERIALIZED (
        SELECT i AS item, leg, p AS posting, 'a' || (first + (i + leg) % 10) AS account_id,
               CASE leg WHEN 0 THEN -0.01 ELSE 0.01 END AS amount
          FROM generate_series(0, 999) i, LATERAL (SELECT gen_random_uuid() AS p) u,
               generate_series(0, 1) leg
    ), net AS (
        SELECT account_id, sum(amount) AS delta FROM legs GROUP BY account_id
    ), locked AS (
        SELECT b.account_id, b.balance, b.reserved FROM plain.balances b JOIN net USING (account_id)
         WHERE b.currency = 'USD' ORDER BY b.account_id FOR UPDATE OF b
    ), moved AS (
        UPDATE plain.balances b SET balance = k.balance + n.delta
          FROM net n JOIN locked k USING (account_id)
         WHERE b.account_id = n.account_id AND b.currency = 'USD'
           AND k.balance - k.reserved + n.delta >= 0
        RETURNING 1
    ), journal AS (
        INSERT INTO plain.entries (posting_id, account_id, currency, amount, balance_after)
        SELECT l.posting, l.account_id, 'USD', l.amount,
               k.balance + sum(l.amount) OVER (PARTITION BY l.account_id ORDER BY l.item, l.leg)
          FROM legs l JOIN locked k USING (account_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM net) INTO moved, wallets;
    IF moved <> wallets THEN
        RAISE EXCEPTION 'insufficient funds' USING ERRCODE = '23514';
    END IF;
END $$;

-- The same through the engine: create + add + start, each its own call, in one transaction.
CREATE SCHEMA bench;
CREATE FUNCTION bench.event(n int, source text, destination text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    e uuid := cte_ctel.cte_create_event('bench');
BEGIN
    FOR i IN 1..n LOOP
        PERFORM cte_ctel.cte_add_transaction(e, 'pay', 'wallet.transfer',
            jsonb_build_object('source_account_id', source, 'destination_account_id', destination,
                               'amount', '0.01', 'currency', 'USD'));
    END LOOP;
    RETURN cte_ctel.cte_start_event(e);
END $$;

CREATE PROCEDURE bench.lien_capture(source text, destination text) LANGUAGE plpgsql AS $$
DECLARE
    lien uuid := cte_ctel.ctel_create_lien(NULL, source, 0.05, 'USD');
BEGIN
    COMMIT;
    PERFORM cte_ctel.ctel_capture_lien(lien, destination);
END $$;

-- The same 1,000 transfers as independent items of one cte_transfers call (SPEC §11: each
-- posted or refused on its own, one event each); returns how many were posted.
CREATE FUNCTION bench.transfers(first int) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE status = 'posted') FROM cte_ctel.cte_transfers((
        SELECT jsonb_agg(jsonb_build_object('source_account_id', 'a' || (first + i % 10),
                   'destination_account_id', 'a' || (first + (i + 1) % 10), 'amount', '0.01',
                   'currency', 'USD') ORDER BY i)
          FROM generate_series(0, 999) i))
$$;

CREATE FUNCTION bench.batch(first int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    e uuid := cte_ctel.cte_create_event('batch');
BEGIN
    PERFORM cte_ctel.cte_add_transaction(e, 'batch', 'batch.operation', jsonb_build_object(
        'transactions', (SELECT jsonb_agg(jsonb_build_object('id', i, 'type', 'wallet.transfer',
            'payload', jsonb_build_object('source_account_id', 'a' || (first + i % 10),
                'destination_account_id', 'a' || (first + (i + 1) % 10), 'amount', '0.01',
                'currency', 'USD')))
          FROM generate_series(0, 999) i)));
    RETURN cte_ctel.cte_start_event(e);
END $$;

-- Accounts and funds in both.
SET bench.naccounts = :naccounts;
INSERT INTO plain.balances (account_id, currency, balance)
SELECT 'a' || i, 'USD', 1000000000 FROM generate_series(1, :naccounts) i;
DO $$
BEGIN
    FOR i IN 1..current_setting('bench.naccounts')::int LOOP
        PERFORM cte_ctel.cte_create_account('a' || i, ARRAY['USD']);
        PERFORM cte_ctel.cte_deposit('a' || i, 1000000000, 'USD');
    END LOOP;
END $$;
SELECT cte_ctel.cte_fold_system_balances() > 0 AS folded;
VACUUM ANALYZE;
