-- After ALTER EXTENSION cte_ctel UPDATE from 0.2.0: each keyed write of fill-0.2.0.sql sent
-- again is a replay of what 0.2.0 made, and moves nothing. One "ok - ..." / "not ok - ..." line
-- per check. Run with psql -X -q -t -A.
\set ON_ERROR_STOP on
SET search_path = cte_ctel, public;
SELECT md5(string_agg(account_id || currency || balance || reserved, ',' ORDER BY account_id, currency))
       AS before, (SELECT count(*) FROM cte_entries) AS entries_before
  FROM cte_balances \gset
SELECT id AS lien FROM cte_liens WHERE idempotency_key = 'hold-k1' \gset
SELECT CASE WHEN ctel_create_lien(NULL, 'u-alice', 50, 'USD', idempotency_key => 'hold-k1') = :'lien'
            THEN 'ok' ELSE 'not ok' END || ' - a lien key of 0.2.0 returns its lien';
SELECT posting_id AS capture FROM cte_entries WHERE lien_id = :'lien' AND reference = 'ship-k1' LIMIT 1 \gset
SELECT CASE WHEN ctel_capture_lien(:'lien', 'u-bob', 15, 'ship-k1', false) = :'capture'
             AND (SELECT captured_amount FROM cte_liens WHERE id = :'lien') = 15
            THEN 'ok' ELSE 'not ok' END || ' - a capture of 0.2.0 sent again returns its posting and captures nothing';
SELECT t.event_id AS sale FROM cte_transactions t WHERE t.reference = 'sale-k1' AND t.type = 'wallet.transfer' \gset
SELECT CASE WHEN cte_transfer('u-alice', 'u-bob', 30, 'USD', 'sale-k1') = :'sale'
            THEN 'ok' ELSE 'not ok' END || ' - a transfer of 0.2.0 sent again returns its event';
SELECT e.id AS refund FROM cte_events e WHERE e.refund_of = :'sale' \gset
SELECT CASE WHEN cte_reverse_event(:'sale', 'retried', 10, 'rma-k1') = :'refund'
            THEN 'ok' ELSE 'not ok' END || ' - a refund of 0.2.0 sent again returns its refund';
SELECT id AS keyed FROM cte_events WHERE idempotency_key = 'event-k1' \gset
SELECT CASE WHEN cte_create_event('keyed', 'kept across the upgrade', '10 minutes', '{"o": 1}', 'event-k1') = :'keyed'
            THEN 'ok' ELSE 'not ok' END || ' - an event key of 0.2.0 returns its event';
SELECT CASE WHEN cte_deposit('u-alice', 4.00, 'USD', 'psp-k1') = (
                SELECT event_id FROM cte_transactions WHERE reference = 'psp-k1' AND type = 'wallet.deposit')
            THEN 'ok' ELSE 'not ok' END || ' - a deposit of 0.2.0 sent again returns its event';
SELECT CASE WHEN md5(string_agg(account_id || currency || balance || reserved, ',' ORDER BY account_id, currency)) = :'before'
             AND (SELECT count(*) FROM cte_entries) = :entries_before
            THEN 'ok' ELSE 'not ok' END || ' - and the replays moved nothing'
  FROM cte_balances;
