-- cte_transfers (SPEC §11): many transfers in one call, each posted, refused (with the
-- catalog's reason, keeping no key) or replayed on its own; one refused item undoes nothing of
-- the others.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account(a, ARRAY['USD']) FROM unnest(ARRAY['b-alice', 'b-bob', 'b-carol']) a ORDER BY 1;
SELECT cte_deposit('b-alice', 100, 'USD') IS NOT NULL AS funded;
SELECT cte_transfer('b-alice', 'b-carol', 1, 'USD', 'b-early') AS early \gset
SELECT item, event_id IS NOT NULL AS has_event, event_id = :'early' AS is_the_early_one, status, reason
  FROM cte_transfers('[
    {"source_account_id": "b-alice", "destination_account_id": "b-bob", "amount": 10, "currency": "USD", "reference": "b-1"},
    {"source_account_id": "b-alice", "destination_account_id": "b-bob", "amount": 1000, "currency": "USD", "reference": "b-2"},
    {"source_account_id": "b-alice", "destination_account_id": "b-nobody", "amount": 1, "currency": "USD"},
    {"source_account_id": "b-alice", "destination_account_id": "b-bob", "amount": 1.001, "currency": "USD"},
    {"source_account_id": "b-alice", "destination_account_id": "b-bob", "amount": "lots", "currency": "USD"},
    {"source_account_id": "b-alice", "destination_account_id": "b-carol", "amount": 1, "currency": "USD", "reference": "b-early"},
    {"source_account_id": "b-alice", "destination_account_id": "b-carol", "amount": 2, "currency": "USD", "reference": "b-early"},
    {"source_account_id": "b-bob", "destination_account_id": "b-carol", "amount": "2.50", "currency": "USD", "reference": "b-3"},
    "not an item"]')
 ORDER BY item;
SELECT account_id, balance FROM cte_ledger_balances WHERE account_id LIKE 'b-%' ORDER BY 1;
-- Sent again: the posted items replay, the refused one (b-2) is tried again (and refused again).
SELECT item, status, reason FROM cte_transfers('[
    {"source_account_id": "b-alice", "destination_account_id": "b-bob", "amount": 10, "currency": "USD", "reference": "b-1"},
    {"source_account_id": "b-alice", "destination_account_id": "b-bob", "amount": 1000, "currency": "USD", "reference": "b-2"},
    {"source_account_id": "b-bob", "destination_account_id": "b-carol", "amount": 2.5, "currency": "USD", "reference": "b-3"}]')
 ORDER BY item;
SELECT account_id, balance FROM cte_ledger_balances WHERE account_id LIKE 'b-%' ORDER BY 1;
SELECT test.refusal($$SELECT * FROM cte_ctel.cte_transfers('{"not": "an array"}')$$);
SELECT count(*) AS empty_call FROM cte_transfers('[]');
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
