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
/// NULL for a standalone hold. The same `idempotency_key` returns the same lien (the same
/// account, amount, currency and event; anything else is refused).
#[pg_extern(name = "ctel_create_lien", security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn ctel_create_lien_keyed(
    event_id: Option<Uuid>,
    account_id: Option<String>,
    amount: Option<AnyNumeric>,
    currency: Option<String>,
    expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    idempotency_key: default!(Option<String>, "NULL"),
) -> Uuid {
    refused("ctel_create_lien", move || {
        let account = AccountId::parse(&required(account_id, "account_id")?)?;
        holds::refuse_system_account(&account)?;
        super::security::refuse_foreign_debit("ctel_create_lien", account.as_str());
        if let Some(event_id) = event_id {
            super::security::refuse_foreign_event("ctel_create_lien", event_id);
        }
        let currency = ledger::currency(&required(currency, "currency")?)?;
        let amount = Amount::parse(&required(amount, "amount")?.to_string(), &currency)?;
        let metadata = metadata_of(metadata)?;
        if let Some(key) = &idempotency_key {
            checks::name(key, "idempotency key")?;
        }
        let hold = holds::Hold {
            event_id,
            account: &account,
            amount: &amount,
            expires_at,
            metadata: &metadata,
            idempotency_key: idempotency_key.as_deref(),
        };
        holds::create(&hold, &client_context())
    })
}

/// 0.1.0's `ctel_create_lien` (six arguments): the symbol is kept so that 0.1.0's SQL still
/// loads between a package upgrade and `ALTER EXTENSION cte_ctel UPDATE`; it refuses.
#[pg_extern(sql = false)]
fn ctel_create_lien(
    _event_id: Option<Uuid>,
    _account_id: Option<String>,
    _amount: Option<AnyNumeric>,
    _currency: Option<String>,
    _expires_at: Option<TimestampWithTimeZone>,
    _metadata: Option<JsonbText>,
) -> Uuid {
    crate::store::refuse_older_sql("its ctel_create_lien takes six arguments")
}

/// 0.1.0's `ctel_capture_lien` (three arguments), kept the same way.
#[pg_extern(sql = false)]
fn ctel_capture_lien(
    _lien_id: Option<Uuid>,
    _destination_account_id: Option<String>,
    _amount: Option<AnyNumeric>,
) -> Uuid {
    crate::store::refuse_older_sql("its ctel_capture_lien takes three arguments")
}

/// Gives a lien's funds back to the available balance.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn ctel_release_lien(lien_id: Option<Uuid>, reason: default!(Option<String>, "NULL")) {
    refused("ctel_release_lien", move || {
        let lien_id = required(lien_id, "lien_id")?;
        super::security::refuse_foreign_lien("ctel_release_lien", lien_id);
        checks::description(reason.as_deref(), "reason")?;
        holds::release(lien_id, reason.as_deref(), &client_context())
    })
}

/// Moves up to what the lien still holds (all of it by default) to `destination_account_id`,
/// its entries carrying `reference`. With `final` (the default) any remainder is released;
/// without it the lien stays active for later captures, until one takes all it holds.
/// Returns the posting id.
///
/// Its SQL declaration is in `sql/liens.sql`: its last argument is named `final`, a word Rust
/// reserves.
#[pg_extern(sql = false)]
fn ctel_capture_lien_partly(
    lien_id: Option<Uuid>,
    destination_account_id: Option<String>,
    amount: Option<AnyNumeric>,
    reference: Option<String>,
    last: Option<bool>,
) -> Uuid {
    refused("ctel_capture_lien", move || {
        let lien_id = required(lien_id, "lien_id")?;
        super::security::refuse_foreign_lien("ctel_capture_lien", lien_id);
        let destination =
            AccountId::parse(&required(destination_account_id, "destination_account_id")?)?;
        let last = required(last, "final")?;
        if let Some(reference) = &reference {
            checks::reference(reference)?;
        }
        let amount = amount.map(|amount| amount.to_string());
        let asked = holds::Capture {
            destination: &destination,
            amount: amount.as_deref(),
            reference: reference.as_deref(),
            last,
        };
        holds::capture(lien_id, &asked, &client_context())
    })
}
