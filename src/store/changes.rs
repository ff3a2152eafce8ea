//! Status changes in SQL: the outbox each change is written to by the transaction that makes
//! it, the sequencer that moves committed rows into the change log (giving each change its
//! position in the feed), and the feed itself.
//!
//! Why a sequencer: identities are handed out when rows are inserted, but transactions commit
//! in another order, so a consumer reading by id could pass a row that commits later with a
//! lower id and never see it. The sequencer (one at a time) gives positions only to rows that
//! are committed when it runs, each above every position given before; a row committing later
//! gets a later position. Positions are stored values, so a dump and restore keep them.

use cte_ctel_core::limits::CHANGES_PER_ROW_MAX;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::{run_cached, spi, update_one, Row};

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Event,
    Transaction,
    Lien,
    /// A report on a step that no longer awaited it: nothing changed.
    LateReport,
    /// An account's status or a balance's floor (the batch names the account).
    Account,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Transaction => "transaction",
            Kind::Lien => "lien",
            Kind::LateReport => "late_report",
            Kind::Account => "account",
        }
    }
}

/// One status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: Kind,
    pub transaction_id: Option<Uuid>,
    pub lien_id: Option<Uuid>,
    pub old_status: Option<&'static str>,
    pub new_status: &'static str,
}

/// The changes one drive or one operation made, written as one outbox row.
#[derive(Debug, Default)]
pub struct Batch {
    pub event_id: Option<Uuid>,
    pub account_id: Option<String>,
    /// Who made them; `None` is the session's user.
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub changes: Vec<Change>,
}

/// The outbox's columns, in the order `outbox_args` gives their values: shared by the plain
/// insert and the one-step path's single statement, so both write the same row.
macro_rules! outbox_columns {
    () => {
        "event_id, account_id, actor, reason, kinds, transaction_ids, lien_ids, old_statuses, \
         new_statuses"
    };
}
pub(crate) use outbox_columns;

const OUTBOX_INSERT: &str = concat!(
    "INSERT INTO cte_ctel.cte_change_outbox (",
    outbox_columns!(),
    ") VALUES ($1, $2, COALESCE($3, session_user), $4, $5, $6, $7, $8, $9)"
);

/// The outbox row's arguments, in the order of `OUTBOX_INSERT`'s `$1`..`$9`.
pub fn outbox_args(batch: &Batch) -> [pgrx::datum::DatumWithOid<'static>; 9] {
    assert!(batch.changes.len() <= CHANGES_PER_ROW_MAX, "a drive's changes fit one row");
    let kinds: Vec<&str> = batch.changes.iter().map(|change| change.kind.as_str()).collect();
    let steps: Vec<Option<Uuid>> =
        batch.changes.iter().map(|change| change.transaction_id).collect();
    let liens: Vec<Option<Uuid>> = batch.changes.iter().map(|change| change.lien_id).collect();
    let from: Vec<Option<&str>> = batch.changes.iter().map(|change| change.old_status).collect();
    let to: Vec<&str> = batch.changes.iter().map(|change| change.new_status).collect();
    [
        batch.event_id.into(),
        batch.account_id.clone().into(),
        batch.actor.clone().into(),
        batch.reason.clone().into(),
        kinds.into(),
        steps.into(),
        liens.into(),
        from.into(),
        to.into(),
    ]
}

/// Writes a batch of changes to the outbox (nothing if it is empty), and has the worker woken
/// when the transaction commits.
pub fn record(batch: &Batch) {
    if batch.changes.is_empty() {
        return;
    }
    let args = outbox_args(batch);
    Spi::connect_mut(|client| {
        run_cached(client, OUTBOX_INSERT, &args, true);
    });
    crate::wake::at_commit();
}

const SEQUENCER_LOCK: &str =
    "SELECT true FROM cte_ctel.cte_sequencer WHERE id = 1 FOR UPDATE SKIP LOCKED";

// In one statement, with the snapshot taken after the sequencer's lock was granted (so it sees
// every row the previous sequencer moved): delete committed outbox rows in id order, number
// their changes on from the last position given, and insert them into the log. The rows moved
// are those up to the $1-th committed id (the same rows as `id IN (the first $1)` in one
// snapshot), a range whatever the planner believes of the table: the outbox is a queue, often
// analyzed empty, and `id IN (…)` planned for an empty table as a nested loop took minutes
// per pass over the 139,000 changes a burst of bulk calls left (found in bench/run).
const SEQUENCE: &str = "
    WITH last AS (
        SELECT COALESCE((SELECT position + cardinality(kinds) - 1 FROM cte_ctel.cte_change_log
                          ORDER BY position DESC LIMIT 1), 0) AS position),
    moved AS (
        DELETE FROM cte_ctel.cte_change_outbox
         WHERE id <= (SELECT max(f.id) FROM (SELECT id FROM cte_ctel.cte_change_outbox
                                              ORDER BY id LIMIT $1) f)
        RETURNING *),
    numbered AS (
        SELECT m.*, last.position + 1
                    + sum(cardinality(m.kinds)) OVER (ORDER BY m.id) - cardinality(m.kinds)
                    AS position
          FROM moved m, last),
    logged AS (
        INSERT INTO cte_ctel.cte_change_log
               (position, id, event_id, account_id, actor, reason, at, kinds, transaction_ids,
                lien_ids, old_statuses, new_statuses, amount, currency, monitor_id)
        SELECT position, id, event_id, account_id, actor, reason, at, kinds, transaction_ids,
               lien_ids, old_statuses, new_statuses, amount, currency, monitor_id
          FROM numbered
        RETURNING position + cardinality(kinds) - 1 AS last_position)
    SELECT count(*), COALESCE(max(last_position), (SELECT position FROM last)) FROM logged";

