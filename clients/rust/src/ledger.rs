//! `Ledger`: the ledger's calls an application makes, one SQL function of schema `cte_ctel`
//! each, run on the client or transaction it was given (in that transaction; on a plain
//! `Client`, each call is its own). Amounts are `Decimal`; a refusal is [`Error::Refused`] with
//! the server's message, DETAIL and HINT. Keys (`reference`, `idempotency_key`) make a call safe
//! to send again: the same request returns the first result and changes nothing.

use std::time::{Duration, SystemTime};

use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::money;

/// A step of an event to run, as `cte_run_event` takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewStep {
    /// The step's name in its event.
    pub name: String,
    /// Its type: a built-in one (`wallet.transfer`), `external`, or a hosted type.
    pub step_type: String,
    /// Its payload, a JSON object; amounts as decimal strings ([`crate::money::to_json`]).
    pub payload: Value,
    /// A description kept with the step.
    pub description: Option<String>,
    /// How many attempts its execution gets (the server's default when None).
    pub max_attempts: Option<i32>,
}

impl NewStep {
    /// A step named `name` of type `step_type` with `payload`.
    pub fn new(name: &str, step_type: &str, payload: Value) -> NewStep {
        NewStep {
            name: name.to_owned(),
            step_type: step_type.to_owned(),
            payload,
            description: None,
            max_attempts: None,
        }
    }

    /// The same step with `description`, kept with it (`cte_transactions.description`, at
    /// most 1,024 bytes) and part of the request a replay of `run_event` compares.
    pub fn description(mut self, description: &str) -> NewStep {
        self.description = Some(description.to_owned());
        self
    }

    /// The same step with `max_attempts`.
    pub fn max_attempts(mut self, max_attempts: i32) -> NewStep {
        self.max_attempts = Some(max_attempts);
        self
    }

    fn to_json(&self) -> Value {
        let mut step = Map::new();
        step.insert("name".into(), json!(self.name));
        step.insert("type".into(), json!(self.step_type));
        step.insert("payload".into(), self.payload.clone());
        if let Some(description) = &self.description {
            step.insert("description".into(), json!(description));
        }
        if let Some(max_attempts) = self.max_attempts {
            step.insert("max_attempts".into(), json!(max_attempts));
        }
        Value::Object(step)
    }
}

/// One transfer of [`Ledger::transfers`], as `cte_transfers` takes an item.
#[derive(Clone, Debug, PartialEq)]
pub struct TransferItem {
    /// The account the money leaves.
    pub source: String,
    /// The account it goes to.
    pub destination: String,
    /// How much, in `currency`; sent as its decimal string.
    pub amount: Decimal,
    /// The currency's code.
    pub currency: String,
    /// The transfer's key: an item whose reference already names the same transfer (before the
    /// call, or by an earlier item of it) is replayed, not made again.
    pub reference: Option<String>,
    /// Its event's metadata, a JSON object.
    pub metadata: Option<Value>,
}

impl TransferItem {
    /// `amount` of `currency` from `source` to `destination`, without a key or metadata.
    pub fn new(source: &str, destination: &str, amount: Decimal, currency: &str) -> TransferItem {
        TransferItem {
            source: source.to_owned(),
            destination: destination.to_owned(),
            amount,
            currency: currency.to_owned(),
            reference: None,
            metadata: None,
        }
    }

    /// The same item with `reference` as its key.
    pub fn reference(mut self, reference: &str) -> TransferItem {
        self.reference = Some(reference.to_owned());
        self
    }

    /// The same item with `metadata` (a JSON object) for its event.
    pub fn metadata(mut self, metadata: Value) -> TransferItem {
        self.metadata = Some(metadata);
        self
    }

    /// The item's JSON object; a field left out is not sent (the server refuses any other).
    fn to_json(&self) -> Value {
        let mut item = Map::new();
        item.insert("source_account_id".into(), json!(self.source));
        item.insert("destination_account_id".into(), json!(self.destination));
        item.insert("amount".into(), money::to_json(self.amount));
        item.insert("currency".into(), json!(self.currency));
        if let Some(reference) = &self.reference {
            item.insert("reference".into(), json!(reference));
        }
        if let Some(metadata) = &self.metadata {
            item.insert("metadata".into(), metadata.clone());
        }
        Value::Object(item)
    }
}

