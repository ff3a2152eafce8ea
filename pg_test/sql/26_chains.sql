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

-- A digest to publish, taken in a transaction of its own (one that has written would put its
-- own uncommitted entries in it): it verifies while nothing is changed, and after new postings
-- too (the ledger extends it).
SELECT test.refusal($$SELECT cte_ctel.cte_ledger_digest()$$) AS in_a_writing_transaction;
COMMIT;
SELECT cte_ledger_digest() AS digest \gset
BEGIN;
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
-- Entries slipped into an existing posting, even between system accounts and with the system
-- deltas made to match (no trigger stands in the way of an INSERT), change the posting's
-- canonical text: its wallet legs' links no longer check, and cte_verify_ledger() names the
-- posting whose entries disagree on their kind.
SAVEPOINT slipped_in;
INSERT INTO cte_entries (posting_id, kind, account_id, currency, amount, balance_after, reference)
SELECT posting_id, 'zz', side.account, 'USD', side.amount, NULL, 'k-2'
  FROM cte_entries, (VALUES ('@world', 50), ('@exchange', -50)) AS side(account, amount)
 WHERE reference = 'k-2' AND account_id = 'k-alice';
INSERT INTO cte_system_deltas (account_id, currency, amount) VALUES ('@world', 'USD', 50), ('@exchange', 'USD', -50);
SELECT (SELECT reference FROM cte_entries WHERE id = c.broken_entry_id) AS broken_at
  FROM cte_verify_chains(0, 100000) c;
SELECT check_name FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT slipped_in;
-- What a posting was made by is covered too: the step a refund or compensation reverses by.
SAVEPOINT repointed;
ALTER TABLE cte_entries DISABLE TRIGGER USER;
UPDATE cte_entries SET transaction_id = gen_random_uuid() WHERE reference = 'k-2';
ALTER TABLE cte_entries ENABLE TRIGGER USER;
SELECT (SELECT reference FROM cte_entries WHERE id = c.broken_entry_id) AS broken_at
  FROM cte_verify_chains(0, 100000) c;
ROLLBACK TO SAVEPOINT repointed;
-- The links kept beside the journal are append-only as the journal is.
SAVEPOINT kept_links;
INSERT INTO cte_entry_links (entry_id, link) VALUES (0, sha256('x'));
SELECT test.refusal($$UPDATE cte_ctel.cte_entry_links SET link = sha256('y')$$);
SELECT test.refusal($$DELETE FROM cte_ctel.cte_entry_links$$);
SELECT test.refusal($$TRUNCATE cte_ctel.cte_entry_links$$);
ROLLBACK TO SAVEPOINT kept_links;
-- A wallet's entries are never stamped before its last one, whatever the clock says: with its
-- last entry made to lie a day ahead (as a clock stepped back would leave it), the next entry
-- takes that time, and the chain still checks.
SAVEPOINT clock;
UPDATE cte_balances SET last_entry_at = now() + interval '1 day' WHERE account_id = 'k-bob';
SELECT cte_transfer('k-alice', 'k-bob', 1, 'USD', 'k-clock') IS NOT NULL AS posted;
SELECT created_at >= now() + interval '1 day' AS stamped_after_the_last,
       created_at = (SELECT last_entry_at FROM cte_balances WHERE account_id = 'k-bob') AS recorded
  FROM cte_entries WHERE reference = 'k-clock' AND account_id = 'k-bob';
SELECT broken_entry_id IS NULL AS intact FROM cte_verify_chains(0, 100000);
ROLLBACK TO SAVEPOINT clock;
-- Entry ids must be handed out one at a time for each wallet's chain to follow its lock order.
SAVEPOINT cached;
ALTER SEQUENCE cte_entries_id_seq CACHE 10;
SELECT check_name, detail FROM cte_verify_ledger();
ROLLBACK TO SAVEPOINT cached;
-- A cut needs a fresh snapshot after waiting for the journal's writers: READ COMMITTED.
COMMIT;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT test.refusal($$SELECT cte_ctel.cte_ledger_digest()$$);
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_verify_chains()$$);
COMMIT;
BEGIN;
-- Bad input.
SELECT test.refusal($$SELECT cte_ctel.cte_verify_digest('not a digest')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_verify_digest('5:abc')$$);
-- Only what cte_ledger_digest writes: plain digits, of an id the journal has reached.
SELECT regexp_replace(test.refusal(format($$SELECT cte_ctel.cte_verify_digest(%L)$$, d)),
                      '"([+0]?)[0-9]+:[0-9a-fA-F]{64}"', '"\1<id>:<hash>"') AS refusal, what
  FROM (VALUES ('+' || :'digest', 'signed'), ('0' || :'digest', 'leading zero'),
               (upper(:'digest'), 'uppercase')) AS forged(d, what);
-- A digest of entries this journal does not have (a restore to a point before it) does not hold.
SELECT cte_verify_digest('999999999:' || split_part(:'digest', ':', 2)) AS beyond_the_journal_holds;
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_verify_chains(0, 0)$$);
ROLLBACK;
