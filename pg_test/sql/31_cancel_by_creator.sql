-- Cancel by the creator (SPEC §11): an operator may cancel an event it created (the role it
-- acted as then: current_user outside the API), another operator is refused with 42501 and
-- nothing changes, and a member of cte_admin may cancel any. Events record their creator in
-- cte_events.created_by, whichever call made them.
SET search_path = cte_ctel, test;
BEGIN;
CREATE ROLE t_shop_a IN ROLE cte_operator;
CREATE ROLE t_shop_b IN ROLE cte_operator;
CREATE ROLE t_back_office IN ROLE cte_admin;
GRANT USAGE ON SCHEMA test TO t_shop_a, t_shop_b, t_back_office;
GRANT EXECUTE ON FUNCTION test.refusal(text), test.ledger_state(), test.engine_state() TO PUBLIC;
GRANT ALL ON test.observed_sqlstates TO PUBLIC;
SELECT cte_create_account('cc-alice', ARRAY['USD']);
SELECT cte_deposit('cc-alice', 10, 'USD') IS NOT NULL AS funded;

SET ROLE t_shop_a;
SELECT cte_ctel.cte_create_event('a order') AS a_order \gset
SELECT cte_ctel.cte_create_event('a second order') AS a_second \gset
SELECT event_id AS a_run FROM cte_ctel.cte_run_event('a payout', '[{"name": "bank", "type": "external", "payload": {}}]', 'cc-run') \gset
RESET ROLE;
SELECT name, created_by FROM cte_events WHERE id IN (:'a_order', :'a_second', :'a_run') ORDER BY name;

-- Another operator may not cancel it; nothing changes.
SET ROLE t_shop_b;
SELECT test.refusal(format($$SELECT cte_ctel.cte_cancel_event(%L, 'not mine')$$, :'a_order'));
RESET ROLE;
SELECT status FROM cte_events WHERE id = :'a_order';
-- Its creator may; an administrator may cancel anyone's.
SET ROLE t_shop_a;
SELECT cte_ctel.cte_cancel_event(:'a_order', 'changed my mind');
SELECT cte_ctel.cte_cancel_event(:'a_run', 'bank closed');
RESET ROLE;
SET ROLE t_back_office;
SELECT cte_ctel.cte_cancel_event(:'a_second', 'fraud check');
RESET ROLE;
SELECT name, status FROM cte_events WHERE id IN (:'a_order', :'a_second', :'a_run') ORDER BY name;
-- An event made before 0.3.0 has no creator: only an administrator cancels it.
SELECT cte_create_event('old') AS old \gset
UPDATE cte_events SET created_by = NULL WHERE id = :'old';
SET ROLE t_shop_a;
SELECT test.refusal(format($$SELECT cte_ctel.cte_cancel_event(%L)$$, :'old'));
RESET ROLE;
SELECT cte_cancel_event(:'old', 'by the superuser');
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
