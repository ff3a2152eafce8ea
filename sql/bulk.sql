-- cte_transfers (SPEC §11, 0.3.0): many transfers in one call and one transaction, each posted
-- or refused on its own, set-based inside (src/api/bulk.rs, src/driver/bulk.rs): every item
-- checked on its own, every reference claimed by one statement, every wallet locked once in the
-- global lock order, the items applied in memory in their order, then entries, balances,
-- events, steps and changes written with one statement each. A refused item keeps no key (sent
-- again, it is tried again); an item whose reference already names the same transfer is a
-- replay (its original event, status 'replayed'). A try-again error (40001, 40P01) aborts the
-- whole call, which the caller sends again safely.
COMMENT ON FUNCTION cte_ctel.cte_transfers(jsonb) IS
    'Many transfers in one call: each item {source_account_id, destination_account_id, amount, currency, reference, metadata} posted, refused (with its reason) or replayed on its own.';
