-- Balance monitors (SPEC §11): on a wallet's available balance (balance − reserved), `below`
-- fires when a change takes it from ≥ threshold to < threshold, `above` from ≤ to >; each
-- crossing is one change of kind monitor, in the transaction that crossed (a rollback leaves
-- none), reaching the feed with the account, currency, available balance and the monitor's id
-- (in `reference`). pg_regress's database is not the one the workers serve, so
-- cte_run_maintenance() sequences the feed here.
SET search_path = cte_ctel, test;
BEGIN;
CREATE ROLE t_monitor_shop IN ROLE cte_operator;
GRANT USAGE ON SCHEMA test TO t_monitor_shop;
GRANT EXECUTE ON FUNCTION test.refusal(text), test.ledger_state(), test.engine_state() TO PUBLIC;
GRANT ALL ON test.observed_sqlstates TO PUBLIC;
SELECT cte_create_account('m-alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('m-bob', ARRAY['USD']);
SELECT cte_deposit('m-alice', 150, 'USD', 'm-in-1') IS NOT NULL AS funded;
SELECT (cte_run_maintenance() ->> 'changes_sequenced') IS NOT NULL AS sequenced;
SELECT cte_feed_head() AS start \gset

-- test.monitor_changes(after): the monitor changes of the feed after a position.
CREATE FUNCTION test.monitor_changes(after bigint)
RETURNS TABLE (account_id text, currency text, available numeric, condition text, monitor uuid,
               reason text)
LANGUAGE sql AS $$
    SELECT c.account_id, c.currency, c.amount, c.new_status, c.reference::uuid, c.reason
      FROM cte_ctel.cte_changes(after, 1000) c WHERE c.kind = 'monitor' ORDER BY c.position
$$;

-- Two monitors; the same request again is the same monitor.
SELECT cte_create_monitor('m-alice', 'USD', 'below', 100) AS low \gset
SELECT cte_create_monitor('m-alice', 'USD', 'above', 200) AS high \gset
SELECT cte_create_monitor('m-alice', 'USD', 'below', 100.00) = :'low' AS same_monitor_again;
SELECT account_id, currency, condition, threshold, created_by FROM cte_monitors ORDER BY condition;
SELECT account_id, currency, monitored FROM cte_balances
 WHERE account_id IN ('m-alice', 'm-bob') ORDER BY 1, 2;

-- 150 → 120: no crossing. 120 → 95: below 100 fires once. 95 → 90: still below, nothing.
SELECT cte_transfer('m-alice', 'm-bob', 30, 'USD') IS NOT NULL AS moved;
SELECT cte_transfer('m-alice', 'm-bob', 25, 'USD') IS NOT NULL AS moved;
SELECT cte_transfer('m-alice', 'm-bob', 5, 'USD') IS NOT NULL AS moved;
SELECT (cte_run_maintenance() ->> 'changes_sequenced')::int > 0 AS sequenced;
SELECT account_id, currency, available, condition, monitor = :'low' AS the_low_monitor, reason
  FROM test.monitor_changes(:start);
SELECT cte_feed_head() AS start \gset

-- Exactly at the threshold is not below it: 90 → 100 is no crossing of `below 100`. A hold
-- counts: a lien of 1 takes the available balance from 100 to 99 without a posting, which
-- crosses.
SELECT cte_transfer('m-bob', 'm-alice', 10, 'USD') IS NOT NULL AS moved;
SELECT count(*) AS at_the_threshold FROM test.monitor_changes(:start);
SELECT ctel_create_lien(NULL, 'm-alice', 1, 'USD') AS hold \gset
SELECT (cte_run_maintenance() ->> 'changes_sequenced')::int > 0 AS sequenced;
SELECT account_id, available, condition FROM test.monitor_changes(:start);
SELECT cte_feed_head() AS start \gset

-- Releasing the hold takes it back to 100 (not below, and not a crossing of `below`: that is
-- only downwards); 100 → 250: above 200 fires, reached in one posting.
SELECT ctel_release_lien(:'hold', 'changed') IS NOT NULL AS released;
SELECT cte_deposit('m-alice', 150, 'USD') IS NOT NULL AS funded;
SELECT (cte_run_maintenance() ->> 'changes_sequenced')::int > 0 AS sequenced;
SELECT account_id, available, condition, monitor = :'high' AS the_high_monitor
  FROM test.monitor_changes(:start);
SELECT cte_feed_head() AS start \gset

-- A crossing that rolls back leaves no change.
SAVEPOINT before_crossing;
SELECT cte_transfer('m-alice', 'm-bob', 200, 'USD') IS NOT NULL AS moved;
SELECT count(*) AS in_the_outbox FROM cte_change_outbox WHERE 'monitor' = ANY (kinds);
ROLLBACK TO before_crossing;
SELECT count(*) AS after_rollback FROM cte_change_outbox WHERE 'monitor' = ANY (kinds);

-- Other wallets are not watched: m-bob crossing any amount writes nothing, and its row stays
-- unmonitored (the trigger's WHEN reads only that flag).
SELECT cte_transfer('m-bob', 'm-alice', 50, 'USD') IS NOT NULL AS moved;
SELECT count(*) AS monitor_changes_of_bob FROM cte_change_outbox
 WHERE 'monitor' = ANY (kinds) AND account_id = 'm-bob';

-- A capture gives its hold back and debits in one change of the wallet: 150 held 80 is 70
-- available, and capturing the 80 leaves 70; `below 100` fired once, at the hold, and `above
-- 100` never (found by a review: the hold given back and the debit were two updates, and the
-- monitors saw 150 between them). The same for a final capture of part of a hold.
SELECT cte_create_account('m-carol', ARRAY['USD']);
SELECT cte_deposit('m-carol', 150, 'USD') IS NOT NULL AS funded;
SELECT cte_create_monitor('m-carol', 'USD', 'below', 100) IS NOT NULL AS watching_low,
       cte_create_monitor('m-carol', 'USD', 'above', 100) IS NOT NULL AS watching_high;
SELECT ctel_create_lien(NULL, 'm-carol', 80, 'USD') AS carol_hold \gset
SELECT ctel_capture_lien(:'carol_hold', 'm-bob') IS NOT NULL AS captured;
SELECT ctel_create_lien(NULL, 'm-carol', 30, 'USD') AS carol_hold \gset
SELECT ctel_capture_lien(:'carol_hold', 'm-bob', 10) IS NOT NULL AS captured_in_part;
SELECT cte_available_balance('m-carol', 'USD') AS carol_available;
SELECT new_statuses[1] AS condition, amount AS available FROM cte_change_outbox
 WHERE 'monitor' = ANY (kinds) AND account_id = 'm-carol' ORDER BY id;

-- Each bad request is refused with its own reason, and no monitor is made.
SELECT count(*) AS monitors FROM cte_monitors \gset
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'USD', 'sideways', 1)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'USD', 'below', 'NaN')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'USD', 'below', 'Infinity')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'USD', 'below', 1e17)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'USD', 'below', 0.001)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'JPY', 'below', 1)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('nobody', 'USD', 'below', 1)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('@world', 'USD', 'below', 1)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor(NULL, 'USD', 'below', 1)$$);
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'USD', 'below', NULL)$$);
-- A negative threshold is a threshold (an overdraft line); the 16 a wallet may have, then no more.
SELECT count(*) AS made FROM generate_series(1, 15) AS n,
       LATERAL cte_create_monitor('m-alice', 'EUR', 'below', -n) AS m;
