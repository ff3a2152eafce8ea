-- Monitoring (docs/operations.md "Monitoring"): one row per metric and label, shaped for a
-- scraper such as postgres_exporter (metric and labels as label columns, value as the gauge).
-- Ages are taken at the scrape's statement. Every figure is read through an index or a table that stays small (the outbox, the worker's
-- row), so scraping it every few seconds costs the same on a ledger of a billion entries:
-- finished events are not counted (that is a scan of all history; take throughput as the rate
-- of feed_position or journal_last_entry_id instead).

-- The events that are not finished, or need an operator: the attention index covers those the
-- deadline index does not (created and waiting are there).
CREATE INDEX cte_events_attention_idx ON cte_ctel.cte_events (status, created_at)
    WHERE status IN ('compensating', 'failed');

CREATE VIEW cte_ctel.cte_stats AS
WITH open_events AS (
    SELECT e.status, count(*) AS events, min(coalesce(e.started_at, e.created_at)) AS oldest,
           count(*) FILTER (WHERE e.deadline < pg_catalog.statement_timestamp()
                              AND e.status IN ('created', 'waiting')) AS overdue
      FROM cte_ctel.cte_events e
     WHERE e.status IN ('created', 'waiting')
     GROUP BY e.status
    UNION ALL
    SELECT e.status, count(*), min(coalesce(e.started_at, e.created_at)), 0
      FROM cte_ctel.cte_events e
     WHERE e.status IN ('compensating', 'failed')
     GROUP BY e.status
),
-- External steps asked to compensate whose event waits for the report (under a failed event
-- the step stays compensating, for an operator: counted there).
in_doubt AS (
    SELECT t.compensation_requested_at
      FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id
     WHERE t.compensation_requested_at IS NOT NULL AND e.status = 'compensating'
),
statuses (status) AS (VALUES ('created'), ('waiting'), ('compensating'), ('failed')),
open_liens AS (
    SELECT l.currency, count(*) AS liens, sum(l.amount) AS amount,
           count(*) FILTER (WHERE l.status = 'active'
                              AND l.expires_at <= pg_catalog.statement_timestamp()) AS overdue
      FROM cte_ctel.cte_liens l
     WHERE l.status IN ('pending', 'active')
     GROUP BY l.currency
)
SELECT 'events_open'::text AS metric, s.status, NULL::text AS currency,
       coalesce(o.events, 0)::numeric AS value
  FROM statuses s LEFT JOIN open_events o USING (status)
UNION ALL
SELECT 'events_open_oldest_seconds', o.status, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - o.oldest), 3)
  FROM open_events o
UNION ALL
SELECT 'events_overdue', NULL, NULL, coalesce(sum(o.overdue), 0) FROM open_events o
UNION ALL
SELECT 'events_scheduled', NULL, NULL, count(*)
  FROM cte_ctel.cte_events e WHERE e.status = 'created' AND e.not_before IS NOT NULL
UNION ALL
SELECT 'events_scheduled_late', NULL, NULL, count(*)
  FROM cte_ctel.cte_events e
 WHERE e.status = 'created' AND e.not_before < pg_catalog.statement_timestamp()
UNION ALL
SELECT 'steps_in_doubt', NULL, NULL, count(*) FROM in_doubt
UNION ALL
SELECT 'steps_in_doubt_oldest_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - min(d.compensation_requested_at)), 3)
  FROM in_doubt d HAVING count(*) > 0
UNION ALL
SELECT 'retries_overdue', NULL, NULL, count(*)
  FROM cte_ctel.cte_transactions t WHERE t.next_attempt_at < pg_catalog.statement_timestamp()
UNION ALL
SELECT 'liens_open', NULL, l.currency, l.liens FROM open_liens l
UNION ALL
SELECT 'liens_open_amount', NULL, l.currency, l.amount FROM open_liens l
UNION ALL
SELECT 'liens_overdue', NULL, NULL, coalesce(sum(l.overdue), 0) FROM open_liens l
UNION ALL
SELECT 'worker_running', NULL, NULL, count(*)
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_type = 'cte_ctel maintenance' AND a.datname = pg_catalog.current_database()
UNION ALL
-- 0.3.0: the feed worker (sequencing, notifications, lien expiry) is a process of its own.
SELECT 'feed_worker_running', NULL, NULL, count(*)
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_type = 'cte_ctel feed' AND a.datname = pg_catalog.current_database()
UNION ALL
SELECT 'worker_last_pass_age_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - w.last_pass_at), 3)
  FROM cte_ctel.cte_worker_state w
UNION ALL
SELECT 'worker_last_pass_duration_seconds', NULL, NULL, w.last_pass_ms / 1000.0
  FROM cte_ctel.cte_worker_state w
UNION ALL
SELECT 'worker_last_failure_age_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - w.last_failure_at), 3)
  FROM cte_ctel.cte_worker_state w WHERE w.last_failure_at IS NOT NULL
UNION ALL
SELECT 'feed_backlog', NULL, NULL, count(*) FROM cte_ctel.cte_change_outbox
UNION ALL
SELECT 'feed_backlog_oldest_seconds', NULL, NULL,
       round(extract(epoch FROM pg_catalog.statement_timestamp() - min(b.at)), 3)
  FROM cte_ctel.cte_change_outbox b HAVING count(*) > 0
UNION ALL
SELECT 'feed_position', NULL, NULL, coalesce(max(c.position), 0) FROM cte_ctel.cte_change_log c
UNION ALL
SELECT 'journal_last_entry_id', NULL, NULL, coalesce(max(j.id), 0) FROM cte_ctel.cte_entries j
UNION ALL
-- 0.3.0: each named consumer's lag behind the feed, in positions (never negative).
SELECT 'consumer_lag', c.name::text, NULL, greatest(h.head - c.position, 0)
  FROM cte_ctel.cte_consumers c, (SELECT cte_ctel.cte_feed_head() AS head) h;

COMMENT ON VIEW cte_ctel.cte_stats IS
    'Monitoring gauges, one row per metric and label (docs/operations.md lists them with alerts).';
