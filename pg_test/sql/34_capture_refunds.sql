-- Refunds of a lien's capture (SPEC §9, cte_reverse_capture): the destination gives back part
-- or all of what a capture moved, to the lien's account, never more in all than it moved; the
-- same reference with the same request returns the first refund. 0.2.0 had no way to refund a
-- capture.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['r2-buyer', 'r2-seller']) a ORDER BY 1;
SELECT cte_deposit('r2-buyer', 100, 'USD') IS NOT NULL AS funded;
SELECT ctel_create_lien(NULL, 'r2-buyer', 50, 'USD') AS hold \gset
SELECT ctel_capture_lien(:'hold', 'r2-seller', 30, 'r2-ship-1', false) AS capture \gset

SELECT cte_reverse_capture(:'capture', 'one item back', 10, 'r2-rma-1') AS part \gset
SELECT j.account_id, j.kind, j.amount FROM cte_entries j JOIN cte_transactions t ON t.id = j.transaction_id
 WHERE t.event_id = :'part' ORDER BY j.id;
SELECT cte_reverse_capture(:'capture', 'retried', 10.00, 'r2-rma-1') = :'part' AS replayed;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_capture(%L, 'x', 11, 'r2-rma-1')$$, :'capture'));
-- The rest, then nothing is left.
SELECT cte_reverse_capture(:'capture', 'all back') IS NOT NULL AS rest;
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_capture(%L, 'again', 0.01)$$, :'capture'));
SELECT cte_balance('r2-buyer', 'USD') AS buyer, cte_available_balance('r2-buyer', 'USD') AS buyer_available,
       cte_balance('r2-seller', 'USD') AS seller;
-- Not a capture; a blank reason; the reference of another refund.
SELECT test.refusal($$SELECT cte_ctel.cte_reverse_capture(gen_random_uuid(), 'x')$$);
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_capture(%L, '')$$, :'capture'));
SELECT cte_transfer('r2-buyer', 'r2-seller', 5, 'USD') AS sale \gset
SELECT test.refusal(format($$SELECT cte_ctel.cte_reverse_event(%L, 'x', 1, 'r2-rma-1')$$, :'sale'));
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