/// What became of one item of [`Ledger::transfers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferStatus {
    /// The transfer was made.
    Posted,
    /// The item was refused and left nothing behind, its key included: sent again, it is tried
    /// again.
    Refused,
    /// Its reference already named the same transfer, which was not made again.
    Replayed,
}

/// One item's outcome of [`Ledger::transfers`], a row of `cte_transfers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferOutcome {
    /// The item's place in the call, counted from 1.
    pub item: i32,
    /// Its event (the first one, for a replay); None when it was refused.
    pub event_id: Option<Uuid>,
    /// Posted, refused or replayed.
    pub status: TransferStatus,
    /// Why it was refused: the catalog's reason name (`insufficient_funds`, ...).
    pub reason: Option<String>,
}

fn transfer_outcome(row: &Row) -> Result<TransferOutcome> {
    let status: String = row.try_get(2)?;
    let status = match status.as_str() {
        "posted" => TransferStatus::Posted,
        "refused" => TransferStatus::Refused,
        "replayed" => TransferStatus::Replayed,
        other => return Err(Error::Unexpected(format!("transfer status {other:?}"))),
    };
    Ok(TransferOutcome {
        item: row.try_get(0)?,
        event_id: row.try_get(1)?,
        status,
        reason: row.try_get(3)?,
    })
}

/// A part of a refund by legs ([`Ledger::reverse_event`]): `amount` taken back from
/// `account_id`, an account the event paid, and given back to the payer `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundLeg {
    /// The account the part is taken back from.
    pub account_id: String,
    /// How much, in the event's currency; sent as its decimal string.
    pub amount: Decimal,
    /// The payer it goes back to: required when the event has several, None when it has one.
    pub to: Option<String>,
}

impl RefundLeg {
    /// `amount` back from `account_id`, to the event's one payer.
    pub fn new(account_id: &str, amount: Decimal) -> RefundLeg {
        RefundLeg { account_id: account_id.to_owned(), amount, to: None }
    }

    /// The same leg, given back to the payer `payer`.
    pub fn to(mut self, payer: &str) -> RefundLeg {
        self.to = Some(payer.to_owned());
        self
    }

    /// The leg's JSON object, `{"account_id", "amount", "to"}` (`to` only when given).
    fn to_json(&self) -> Value {
        let mut leg = Map::new();
        leg.insert("account_id".into(), json!(self.account_id));
        leg.insert("amount".into(), money::to_json(self.amount));
        if let Some(to) = &self.to {
            leg.insert("to".into(), json!(to));
        }
        Value::Object(leg)
    }
}

/// The optional arguments of `cte_run_event`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// The event's key: the same request again is a replay.
    pub idempotency_key: Option<String>,
    /// How long the event may take (the server's 5 minutes when None).
    pub timeout: Option<Duration>,
    /// The event's metadata, a JSON object.
    pub metadata: Option<Value>,
    /// Not started before this time.
    pub not_before: Option<SystemTime>,
}

/// The optional arguments of `ctel_create_lien`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HoldOptions {
    /// The event the lien belongs to.
    pub event_id: Option<Uuid>,
    /// When the lien expires (the server's default when None).
    pub expires_at: Option<SystemTime>,
    /// The lien's metadata, a JSON object.
    pub metadata: Option<Value>,
    /// The lien's key: the same request again is a replay.
    pub idempotency_key: Option<String>,
}

/// What `run_event` returns: the event, its status after the start, and whether the call was a
/// replay of an earlier one with the same key (which changed nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRun {
    /// The event.
    pub event_id: Uuid,
    /// Its status now (`completed`, `waiting`, ...).
    pub status: String,
    /// True when the key named an earlier, identical request.
    pub replayed: bool,
}

/// The ledger's calls on one client or transaction.
pub struct Ledger<'c, C: GenericClient + Sync> {
    client: &'c C,
}

/// A `Duration` as whole milliseconds for `$n::bigint * interval '1 millisecond'`.
pub(crate) fn milliseconds(duration: Duration) -> Result<i64> {
    i64::try_from(duration.as_millis())
        .map_err(|_| Error::Unexpected(format!("{duration:?} is too long for an interval")))
}

