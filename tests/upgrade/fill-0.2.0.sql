-- Keyed writes of 0.2.0 (after fill.sql): a lien held under a key and captured in part under a
-- reference, a transfer and its partial refund under references, an event under a key. After
-- the upgrade, tests/upgrade/after-0.2.0.sql sends each again: a replay must return what 0.2.0
-- made and move nothing (SPEC §9), so keys stored before 0.3.0 keep their meaning.
\set ON_ERROR_STOP on
\set QUIET on
SET search_path = cte_ctel, public;
SELECT ctel_create_lien(NULL, 'u-alice', 50, 'USD', idempotency_key => 'hold-k1') AS l \gset
SELECT ctel_capture_lien(:'l', 'u-bob', 15, 'ship-k1', false);
SELECT cte_transfer('u-alice', 'u-bob', 30, 'USD', 'sale-k1') AS sale \gset
SELECT cte_reverse_event(:'sale', 'one item back', 10, 'rma-k1');
SELECT cte_create_event('keyed', 'kept across the upgrade', '10 minutes', '{"o": 1}', 'event-k1');
SELECT cte_deposit('u-alice', 4.00, 'USD', 'psp-k1');
