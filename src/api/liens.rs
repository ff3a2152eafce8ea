//! Lien functions of SPEC §5: hold funds, release them, capture them.

use cte_ctel_core::engine::EventStatus;
use cte_ctel_core::ledger::{AccountId, Metadata};
use cte_ctel_core::limits::DESCRIPTION_BYTES_MAX;
use cte_ctel_core::money::Amount;
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::json_text::JsonbText;
use super::{refused, required};
use crate::store::{events, ledger, liens};

/// Reserves funds on a wallet. For an event that has not started the lien is `pending` and
/// takes its funds when the event starts; otherwise it is `active` at once. `event_id` may be
/// NULL for a standalone hold.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ctel_create_lien(
    event_id: Option<Uuid>,
    account_id: Option<String>,
    amount: Option<AnyNumeric>,
    currency: Option<String>,
    expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> Uuid {
    refused("ctel_create_lien", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        if account.as_str().starts_with(cte_ctel_core::ledger::SYSTEM_ACCOUNT_PREFIX) {
            return Err(CteError::SystemAccountRefused {
                account_id: account.as_str().to_string(),
            });
        }
        let currency = ledger::currency(&required(currency, "currency")?)?;
        let amount = Amount::parse(&required(amount, "amount")?.to_string(), &currency)?;
        let metadata_bytes = metadata.as_ref().map_or(0, |text| text.0.len());
        let metadata = metadata.map(|text| text.parse("metadata size in bytes")).transpose()?;
        let metadata = Metadata::parse(metadata, metadata_bytes)?;
        let active = match event_id {
            None => true,
            Some(event_id) => match events::lock(event_id)?.status {
                EventStatus::Created => false,
                EventStatus::Running | EventStatus::Waiting => true,
                status @ (EventStatus::Completed
                | EventStatus::Compensating
                | EventStatus::Compensated
                | EventStatus::Failed) => {
                    return Err(CteError::TransitionNotAllowed {
                        what: "event",
                        from: status.as_str(),
                        input: "hold funds for",
                    })
                }
            },
        };
        liens::create(event_id, None, &account, &amount, expires_at, &metadata, active)
    })
}

/// Gives a lien's funds back to the available balance.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ctel_release_lien(lien_id: Option<Uuid>, reason: default!(Option<String>, "NULL")) {
    refused("ctel_release_lien", move || {
        let lien_id = required(lien_id, "lien_id")?;
        if let Some(reason) = &reason {
            if reason.len() > DESCRIPTION_BYTES_MAX {
                return Err(CteError::TextTooLong {
                    what: "reason",
                    bytes: reason.len(),
                    bytes_max: DESCRIPTION_BYTES_MAX,
                });
            }
        }
        liens::release(lien_id, reason.as_deref())
    })
}

/// Moves up to the held amount (all of it by default) to `destination_account_id`; any
/// remainder is released. Returns the posting id.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ctel_capture_lien(
    lien_id: Option<Uuid>,
    destination_account_id: Option<String>,
    amount: default!(Option<AnyNumeric>, "NULL"),
) -> Uuid {
    refused("ctel_capture_lien", move || {
        let lien_id = required(lien_id, "lien_id")?;
        let destination =
            AccountId::parse(&required(destination_account_id, "destination_account_id")?)?;
        liens::capture(lien_id, &destination, amount)
    })
}