impl<'c, C: GenericClient + Sync> Ledger<'c, C> {
    /// The ledger on `client` (a `Client` or a `Transaction`).
    pub fn new(client: &'c C) -> Self {
        Ledger { client }
    }

    /// Opens a wallet holding `currencies`; returns its id.
    pub async fn create_account(&self, account_id: &str, currencies: &[&str]) -> Result<String> {
        let sql = "SELECT cte_ctel.cte_create_account($1, $2)";
        Ok(self.client.query_one(sql, &[&account_id, &currencies]).await?.try_get(0)?)
    }

    /// Money in from outside (`@world`); returns the deposit's event.
    pub async fn deposit(
        &self,
        account_id: &str,
        amount: Decimal,
        currency: &str,
        reference: Option<&str>,
    ) -> Result<Uuid> {
        let sql = "SELECT cte_ctel.cte_deposit($1, $2, $3, $4)";
        let params: &[&(dyn ToSql + Sync)] = &[&account_id, &amount, &currency, &reference];
        Ok(self.client.query_one(sql, params).await?.try_get(0)?)
    }

    /// One transfer, posted now or refused; returns its event. `metadata` is a JSON object.
    pub async fn transfer(
        &self,
        source: &str,
        destination: &str,
        amount: Decimal,
        currency: &str,
        reference: Option<&str>,
        metadata: Option<&Value>,
    ) -> Result<Uuid> {
        let sql = "SELECT cte_ctel.cte_transfer($1, $2, $3, $4, $5, $6)";
        let params: [&(dyn ToSql + Sync); 6] =
            [&source, &destination, &amount, &currency, &reference, &metadata];
        Ok(self.client.query_one(sql, &params).await?.try_get(0)?)
    }

    /// Many transfers in one call (`cte_transfers`, at most 10,000 items), in the caller's
    /// transaction, each posted, refused or replayed on its own: a refused item undoes nothing
    /// of the others. One outcome per item, in order. An error that is not a refusal ends the
    /// whole call, nothing of it kept; with keys, sending it all again is safe.
    pub async fn transfers(&self, items: &[TransferItem]) -> Result<Vec<TransferOutcome>> {
        let items = Value::Array(items.iter().map(TransferItem::to_json).collect());
        let sql = "SELECT item, event_id, status, reason FROM cte_ctel.cte_transfers($1)";
        let rows = self.client.query(sql, &[&items]).await?;
        rows.iter().map(transfer_outcome).collect()
    }

    /// The account's balance in `currency`.
    pub async fn balance(&self, account_id: &str, currency: &str) -> Result<Decimal> {
        let sql = "SELECT cte_ctel.cte_balance($1, $2)";
        Ok(self.client.query_one(sql, &[&account_id, &currency]).await?.try_get(0)?)
    }

    /// The balance less what active liens hold.
    pub async fn available_balance(&self, account_id: &str, currency: &str) -> Result<Decimal> {
        let sql = "SELECT cte_ctel.cte_available_balance($1, $2)";
        Ok(self.client.query_one(sql, &[&account_id, &currency]).await?.try_get(0)?)
    }

    /// Creates, fills and starts an event in one call.
    pub async fn run_event(
        &self,
        name: &str,
        steps: &[NewStep],
        options: &RunOptions,
    ) -> Result<EventRun> {
        let steps = Value::Array(steps.iter().map(NewStep::to_json).collect());
        let timeout_ms = options.timeout.map(milliseconds).transpose()?;
        let sql = "SELECT event_id, status, replayed FROM cte_ctel.cte_run_event($1, $2, $3, \
                   coalesce($4::bigint * interval '1 millisecond', interval '5 minutes'), $5, $6)";
        let params: [&(dyn ToSql + Sync); 6] = [
            &name,
            &steps,
            &options.idempotency_key,
            &timeout_ms,
            &options.metadata,
            &options.not_before,
        ];
        let row = self.client.query_one(sql, &params).await?;
        Ok(EventRun {
            event_id: row.try_get(0)?,
            status: row.try_get(1)?,
            replayed: row.try_get(2)?,
        })
    }

