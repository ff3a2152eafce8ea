-- The tamper-evident journal (SPEC v2): each wallet balance's entries form a hash chain whose
-- links cover the previous link, the whole posting (system legs included) and the balance
-- left. The link written with each entry (in Rust) is the one computed again from stored rows
-- (in SQL). A superuser who disables the journal guard and rewrites an entry is caught by the
-- chain; one who also recomputes every link and head is caught by a digest published before.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('k-alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('k-bob', ARRAY['USD']);
SELECT cte_deposit('k-alice', 100, 'USD', 'k-1') IS NOT NULL AS posted;
SELECT cte_transfer('k-alice', 'k-bob', 12.34, 'USD', 'k-2') IS NOT NULL AS posted;
SELECT cte_deposit('k-alice', 5, 'EUR') IS NOT NULL AS posted;
SELECT cte_create_event('fx') AS fx \gset
SELECT cte_add_transaction(:'fx', 'convert', 'wallet.exchange', '{
    "source_account_id": "k-alice", "source_currency": "USD", "source_amount": 10,
    "destination_account_id": "k-alice", "destination_currency": "EUR", "exchange_rate": 0.9}') IS NOT NULL AS added;
SELECT cte_start_event(:'fx');
SELECT ctel_create_lien(NULL, 'k-alice', 4, 'USD') AS hold \gset
SELECT ctel_capture_lien(:'hold', 'k-bob', 1, final => false) IS NOT NULL AS part,
       ctel_capture_lien(:'hold', 'k-bob', 3) IS NOT NULL AS rest;

-- Every wallet entry has a link, each balance its head, and every link checks.
SELECT count(*) FILTER (WHERE link IS NULL) AS wallet_entries_without_link,
       count(*) FILTER (WHERE octet_length(link) = 32) AS linked
  FROM cte_entries WHERE account_id LIKE 'k-%';
SELECT count(*) AS violations FROM cte_verify_ledger();
SELECT broken_entry_id IS NULL AS intact, entries_checked > 0 AS checked FROM cte_verify_chains();
-- Pages: resumed after the last entry checked, together they check everything once.
CREATE TEMP TABLE pages AS SELECT * FROM cte_verify_chains(0, 2);
SELECT entries_checked, broken_entry_id FROM pages;
SELECT c.entries_checked > 0 AS next_page_checks_on, c.broken_entry_id IS NULL AS intact
  FROM pages p, LATERAL cte_verify_chains(p.last_entry_id, 100000) c;

-- A digest to publish; it verifies while nothing is changed, and after new postings too (the
-- ledger extends it).
SELECT cte_ledger_digest() AS digest \gset
SELECT :'digest' ~ '^[0-9]+:[0-9a-f]{64}$' AS well_formed, cte_verify_digest(:'digest') AS holds;
SELECT cte_transfer('k-bob', 'k-alice', 1, 'USD') IS NOT NULL AS posted_later;
SELECT cte_verify_digest(:'digest') AS still_holds;

-- A superuser rewrites an entry behind the guard: the chain breaks at it.
SAVEPOINT tamper;
ALTER TABLE cte_entries DISABLE TRIGGER USER;
UPDATE cte_entries SET amount = -1234.00 WHERE reference = 'k-2' AND account_id = 'k-alice';
UPDATE cte_entries SET amount = 1234.00 WHERE reference = 'k-2' AND account_id = 'k-bob';
ALTER TABLE cte_entries ENABLE TRIGGER USER;
SELECT (SELECT reference FROM cte_entries WHERE id = c.broken_entry_id) AS broken_at
  FROM cte_verify_chains() c;
-- … and recomputes every link after it, and the heads: the chains check again, but the
-- published digest does not hold.
ALTER TABLE cte_entries DISABLE TRIGGER USER;
DO $$
DECLARE
    r record;
    previous bytea;
    wallet text := '';
BEGIN
    FOR r IN SELECT id, account_id, currency, posting_id, balance_after FROM cte_ctel.cte_entries
              WHERE balance_after IS NOT NULL ORDER BY account_id, currency, created_at, id LOOP
        IF r.account_id || '/' || r.currency <> wallet THEN
            previous := decode(repeat('00', 32), 'hex');
            wallet := r.account_id || '/' || r.currency;
        END IF;
        previous := cte_ctel.cte_entry_link(previous, r.posting_id, r.account_id, r.balance_after);
        UPDATE cte_ctel.cte_entries SET link = previous WHERE id = r.id;
        UPDATE cte_ctel.cte_balances SET chain_head = previous
         WHERE account_id = r.account_id AND currency = r.currency;
    END LOOP;
END $$;
ALTER TABLE cte_entries ENABLE TRIGGER USER;
SELECT broken_entry_id IS NULL AS chains_check_again FROM cte_verify_chains(0, 100000);
SELECT cte_verify_digest(:'digest') AS digest_holds;
ROLLBACK TO SAVEPOINT tamper;

-- A head set by hand is a violation of cte_verify_ledger() itself.
SAVEPOINT head;
UPDATE cte_balances SET chain_head = sha256('x') WHERE account_id = 'k-bob';
SELECT check_name FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT head;

-- A posting slipped in between system accounts only has no wallet leg, so no chain covers
-- it: cte_verify_ledger() names it.
SAVEPOINT system_only;
ALTER TABLE cte_entries DISABLE TRIGGER USER;
INSERT INTO cte_entries (posting_id, kind, account_id, currency, amount, balance_after)
VALUES ('00000000-0000-0000-0000-00000000000a', 'transfer', '@world', 'USD', -7, NULL),
       ('00000000-0000-0000-0000-00000000000a', 'transfer', '@exchange', 'USD', 7, NULL);
ALTER TABLE cte_entries ENABLE TRIGGER USER;
SELECT check_name, detail FROM cte_verify_ledger() WHERE check_name = 'posting_without_wallet';
ROLLBACK TO SAVEPOINT system_only;
-- Bad input.
SELECT test.refusal($$SELECT cte_ctel.cte_verify_digest('not a digest')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_verify_digest('5:abc')$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_verify_chains(0, 0)$$);
ROLLBACK;
