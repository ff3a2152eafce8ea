-- The ledger's tables. Only the extension's functions write them (see roles.sql); each
-- constraint restates a rule the Rust code already enforces, so a bug there cannot commit.

-- Rules on a single column are domains: PostgreSQL keeps a domain's checks compiled for the
-- session, while a table's CHECK constraints are read back from text and planned again by
-- every statement that writes the table (a sixth of a transfer's time, measured with perf for
-- issue 6). Clients see the base types. Rules across columns stay table CHECKs.
CREATE DOMAIN cte_ctel.cte_name AS text CHECK (octet_length(VALUE) BETWEEN 1 AND 128);
CREATE DOMAIN cte_ctel.cte_description AS text CHECK (octet_length(VALUE) <= 1024);
CREATE DOMAIN cte_ctel.cte_reference AS text CHECK (octet_length(VALUE) <= 128);
CREATE DOMAIN cte_ctel.cte_json_object AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');
-- Money is finite: numeric also holds NaN and ±Infinity, and NaN = NaN is true in PostgreSQL, so
-- these name the three.
CREATE DOMAIN cte_ctel.cte_balance AS numeric
    CHECK (VALUE NOT IN ('NaN', 'Infinity', '-Infinity'));
CREATE DOMAIN cte_ctel.cte_reserved AS numeric
    CHECK (VALUE >= 0 AND VALUE NOT IN ('NaN', 'Infinity'));
CREATE DOMAIN cte_ctel.cte_entry_amount AS numeric
    CHECK (VALUE <> 0 AND VALUE NOT IN ('NaN', 'Infinity', '-Infinity'));
CREATE DOMAIN cte_ctel.cte_positive_amount AS numeric
    CHECK (VALUE > 0 AND VALUE NOT IN ('NaN', 'Infinity'));
CREATE DOMAIN cte_ctel.cte_event_status AS text CHECK (VALUE IN
    ('created', 'running', 'waiting', 'completed', 'compensating', 'compensated', 'failed',
     'resolved'));
CREATE DOMAIN cte_ctel.cte_step_status AS text CHECK (VALUE IN
    ('pending', 'running', 'waiting', 'completed', 'failed', 'compensating', 'compensated'));
CREATE DOMAIN cte_ctel.cte_lien_status AS text CHECK (VALUE IN
    ('pending', 'active', 'captured', 'released', 'expired'));
-- 0.2.0: open; frozen (no new debit, no new lien); closed (nothing at all).
CREATE DOMAIN cte_ctel.cte_account_status AS text CHECK (VALUE IN ('open', 'frozen', 'closed'));

