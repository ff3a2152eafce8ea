-- Holds (SPEC §5 v2): a lien captured in several parts until it is used up or a final capture
-- releases the rest, captures carrying their reference and lien; the same idempotency key
-- returning the same lien; a lien past its expires_at counting as expired for every function,
-- before the worker marks it. Refusals leave the ledger unchanged; the ledger verifies.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('h-buyer', ARRAY['USD']);
SELECT cte_create_account('h-shop', ARRAY['USD']);
SELECT cte_deposit('h-buyer', 100, 'USD') IS NOT NULL AS funded;

-- A two-shipment order: hold 80, capture 30 and 25 as each ships (not final), then a final
-- capture of 5 releases the remaining 20.
SELECT ctel_create_lien(NULL, 'h-buyer', 80, 'USD') AS order_hold \gset
SELECT ctel_capture_lien(:'order_hold', 'h-shop', 30, 'ship-1', final => false) IS NOT NULL AS first;
SELECT status, amount, captured_amount FROM cte_liens WHERE id = :'order_hold';
SELECT balance, reserved, available FROM cte_account_balances('h-buyer');
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'h-shop', 50.01, final => false)$$, :'order_hold'));
SELECT ctel_capture_lien(:'order_hold', 'h-shop', 25, 'ship-2', final => false) IS NOT NULL AS second;
SELECT ctel_capture_lien(:'order_hold', 'h-shop', 5, 'ship-3') IS NOT NULL AS last;
SELECT status, amount, captured_amount, reason FROM cte_liens WHERE id = :'order_hold';
SELECT balance, reserved, available FROM cte_account_balances('h-buyer');
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'h-shop', 1)$$, :'order_hold'));
-- Each capture's entries carry its reference and its lien.
SELECT account_id, amount, reference, lien_id = :'order_hold' AS of_the_hold
  FROM cte_entries WHERE lien_id IS NOT NULL ORDER BY id;
-- A hold captured to the last cent in parts ends captured without a final capture.
SELECT ctel_create_lien(NULL, 'h-buyer', 10, 'USD') AS exact \gset
SELECT ctel_capture_lien(:'exact', 'h-shop', 4, final => false) IS NOT NULL AS part,
       ctel_capture_lien(:'exact', 'h-shop', 6, final => false) IS NOT NULL AS rest;
SELECT status, captured_amount FROM cte_liens WHERE id = :'exact';
-- A partly captured hold released gives back only what it still holds.
SELECT ctel_create_lien(NULL, 'h-buyer', 10, 'USD') AS partial \gset
SELECT ctel_capture_lien(:'partial', 'h-shop', 3, final => false) IS NOT NULL AS part;
SELECT ctel_release_lien(:'partial', 'order cancelled');
SELECT status, captured_amount FROM cte_liens WHERE id = :'partial';
SELECT balance, reserved, available FROM cte_account_balances('h-buyer');
SELECT count(*) AS violations FROM cte_verify_ledger();

-- The same idempotency key returns the same lien; another hold under it is refused.
SELECT ctel_create_lien(NULL, 'h-buyer', 7, 'USD', idempotency_key => 'order-9') AS keyed \gset
SELECT ctel_create_lien(NULL, 'h-buyer', 7, 'USD', idempotency_key => 'order-9') = :'keyed' AS same_lien;
SELECT count(*) AS liens_for_the_key FROM cte_liens WHERE idempotency_key = 'order-9';
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'h-buyer', 8, 'USD', idempotency_key => 'order-9')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'h-shop', 7, 'USD', idempotency_key => 'order-9')$$);
SELECT test.refusal($$SELECT cte_ctel.ctel_create_lien(NULL, 'h-buyer', 7, 'USD', idempotency_key => '')$$);
-- It names the lien even after it ended.
SELECT ctel_release_lien(:'keyed');
SELECT ctel_create_lien(NULL, 'h-buyer', 7, 'USD', idempotency_key => 'order-9') = :'keyed' AS still_the_same;

-- Past its expires_at a lien counts as expired, before the worker marks it (time stands still
-- in this transaction, so the expiry is moved into the past by hand).
SELECT cte_deposit('h-buyer', 100, 'USD') IS NOT NULL AS funded;
SELECT ctel_create_lien(NULL, 'h-buyer', 50, 'USD', now() + interval '1 hour') AS stale \gset
SELECT available FROM cte_account_balances('h-buyer');
UPDATE cte_liens SET expires_at = now() - interval '1 second' WHERE id = :'stale';
SELECT reserved, available FROM cte_account_balances('h-buyer');
SELECT cte_available_balance('h-buyer', 'USD') AS available;
SELECT test.refusal(format($$SELECT cte_ctel.ctel_capture_lien(%L, 'h-shop')$$, :'stale'));
SELECT test.refusal(format($$SELECT cte_ctel.ctel_release_lien(%L)$$, :'stale'));
-- A posting that needs its funds expires it on the spot, and takes them.
SELECT cte_transfer('h-buyer', 'h-shop', 100, 'USD') IS NOT NULL AS spent;
SELECT status, reason FROM cte_liens WHERE id = :'stale';
SELECT balance, reserved, available FROM cte_account_balances('h-buyer');
SELECT count(*) AS violations FROM cte_verify_ledger();
-- The expiry is in the feed like the worker's.
SELECT cte_run_maintenance() IS NOT NULL AS sequenced;
SELECT old_status, new_status, reason FROM cte_changes(0, 10000) WHERE lien_id = :'stale' ORDER BY position;
ROLLBACK;
