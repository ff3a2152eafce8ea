//! Lien functions of SPEC §5: hold funds, release them, capture them.

use cte_ctel_core::engine::checks;
use cte_ctel_core::ledger::AccountId;
use cte_ctel_core::money::Amount;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::engine::{client_context, metadata_of};
use super::json_text::JsonbText;
use super::{refused, required};
use crate::driver::holds;
use crate::store::ledger;

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
        holds::refuse_system_account(&account)?;
        let currency = ledger::currency(&required(currency, "currency")?)?;
        let amount = Amount::parse(&required(amount, "amount")?.to_string(), &currency)?;
        let metadata = metadata_of(metadata)?;
        holds::create(event_id, &account, &amount, expires_at, &metadata, &client_context())
    })
}

/// Gives a lien's funds back to the available balance.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ctel_release_lien(lien_id: Option<Uuid>, reason: default!(Option<String>, "NULL")) {
    refused("ctel_release_lien", move || {
        let lien_id = required(lien_id, "lien_id")?;
        checks::description(reason.as_deref(), "reason")?;
        holds::release(lien_id, reason.as_deref(), &client_context())
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
        let amount = amount.map(|amount| amount.to_string());
        holds::capture(lien_id, &destination, amount.as_deref(), &client_context())
    })
}