CREATE TABLE cte_ctel.cte_currencies (
    code       text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9]{2,11}$'),
    scale      int NOT NULL CHECK (scale BETWEEN 0 AND 12),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- 0.2.0: the currencies CREATE EXTENSION registers itself. pg_dump leaves them out (a
    -- restore's CREATE EXTENSION makes them again); they never change.
    seeded     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE cte_ctel.cte_currencies IS
    'Registered currencies; scale is the most decimals an amount of the currency may have.';
COMMENT ON COLUMN cte_ctel.cte_currencies.seeded IS
    'Registered by CREATE EXTENSION (not dumped: every install has them).';

CREATE TABLE cte_ctel.cte_accounts (
    id             text PRIMARY KEY CHECK (octet_length(id) BETWEEN 1 AND 64),
    is_system      boolean NOT NULL DEFAULT false,
    allow_negative boolean NOT NULL DEFAULT false,
    metadata       cte_ctel.cte_json_object,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- 0.2.0: frozen or closed by an operator (cte_freeze_account, cte_close_account), why and
    -- when. Each balance row carries a copy, read under its lock by every posting.
    status         cte_ctel.cte_account_status NOT NULL DEFAULT 'open',
    status_reason  text,
    status_changed_at timestamptz,
    CHECK (is_system = (left(id, 1) = '@')),
    CHECK (allow_negative OR NOT is_system),
    CHECK (status = 'open' OR NOT is_system)
);
COMMENT ON TABLE cte_ctel.cte_accounts IS
    'Wallet accounts and the system accounts (ids starting with @) money enters and leaves through.';

-- One row per wallet and currency, updated in place under a row lock. Its floor (min_balance,
-- or none with allow_negative) and its account's status live on the row, so that "never below
-- the floor" is a row CHECK and not only code, and every posting reads them under the lock.
CREATE TABLE cte_ctel.cte_balances (
    account_id     text NOT NULL REFERENCES cte_ctel.cte_accounts (id),
    currency       text NOT NULL REFERENCES cte_ctel.cte_currencies (code),
    -- No floor at all (the account was opened with allow_negative, or cte_set_limits NULL).
    allow_negative boolean NOT NULL,
    balance        cte_ctel.cte_balance NOT NULL DEFAULT 0,
    reserved       cte_ctel.cte_reserved NOT NULL DEFAULT 0,
    -- 0.2.0: the least balance - reserved may be (negative: an overdraft line), unless
    -- allow_negative; and the account's status, copied.
    min_balance    cte_ctel.cte_balance NOT NULL DEFAULT 0,
    status         cte_ctel.cte_account_status NOT NULL DEFAULT 'open',
    -- 0.2.0: the last link of its entries' hash chain (NULL before its first entry).
    chain_head     bytea,
    -- 0.2.0: when its last entry was written; the next is never stamped earlier.
    last_entry_at  timestamptz,
    -- 0.3.0: whether the wallet has a balance monitor (sql/monitors.sql): the only column the
    -- monitors' trigger reads on a wallet that has none.
    monitored      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (account_id, currency),
    CONSTRAINT cte_balances_available_check
        CHECK (allow_negative OR balance - reserved >= min_balance),
    CONSTRAINT cte_balances_closed_check
        CHECK (status <> 'closed' OR (balance = 0 AND reserved = 0))
);
COMMENT ON TABLE cte_ctel.cte_balances IS
    'Wallet balances: posted balance and the part of it reserved by active liens.';

-- System accounts are touched by every deposit, withdrawal and exchange, so they have no row
-- that each posting updates (that row would serialize the whole system). Each posting appends
-- a delta instead; maintenance folds deltas into folded_balance in one short transaction. A
-- balance's row appears with its first fold (none is made at install, so every row here is
-- data that pg_dump keeps, folded values included).
CREATE TABLE cte_ctel.cte_system_balances (
    account_id     text NOT NULL REFERENCES cte_ctel.cte_accounts (id),
    currency       text NOT NULL REFERENCES cte_ctel.cte_currencies (code),
    folded_balance cte_ctel.cte_balance NOT NULL DEFAULT 0,
    folded_at      timestamptz,
    PRIMARY KEY (account_id, currency)
);
COMMENT ON TABLE cte_ctel.cte_system_balances IS
    'System account balances as of the last fold; add cte_system_deltas for the current balance.';

CREATE TABLE cte_ctel.cte_system_deltas (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id text NOT NULL,
    currency   text NOT NULL,
    amount     cte_ctel.cte_entry_amount NOT NULL
);
COMMENT ON TABLE cte_ctel.cte_system_deltas IS
    'System account changes not yet folded into cte_system_balances.';