/// Gives positions to up to `rows_max` committed outbox rows; returns how many rows it moved
/// and the newest position, or `None` if another sequencer is at work (or this transaction
/// cannot see what the last one did: only READ COMMITTED takes a snapshot per statement).
pub fn sequence(rows_max: i64) -> Option<(i64, i64)> {
    // SAFETY: a read of the backend's isolation level.
    let read_committed =
        unsafe { pgrx::pg_sys::XactIsoLevel } == pgrx::pg_sys::XACT_READ_COMMITTED as i32;
    if !read_committed {
        return None;
    }
    let locked: Option<bool> = Spi::connect_mut(|client| update_one(client, SEQUENCER_LOCK, &[]));
    locked?;
    Spi::connect_mut(|client| {
        let table = run_cached(client, SEQUENCE, &[rows_max.into()], true);
        let row = table.first();
        let moved = spi(row.get::<i64>(1), SEQUENCE).unwrap_or(0);
        let newest = spi(row.get::<i64>(2), SEQUENCE).unwrap_or(0);
        Some((moved, newest))
    })
}

const NOTIFY: &str = "SELECT pg_catalog.pg_notify('cte_events', $1::text)";

// Room left in the server's NOTIFY queue: a NOTIFY that finds it full fails at commit, where
// nothing can catch it (a listener that never reads fills it: any role may LISTEN).
const QUEUE_HAS_ROOM: &str = "SELECT pg_catalog.pg_notification_queue_usage() < 0.5";

/// Whether the server's NOTIFY queue has room for one more announcement.
pub fn notify_queue_has_room() -> bool {
    super::select_one::<bool>(QUEUE_HAS_ROOM, &[]) == Some(true)
}

/// Wakes the consumers listening on `cte_events`: the payload is the newest position.
pub fn notify(newest: i64) {
    Spi::connect_mut(|client| {
        run_cached(client, NOTIFY, &[newest.into()], true);
    });
}

/// One change of the feed, with what a consumer needs to route it.
pub struct FeedRow {
    pub position: i64,
    pub at: TimestampWithTimeZone,
    pub kind: String,
    pub event_id: Option<Uuid>,
    pub event_name: Option<String>,
    pub transaction_id: Option<Uuid>,
    pub transaction_type: Option<String>,
    pub lien_id: Option<Uuid>,
    pub account_id: Option<String>,
    pub old_status: Option<String>,
    pub new_status: String,
    pub amount: Option<AnyNumeric>,
    pub currency: Option<String>,
    pub reference: Option<String>,
    pub actor: String,
    pub reason: Option<String>,
    /// The event's metadata (SPEC §11), as JSON text.
    pub metadata: Option<String>,
}