SELECT cte_create_monitor('m-alice', 'EUR', 'above', 0) IS NOT NULL AS sixteenth;
SELECT cte_create_monitor('m-alice', 'EUR', 'below', -1) IS NOT NULL AS a_replay_at_the_limit;
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'EUR', 'below', -16)$$);
SELECT count(*) - :monitors AS made_since FROM cte_monitors;
-- Only an administrator creates or drops monitors.
SET ROLE t_monitor_shop;
SELECT test.refusal($$SELECT cte_ctel.cte_create_monitor('m-alice', 'USD', 'below', 5)$$);
SELECT test.refusal(format($$SELECT cte_ctel.cte_drop_monitor(%L)$$, :'low'));
RESET ROLE;

-- Dropped (again: a replay, false), it fires no more; the wallet stays monitored while it has
-- another, and not after its last.
SELECT cte_drop_monitor(:'low') AS dropped, cte_drop_monitor(:'low') AS dropped_again;
SELECT cte_balance('m-alice', 'USD') AS before_300;
SELECT cte_transfer('m-alice', 'm-bob', 250, 'USD') IS NOT NULL AS moved;
SELECT count(*) AS below_after_drop FROM cte_change_outbox
 WHERE 'monitor' = ANY (kinds) AND new_statuses = ARRAY['below'] AND account_id = 'm-alice';
SELECT monitored AS still_monitored FROM cte_balances WHERE account_id = 'm-alice' AND currency = 'USD';
SELECT cte_drop_monitor(:'high') AS dropped;
SELECT monitored AS after_the_last FROM cte_balances WHERE account_id = 'm-alice' AND currency = 'USD';
SELECT test.refusal($$SELECT cte_ctel.cte_drop_monitor(NULL)$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
