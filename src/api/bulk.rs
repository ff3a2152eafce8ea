//! `cte_transfers` (SPEC §11): many transfers in one call and one transaction, each posted,
//! refused (with its reason) or replayed on its own; set-based inside (`driver::bulk`). A
//! try-again error (40001, 40P01) aborts the whole call, which the caller sends again safely:
//! what it posted rolls back with it, and what committed before replays. A refusal of the call
//! itself (no array, too many items, a tenant reaching another's wallet) raises its error.

use cte_ctel_core::engine::transfer::TransferRequest;
use cte_ctel_core::limits::{BATCH_ITEMS_MAX, PAYLOAD_BYTES_MAX};
use cte_ctel_core::CteError;
use pgrx::prelude::*;
use pgrx::Uuid;

use super::engine::client_context;
use super::json_text::JsonbText;
use super::{refused, required};
use crate::driver::build;
use crate::driver::bulk::{self, Outcome};
use crate::store;

/// One row of `cte_transfers`: the item (from 1), its event, its status and reason.
type ItemRow = (i32, Option<Uuid>, String, Option<String>);

/// Many transfers in one call: each item `{source_account_id, destination_account_id, amount,
/// currency, reference, metadata}` posted, refused (with its reason) or replayed on its own.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_transfers(
    items: Option<JsonbText>,
) -> TableIterator<
    'static,
    (
        name!(item, i32),
        name!(event_id, Option<Uuid>),
        name!(status, String),
        name!(reason, Option<String>),
    ),
> {
    let rows = refused("cte_transfers", move || transfers(items));
    TableIterator::new(rows)
}

fn transfers(items: Option<JsonbText>) -> Result<Vec<ItemRow>, CteError> {
    let items = required(items, "items")?;
    let count =
        store::bulk::array_length(items.datum()).ok_or_else(|| CteError::PayloadInvalid {
            step_type: "cte_transfers".to_string(),
            why: "items must be an array".to_string(),
        })?;
    if count > BATCH_ITEMS_MAX {
        return Err(CteError::LimitExceeded {
            what: "items per call",
            value: count,
            limit: BATCH_ITEMS_MAX,
        });
    }
    let book = build::currency_book();
    let texts = store::bulk::item_texts(items.datum(), PAYLOAD_BYTES_MAX);
    let (mut checked, mut refusals) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for (index, text) in texts.into_iter().enumerate() {
        let item = item_value(text)
            .and_then(|value| TransferRequest::from_item(&value, index + 1, &book))
            .and_then(bulk::check);
        match item {
            Ok(item) => {
                // A tenant may move money out of its own wallets only: the whole call is
                // refused (42501), as a single transfer would be.
                super::security::refuse_foreign_debits(
                    "cte_transfers",
                    std::slice::from_ref(&item.posting),
                );
                checked.push(Some(item));
                refusals.push(None);
            }
            Err(error) => {
                checked.push(None);
                refusals.push(Some(error));
            }
        }
    }
    let outcomes = bulk::post(&checked, &client_context())?;
    let rows = outcomes
        .into_iter()
        .zip(refusals.iter_mut())
        .enumerate()
        .map(|(index, (outcome, refusal))| {
            let item = i32::try_from(index + 1).unwrap_or(i32::MAX);
            let outcome = outcome.or_else(|| refusal.take().map(Outcome::Refused));
            match outcome {
                Some(Outcome::Posted(event_id)) => (item, Some(event_id), "posted".into(), None),
                Some(Outcome::Replayed(event_id)) => {
                    // A replay under another's reference would tell its event's id.
                    super::security::refuse_foreign_reply("cte_transfers", event_id);
                    (item, Some(event_id), "replayed".into(), None)
                }
                Some(Outcome::Refused(error)) => {
                    (item, None, "refused".into(), Some(error.reason().to_string()))
                }
                None => panic!("every item of a bulk call is decided"),
            }
        })
        .collect();
    Ok(rows)
}

/// An item's JSON value from its text: refused if larger than a payload may be, or nested
/// deeper than `JSON_DEPTH_MAX`.
fn item_value(text: Option<String>) -> Result<serde_json::Value, CteError> {
    let text = text.ok_or(CteError::LimitExceeded {
        what: "item size in bytes",
        value: PAYLOAD_BYTES_MAX + 1,
        limit: PAYLOAD_BYTES_MAX,
    })?;
    super::json_text::value_of(&text)
}