    /// The event's status, or None when no such event is visible.
    pub async fn event_status(&self, event_id: Uuid) -> Result<Option<String>> {
        let sql = "SELECT status FROM cte_ctel.cte_events WHERE id = $1";
        let row = self.client.query_opt(sql, &[&event_id]).await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Asks the event to stop and undo what it did; returns its status.
    pub async fn cancel_event(&self, event_id: Uuid, reason: Option<&str>) -> Result<String> {
        let sql = "SELECT cte_ctel.cte_cancel_event($1, $2)";
        Ok(self.client.query_one(sql, &[&event_id, &reason]).await?.try_get(0)?)
    }

    /// A refund of a completed event; returns the refund. All that is left without `amount`
    /// or `legs`; `amount` alone, that part; `legs`, the parts they name (their sum, which
    /// `amount` must equal when given). `reference` is the refund's key.
    pub async fn reverse_event(
        &self,
        event_id: Uuid,
        reason: &str,
        amount: Option<Decimal>,
        reference: Option<&str>,
        legs: Option<&[RefundLeg]>,
    ) -> Result<Uuid> {
        let legs = legs.map(|legs| Value::Array(legs.iter().map(RefundLeg::to_json).collect()));
        let sql = "SELECT cte_ctel.cte_reverse_event($1, $2, $3, $4, $5)";
        let params: &[&(dyn ToSql + Sync)] = &[&event_id, &reason, &amount, &reference, &legs];
        Ok(self.client.query_one(sql, params).await?.try_get(0)?)
    }

    /// A lien: reserves funds on a wallet; returns the lien.
    pub async fn hold(
        &self,
        account_id: &str,
        amount: Decimal,
        currency: &str,
        options: &HoldOptions,
    ) -> Result<Uuid> {
        let sql = "SELECT cte_ctel.ctel_create_lien($1, $2, $3, $4, $5, $6, $7)";
        let params: [&(dyn ToSql + Sync); 7] = [
            &options.event_id,
            &account_id,
            &amount,
            &currency,
            &options.expires_at,
            &options.metadata,
            &options.idempotency_key,
        ];
        Ok(self.client.query_one(sql, &params).await?.try_get(0)?)
    }

    /// Moves held funds (all when `amount` is None) to `destination`; returns the posting.
    pub async fn capture(
        &self,
        lien_id: Uuid,
        destination: &str,
        amount: Option<Decimal>,
        reference: Option<&str>,
    ) -> Result<Uuid> {
        let sql = "SELECT cte_ctel.ctel_capture_lien($1, $2, $3, $4)";
        let params: &[&(dyn ToSql + Sync)] = &[&lien_id, &destination, &amount, &reference];
        Ok(self.client.query_one(sql, params).await?.try_get(0)?)
    }

    /// Releases a lien's funds.
    pub async fn release(&self, lien_id: Uuid, reason: Option<&str>) -> Result<()> {
        let sql = "SELECT cte_ctel.ctel_release_lien($1, $2)";
        self.client.execute(sql, &[&lien_id, &reason]).await?;
        Ok(())
    }

    /// (cte_admin) Registers a step type the application hosts; true when it is new.
    pub async fn register_external_type(
        &self,
        type_name: &str,
        description: Option<&str>,
    ) -> Result<bool> {
        let sql = "SELECT cte_ctel.cte_register_external_type($1, $2)";
        Ok(self.client.query_one(sql, &[&type_name, &description]).await?.try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_items_send_amounts_as_strings_and_only_the_fields_given() {
        let item = TransferItem::new("a", "b", money::parse("10.50").unwrap(), "USD");
        let plain = json!({"source_account_id": "a", "destination_account_id": "b",
                           "amount": "10.50", "currency": "USD"});
        assert_eq!(item.to_json(), plain);
        let keyed = item.reference("order-7").metadata(json!({"order": 7})).to_json();
        assert_eq!(
            (&keyed["reference"], &keyed["metadata"]),
            (&json!("order-7"), &json!({"order": 7}))
        );
    }

    #[test]
    fn refund_legs_are_account_id_amount_and_to_when_given() {
        let leg = RefundLeg::new("seller", money::parse("5.00").unwrap());
        assert_eq!(leg.to_json(), json!({"account_id": "seller", "amount": "5.00"}));
        let leg = leg.to("buyer").to_json();
        assert_eq!(leg, json!({"account_id": "seller", "amount": "5.00", "to": "buyer"}));
    }
}
