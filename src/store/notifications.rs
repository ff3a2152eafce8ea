//! Status-change announcements queued by `cte_ctel.notify_by_worker`: the maintenance pass sends
//! them, oldest first, as the same `NOTIFY cte_events` the changing transaction would have
//! sent, and deletes what it sent in the same transaction — so each is sent once, after the
//! change committed, and none is lost to a crash.

use cte_ctel_core::limits::NOTIFY_QUEUE_ROWS_PER_MAINTENANCE_MAX;
use pgrx::prelude::*;

use super::update_one;

/// The advisory lock key that keeps two passes from sending at once (their notifications
/// could otherwise overtake each other): "cte_ctel" in ASCII.
const SENDER_LOCK_KEY: i64 = 0x6374_655f_6374_656c;

const SEND_QUEUED: &str = concat!(
    "
    WITH sender AS (SELECT pg_catalog.pg_try_advisory_xact_lock($2) AS alone),
    sent AS (
        DELETE FROM cte_ctel.cte_notify_queue
         WHERE id IN (SELECT q.id FROM cte_ctel.cte_notify_queue q, sender
                       WHERE sender.alone ORDER BY q.id LIMIT $1)
        RETURNING history_ids),
    changes AS (
        SELECT h.id, h.event_id, h.transaction_id, h.old_status, h.new_status
          FROM sent, pg_catalog.unnest(sent.history_ids) AS queued(id)
          JOIN cte_ctel.cte_event_history h ON h.id = queued.id
         ORDER BY h.id)
    ",
    notify_changes!(),
    "
      FROM changes"
);

/// Sends the queued announcements (up to a bound) and forgets them; returns how many went out.
/// Another pass already sending is left to it.
pub fn send_queued() -> i64 {
    let args = [NOTIFY_QUEUE_ROWS_PER_MAINTENANCE_MAX.into(), SENDER_LOCK_KEY.into()];
    let sent: Option<i64> = Spi::connect_mut(|client| update_one(client, SEND_QUEUED, &args));
    sent.unwrap_or(0)
}
