//! A bulk call's items in SQL: the `jsonb` array taken apart by PostgreSQL, each item printed on
//! its own (never the whole document at once), in order.

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::{run_cached, select_one, Row};

const ARRAY_LENGTH: &str = "
    SELECT CASE WHEN jsonb_typeof($1) = 'array' THEN jsonb_array_length($1) END";

/// The number of items of a `jsonb` array; `None` if it is not an array.
pub fn array_length(items: pg_sys::Datum) -> Option<usize> {
    // SAFETY: a jsonb datum, valid for the call it was given to.
    let arg = unsafe { DatumWithOid::new(items, pg_sys::JSONBOID) };
    let length: Option<i32> = select_one(ARRAY_LENGTH, &[arg]);
    length.and_then(|length| usize::try_from(length).ok())
}

// An item larger than $2 bytes (stored) is not printed: it is refused as too large.
const ITEM_TEXTS: &str = "
    SELECT CASE WHEN pg_catalog.pg_column_size(i.e) <= $2 THEN i.e::text END
      FROM jsonb_array_elements($1) WITH ORDINALITY AS i(e, n)
     ORDER BY i.n";

/// Each item's JSON text, in order; `None` for an item larger than `bytes_max`.
pub fn item_texts(items: pg_sys::Datum, bytes_max: usize) -> Vec<Option<String>> {
    // SAFETY: as in `array_length`.
    let arg = unsafe { DatumWithOid::new(items, pg_sys::JSONBOID) };
    let bytes_max = i64::try_from(bytes_max).unwrap_or(i64::MAX);
    Spi::connect_mut(|client| {
        let table = run_cached(client, ITEM_TEXTS, &[arg, bytes_max.into()], false);
        Row::each(table, ITEM_TEXTS, |row| row.optional::<String>(1))
    })
}