// A row holds the changes from its position on: the first row wanted is the last that starts at
// or before $1 + 1; from there, $2 + 1 rows hold at least $2 changes after $1 (each row one or
// more), if there are that many. `$rows` narrows the rows read (read tenancy: FEED_OF_TENANT).
// Each change's event, step and lien are looked up row by row (a LATERAL subquery the planner
// keeps as such): the page is at most $2 changes, often a few, and with time-ordered ids a
// join planned for $2 rows merged with the whole events index (190 ms a page on a 675,000-event
// ledger, found in bench/run's feed latency after its workloads).
macro_rules! feed_query {
    ($rows:literal) => {
        concat!(
            "
    WITH start AS (
        SELECT COALESCE((SELECT position FROM cte_ctel.cte_change_log WHERE position <= $1 + 1
                          ORDER BY position DESC LIMIT 1), 1) AS position)
    SELECT b.position + c.n - 1, b.at, c.kind, b.event_id, e.name, c.transaction_id, t.type,
           c.lien_id, COALESCE(b.account_id, l.account_id),
           c.old_status, c.new_status,
           COALESCE(b.amount, l.amount,
                    CASE WHEN t.payload->>'amount' ~ '^[0-9]+(\\.[0-9]+)?$'
                         THEN (t.payload->>'amount')::numeric END),
           COALESCE(b.currency, l.currency, t.payload->>'currency'),
           COALESCE(t.reference, b.monitor_id::text), b.actor, b.reason, e.metadata::text
      FROM (SELECT l.* FROM cte_ctel.cte_change_log l, start
             WHERE l.position >= start.position ",
            $rows,
            " ORDER BY l.position LIMIT $2 + 1) b
     CROSS JOIN LATERAL unnest(b.kinds, b.transaction_ids, b.lien_ids, b.old_statuses,
                               b.new_statuses) WITH ORDINALITY
                AS c(kind, transaction_id, lien_id, old_status, new_status, n)
      LEFT JOIN LATERAL (SELECT e.name, e.metadata FROM cte_ctel.cte_events e
                          WHERE e.id = b.event_id LIMIT 1) e ON true
      LEFT JOIN LATERAL (SELECT t.type, t.payload, t.reference FROM cte_ctel.cte_transactions t
                          WHERE t.id = c.transaction_id LIMIT 1) t ON true
      LEFT JOIN LATERAL (SELECT l.account_id, l.amount, l.currency FROM cte_ctel.cte_liens l
                          WHERE l.id = c.lien_id LIMIT 1) l ON true
     WHERE b.position + c.n - 1 > $1
     ORDER BY 1
     LIMIT $2"
        )
    };
}
const FEED: &str = feed_query!("");
// The rows of the changes a role read tenancy limits may read (SPEC §12): positions of the others'
// are skipped, never given again, so its cursor still only moves forward.
const FEED_OF_TENANT: &str =
    feed_query!("AND cte_ctel.cte_may_read_change(l.event_id, l.account_id, l.lien_ids)");

// FEED as 0.2.0's tables allow (no monitor columns, no metadata), for 0.2.0's `cte_changes`
// between a package upgrade and ALTER EXTENSION cte_ctel UPDATE: the feed stays readable.
const FEED_0_2_0: &str = "
    WITH start AS (
        SELECT COALESCE((SELECT position FROM cte_ctel.cte_change_log WHERE position <= $1 + 1
                          ORDER BY position DESC LIMIT 1), 1) AS position)
    SELECT b.position + c.n - 1, b.at, c.kind, b.event_id, e.name, c.transaction_id, t.type,
           c.lien_id, COALESCE(b.account_id, l.account_id),
           c.old_status, c.new_status,
           COALESCE(l.amount, CASE WHEN t.payload->>'amount' ~ '^[0-9]+(\\.[0-9]+)?$'
                                   THEN (t.payload->>'amount')::numeric END),
           COALESCE(l.currency, t.payload->>'currency'),
           t.reference, b.actor, b.reason, NULL::text
      FROM (SELECT l.* FROM cte_ctel.cte_change_log l, start
             WHERE l.position >= start.position ORDER BY l.position LIMIT $2 + 1) b
     CROSS JOIN LATERAL unnest(b.kinds, b.transaction_ids, b.lien_ids, b.old_statuses,
                               b.new_statuses) WITH ORDINALITY
                AS c(kind, transaction_id, lien_id, old_status, new_status, n)
      LEFT JOIN LATERAL (SELECT e.name FROM cte_ctel.cte_events e
                          WHERE e.id = b.event_id LIMIT 1) e ON true
      LEFT JOIN LATERAL (SELECT t.type, t.payload, t.reference FROM cte_ctel.cte_transactions t
                          WHERE t.id = c.transaction_id LIMIT 1) t ON true
      LEFT JOIN LATERAL (SELECT l.account_id, l.amount, l.currency FROM cte_ctel.cte_liens l
                          WHERE l.id = c.lien_id LIMIT 1) l ON true
     WHERE b.position + c.n - 1 > $1
     ORDER BY 1
     LIMIT $2";

/// Up to `limit` changes after position `after`, in order. `tables_of_0_2_0`: the installed
/// SQL is 0.2.0's (its `cte_changes`), whose tables lack the columns FEED reads (and which has
/// no read tenancy).
pub fn feed(after: i64, limit: i64, tables_of_0_2_0: bool) -> Vec<FeedRow> {
    let args = [after.into(), limit.into()];
    let query = match tables_of_0_2_0 {
        true => FEED_0_2_0,
        false if super::tenancy::reads_all() => FEED,
        false => FEED_OF_TENANT,
    };
    Spi::connect_mut(|client| {
        let table = run_cached(client, query, &args, false);
        table
            .map(|row| {
                let row = Row::new(&row, query);
                let text = |ordinal| row.optional::<String>(ordinal);
                let id = |ordinal| row.optional::<Uuid>(ordinal);
                FeedRow {
                    position: row.required(1, "position"),
                    at: row.required::<TimestampWithTimeZone>(2, "at"),
                    kind: row.required(3, "kind"),
                    event_id: id(4),
                    event_name: text(5),
                    transaction_id: id(6),
                    transaction_type: text(7),
                    lien_id: id(8),
                    account_id: text(9),
                    old_status: text(10),
                    new_status: row.required(11, "new_status"),
                    amount: row.optional::<AnyNumeric>(12),
                    currency: text(13),
                    reference: text(14),
                    actor: row.required(15, "actor"),
                    reason: text(16),
                    metadata: text(17),
                }
            })
            .collect()
    })
}
