//! The change feed (SPEC §4 v2): every status change, in an order a consumer follows with a
//! cursor and never misses one.

use cte_ctel_core::limits::FEED_CHANGES_MAX;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::{page_limit, refused, required};
use crate::store::changes;

// pgrx reads the row's column names from this signature, so it is spelled out here.
#[allow(clippy::type_complexity)]
/// Up to `limit` changes after position `after` (0 for the first), in position order. Follow
/// it with the last position returned; positions are given to committed changes only, never
/// below one already given, so a consumer that comes back later misses nothing.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_changes(
    after: default!(Option<i64>, 0),
    limit: default!(Option<i32>, 1000),
) -> TableIterator<
    'static,
    (
        name!(position, i64),
        name!(at, TimestampWithTimeZone),
        name!(kind, String),
        name!(event_id, Option<Uuid>),
        name!(event_name, Option<String>),
        name!(transaction_id, Option<Uuid>),
        name!(transaction_type, Option<String>),
        name!(lien_id, Option<Uuid>),
        name!(account_id, Option<String>),
        name!(old_status, Option<String>),
        name!(new_status, String),
        name!(amount, Option<AnyNumeric>),
        name!(currency, Option<String>),
        name!(reference, Option<String>),
        name!(actor, String),
        name!(reason, Option<String>),
    ),
> {
    let rows = refused("cte_changes", move || {
        let after = required(after, "after")?;
        let limit = page_limit(limit, FEED_CHANGES_MAX)?;
        Ok(changes::feed(after.max(0), limit))
    });
    TableIterator::new(rows.into_iter().map(|row| {
        (
            row.position,
            row.at,
            row.kind,
            row.event_id,
            row.event_name,
            row.transaction_id,
            row.transaction_type,
            row.lien_id,
            row.account_id,
            row.old_status,
            row.new_status,
            row.amount,
            row.currency,
            row.reference,
            row.actor,
            row.reason,
        )
    }))
}
