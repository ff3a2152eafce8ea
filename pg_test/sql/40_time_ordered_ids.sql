-- Time-ordered ids (0.3.0): events, steps, liens and postings get version-7 UUIDs, made in
-- Rust, that only grow within a session, so each insert lands at the right edge of its
-- primary-key index instead of on a random leaf. Ids stay opaque: nothing here reads a time.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('v7-a', ARRAY['USD']);
SELECT cte_create_account('v7-b', ARRAY['USD']);
CREATE TEMP TABLE made (n serial, kind text, id uuid);
-- One-step transfers (the fast path), a saga event with its steps, a lien and its capture.
INSERT INTO made (kind, id) SELECT 'deposit event', cte_deposit('v7-a', 100, 'USD');
INSERT INTO made (kind, id) SELECT 'transfer event', cte_transfer('v7-a', 'v7-b', 1, 'USD');
INSERT INTO made (kind, id) SELECT 'transfer event', cte_transfer('v7-a', 'v7-b', 2, 'USD');
INSERT INTO made (kind, id) SELECT 'saga event', cte_create_event('v7-saga');
INSERT INTO made (kind, id)
    SELECT 'saga step', cte_add_transaction(id, 'first', 'wallet.transfer',
        '{"source_account_id": "v7-a", "destination_account_id": "v7-b", "amount": "3", "currency": "USD"}')
      FROM made WHERE kind = 'saga event';
INSERT INTO made (kind, id)
    SELECT 'saga step', cte_add_transaction(id, 'second', 'wallet.transfer',
        '{"source_account_id": "v7-b", "destination_account_id": "v7-a", "amount": "1", "currency": "USD"}')
      FROM made WHERE kind = 'saga event';
SELECT cte_start_event(id) FROM made WHERE kind = 'saga event';
INSERT INTO made (kind, id) SELECT 'lien', ctel_create_lien(NULL, 'v7-a', 5, 'USD');
INSERT INTO made (kind, id) SELECT 'capture posting', ctel_capture_lien(id, 'v7-b', 5) FROM made WHERE kind = 'lien';
-- Every id is version 7 with the RFC 9562 variant, and each is greater than the one before.
SELECT kind, substr(id::text, 15, 1) AS version, substr(id::text, 20, 1) IN ('8', '9', 'a', 'b') AS variant_10,
       lag(id) OVER (ORDER BY n) IS NULL OR id > lag(id) OVER (ORDER BY n) AS greater_than_the_one_before
  FROM made ORDER BY n;
-- The rows the engine wrote for them: the steps of the one-step path and the postings too.
SELECT count(*) AS steps, bool_and(substr(t.id::text, 15, 1) = '7') AS all_version_7
  FROM cte_transactions t JOIN made m ON m.id = t.event_id;
SELECT count(DISTINCT e.posting_id) AS postings, bool_and(substr(e.posting_id::text, 15, 1) = '7') AS all_version_7
  FROM cte_entries e WHERE e.account_id IN ('v7-a', 'v7-b');
ROLLBACK;