-- 0.3.0: one row, never changed: a fold of the system deltas locks it (FOR UPDATE, which only the
-- extension's owner may do here) before it touches a delta or a system balance, so that two
-- folds never wait on each other's rows: the feed worker skips its fold while another holds it
-- (an administrator's cte_run_maintenance() or cte_fold_system_balances() left open), and so
-- never lets it hold the sequencing and the expiries of its pass (SPEC §12).
CREATE TABLE cte_ctel.cte_fold_lock (
    id int PRIMARY KEY CHECK (id = 1)
);
INSERT INTO cte_ctel.cte_fold_lock VALUES (1);
COMMENT ON TABLE cte_ctel.cte_fold_lock IS
    'The lock a fold of the system deltas takes (one row, never changed).';

-- The journal. Append-only: the trigger below refuses UPDATE, DELETE and TRUNCATE for everyone,
-- superusers included. It has no foreign key to cte_accounts on purpose: a key check would
-- share-lock the system account's row on every posting, the hot row this design avoids.
CREATE TABLE cte_ctel.cte_entries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    posting_id    uuid NOT NULL,
    kind          text NOT NULL,
    account_id    text NOT NULL,
    currency      text NOT NULL,
    amount        cte_ctel.cte_entry_amount NOT NULL,
    balance_after numeric,
    reference     cte_ctel.cte_reference,
    -- The event step (cte_transactions.id) that made this posting; its compensation reverses
    -- exactly the postings recorded here.
    transaction_id uuid,
    -- When the entry was written: the engine stamps each posting with the clock read under its
    -- wallets' locks, never before a wallet's last entry, so that on each wallet it grows with
    -- id (0.1.0 wrote the transaction's start time). The default serves rows written by hand
    -- only: one time per statement, so that a posting's entries agree.
    created_at    timestamptz NOT NULL DEFAULT statement_timestamp(),
    -- 0.2.0: the lien whose capture made this posting (NULL for other postings).
    lien_id       uuid,
    -- 0.2.0: a wallet entry's link in its balance's hash chain (NULL for system accounts;
    -- entries written before 0.2.0 have theirs in cte_entry_links). See sql/chains.sql.
    link          bytea,
    CHECK ((balance_after IS NULL) = (left(account_id, 1) = '@'))
);
-- 0.2.0: with created_at, so that a statement's time window and its keyset page, and a
-- balance at an instant, are one range scan (on a wallet, created_at grows with id).
CREATE INDEX cte_entries_account_idx ON cte_ctel.cte_entries (account_id, currency, created_at, id);
CREATE INDEX cte_entries_posting_idx ON cte_ctel.cte_entries (posting_id);
CREATE INDEX cte_entries_transaction_idx ON cte_ctel.cte_entries (transaction_id)
    WHERE transaction_id IS NOT NULL;
COMMENT ON TABLE cte_ctel.cte_entries IS
    'The append-only journal: signed entries; the entries of one posting_id share one currency and sum to zero. balance_after is the wallet balance after the entry (NULL for system accounts).';

INSERT INTO cte_ctel.cte_accounts (id, is_system, allow_negative, metadata) VALUES
    ('@world', true, true, '{"purpose": "money entering and leaving the ledger"}'),
    ('@exchange', true, true, '{"purpose": "each currency''s side of an exchange"}');

-- The common ISO 4217 currencies with their minor units, and BTC. More: cte_create_currency.
INSERT INTO cte_ctel.cte_currencies (code, scale, seeded) SELECT code, scale, true FROM (VALUES
    ('AED', 2), ('ARS', 2), ('AUD', 2), ('BDT', 2), ('BGN', 2), ('BHD', 3), ('BRL', 2),
    ('CAD', 2), ('CHF', 2), ('CLP', 0), ('CNY', 2), ('COP', 2), ('CZK', 2), ('DKK', 2),
    ('EGP', 2), ('EUR', 2), ('GBP', 2), ('GHS', 2), ('HKD', 2), ('HUF', 2), ('IDR', 2),
    ('ILS', 2), ('INR', 2), ('IQD', 3), ('ISK', 0), ('JOD', 3), ('JPY', 0), ('KES', 2),
    ('KRW', 0), ('KWD', 3), ('LKR', 2), ('LYD', 3), ('MAD', 2), ('MXN', 2), ('MYR', 2),
    ('NGN', 2), ('NOK', 2), ('NZD', 2), ('OMR', 3), ('PEN', 2), ('PHP', 2), ('PKR', 2),
    ('PLN', 2), ('QAR', 2), ('RON', 2), ('SAR', 2), ('SEK', 2), ('SGD', 2), ('THB', 2),
    ('TND', 3), ('TRY', 2), ('TWD', 2), ('UAH', 2), ('UGX', 0), ('USD', 2), ('UYU', 2),
    ('VND', 0), ('XAF', 0), ('XOF', 0), ('ZAR', 2), ('BTC', 8)) AS seed(code, scale);
