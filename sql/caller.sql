-- 0.3.0: every event records the role that created it (SPEC §11: its creator may cancel it).
-- A column default, so that every path that creates an event (cte_create_event, cte_run_event,
-- the one-call shortcuts, refunds) records it without being told.
ALTER TABLE cte_ctel.cte_events ALTER COLUMN created_by SET DEFAULT cte_ctel.cte_caller();
