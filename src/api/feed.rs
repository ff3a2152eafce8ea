//! The change feed (SPEC §4 v2): every status change, in an order a consumer follows with a
//! cursor and never misses one.

use cte_ctel_core::limits::FEED_CHANGES_MAX;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::json_text::JsonbOut;
use super::{page_limit, refused, required};
use crate::store::changes;

/// One row of the feed as `cte_changes` returns it (0.2.0's sixteen columns, then `metadata`).
type Change = (
    i64,
    TimestampWithTimeZone,
    String,
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    String,
    Option<AnyNumeric>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

fn changes_after(
    after: Option<i64>,
    limit: Option<i32>,
    tables_of_0_2_0: bool,
) -> Vec<(Change, Option<String>)> {
    let rows = refused("cte_changes", move || {
        let after = required(after, "after")?;
        let limit = page_limit(limit, FEED_CHANGES_MAX)?;
        Ok(changes::feed(after.max(0), limit, tables_of_0_2_0))
    });
    rows.into_iter()
        .map(|row| {
            let change = (
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
            );
            (change, row.metadata)
        })
        .collect()
}

// pgrx reads the row's column names from this signature, so it is spelled out here.
#[allow(clippy::type_complexity)]
/// Up to `limit` changes after position `after` (0 for the first), in position order. Follow
/// it with the last position returned; positions are given to committed changes only, never
/// below one already given, so a consumer that comes back later misses nothing. `metadata` is
/// the changed event's (SPEC §11).
#[pg_extern(name = "cte_changes", security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_changes_with_metadata(
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
        name!(metadata, Option<JsonbOut>),
    ),
> {
    TableIterator::new(changes_after(after, limit, false).into_iter().map(|(c, metadata)| {
        (
            c.0,
            c.1,
            c.2,
            c.3,
            c.4,
            c.5,
            c.6,
            c.7,
            c.8,
            c.9,
            c.10,
            c.11,
            c.12,
            c.13,
            c.14,
            c.15,
            metadata.map(JsonbOut),
        )
    }))
}

/// 0.2.0's `cte_changes` (sixteen columns, no metadata), serving 0.2.0's SQL until the update.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false)]
fn cte_changes(
    after: Option<i64>,
    limit: Option<i32>,
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
    TableIterator::new(changes_after(after, limit, true).into_iter().map(|(change, _)| change))
}
