//! The calls the checker makes and the answers the server gives, and how one call is sent.
//! Values are always bound as parameters; the only text built here is JSON (step payloads and
//! event metadata) from the checker's own account names and amounts.
//!
//! What lives here must not decide what an answer should be: that is the model's job.

use std::fmt;
use std::thread;
use std::time::Duration;

use postgres::{Client, Transaction};

/// The account every checkout passes through: it holds nothing before nor after one.
pub const ESCROW: &str = "m-escrow";

/// SQLSTATEs that mean "try again" (SPEC §6): a client sends the call again.
const TRY_AGAIN: [&str; 3] = ["40001", "40P01", "55P03"];
/// How many times a call answered "try again" is sent again before that counts as its answer.
const TRY_AGAIN_MAX: usize = 20;

/// A checkout through escrow: buyer -> escrow `price`, escrow -> seller `price - fee`,
/// escrow -> market `fee`, as one event created, filled and started in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkout {
    pub key: String,
    pub buyer: String,
    pub seller: String,
    pub market: String,
    pub price: String,
    pub fee: String,
}

/// One call of the public API, with its arguments as sent (amounts as text, so that a replay
/// may spell the same amount differently: `7` and `7.00`).
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Deposit {
        account: String,
        amount: String,
        reference: String,
    },
    Transfer {
        source: String,
        destination: String,
        amount: String,
        reference: String,
    },
    CreateLien {
        account: String,
        amount: String,
        key: String,
    },
    Capture {
        lien: String,
        destination: String,
        amount: Option<String>,
        reference: String,
        last: bool,
    },
    Release {
        lien: String,
    },
    Checkout(Checkout),
    /// `cte_start_event` of an event that already ran: SPEC §6's "start twice".
    StartAgain {
        event: String,
    },
    Refund {
        event: String,
        amount: Option<String>,
        reference: String,
    },
    /// `cte_transfers`: each item a `Call::Transfer`, posted, refused or replayed on its own.
    Transfers {
        items: Vec<Call>,
    },
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The id a call returned (an event, a lien, a capture's posting).
    Id(String),
    /// A call that returns nothing returned.
    Done,
    /// A checkout: the event's id and its status after the call.
    Event { id: String, status: String },
    /// `cte_start_event` returned a status.
    Status(String),
    /// A refusal: an SQLSTATE of the extension's class L0.
    Refused(String),
    /// Any other error (23505, XX000, a timeout, …): never a right answer.
    Error { code: String, message: String },
    /// The connection broke before an answer came: the call may or may not have committed.
    Lost(String),
    /// `cte_transfers`: each item's answer (its event's id, or its refusal's SQLSTATE), and
    /// whether the server said it was replayed.
    Items(Vec<(Answer, bool)>),
}

impl Answer {
    /// The same answer, but for what an item's `replayed` says: a bulk call sent again after
    /// it committed replays what it first posted.
    pub fn same_ids(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Items(mine), Answer::Items(theirs)) => {
                mine.len() == theirs.len() && mine.iter().zip(theirs).all(|((a, _), (b, _))| a == b)
            }
            _ => self == other,
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, out: &mut fmt::Formatter) -> fmt::Result {
        let option = |value: &Option<String>| value.clone().unwrap_or_else(|| "NULL".into());
        match self {
            Call::Deposit { account, amount, reference } => {
                write!(out, "cte_deposit({account}, {amount}, USD, {reference})")
            }
            Call::Transfer { source, destination, amount, reference } => {
                write!(out, "cte_transfer({source}, {destination}, {amount}, USD, {reference})")
            }
            Call::CreateLien { account, amount, key } => {
                write!(out, "ctel_create_lien(NULL, {account}, {amount}, USD, NULL, NULL, {key})")
            }
            Call::Capture { lien, destination, amount, reference, last } => write!(
                out,
                "ctel_capture_lien({lien}, {destination}, {}, {reference}, {last})",
                option(amount)
            ),
            Call::Release { lien } => write!(out, "ctel_release_lien({lien}, 'model')"),
            Call::Checkout(c) => write!(
                out,
                "checkout {} [{} -> {ESCROW} {}, -> {} {} - {}, -> {} {}]",
                c.key, c.buyer, c.price, c.seller, c.price, c.fee, c.market, c.fee
            ),
            Call::StartAgain { event } => write!(out, "cte_start_event({event})"),
            Call::Refund { event, amount, reference } => {
                write!(out, "cte_reverse_event({event}, 'model', {}, {reference})", option(amount))
            }
            Call::Transfers { items } => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(out, "cte_transfers[{}]", items.join("; "))
            }
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, out: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Answer::Id(id) => write!(out, "{id}"),
            Answer::Done => write!(out, "done"),
            Answer::Event { id, status } => write!(out, "{id} {status}"),
            Answer::Status(status) => write!(out, "status {status}"),
            Answer::Refused(code) => write!(out, "refused {code}"),
            Answer::Error { code, message } => write!(out, "ERROR {code}: {message}"),
            Answer::Lost(message) => write!(out, "connection lost: {message}"),
            Answer::Items(items) => {
                let items: Vec<String> =
                    items
                        .iter()
                        .map(|(answer, replayed)| {
                            if *replayed {
                                format!("replayed {answer}")
                            } else {
                                answer.to_string()
                            }
                        })
                        .collect();
                write!(out, "[{}]", items.join("; "))
            }
        }
    }
}

/// A broken connection (or a server shutting down) rather than an answer to the call.
pub fn connection_lost(error: &postgres::Error) -> bool {
    match error.code() {
        None => true,
        Some(code) => {
            code.code().starts_with("57P0") || code.code().starts_with("08") || error.is_closed()
        }
    }
}

fn answer_of_error(error: &postgres::Error) -> Answer {
    if connection_lost(error) {
        return Answer::Lost(error.to_string());
    }
    let code = error.code().map(|code| code.code().to_string()).unwrap_or_default();
    if code.starts_with("L0") {
        return Answer::Refused(code);
    }
    let message = error.as_db_error().map_or(error.to_string(), |db| db.message().to_string());
    Answer::Error { code, message }
}

/// Sends a call, again while the server says "try again"; returns its answer and how many
/// times it was sent again.
pub fn send(client: &mut Client, call: &Call) -> (Answer, usize) {
    let mut again = 0;
    loop {
        let answer = send_once(client, call).unwrap_or_else(|error| answer_of_error(&error));
        let retry =
            matches!(&answer, Answer::Error { code, .. } if TRY_AGAIN.contains(&code.as_str()));
        if !retry || again == TRY_AGAIN_MAX {
            return (answer, again);
        }
        again += 1;
        thread::sleep(Duration::from_millis(5));
    }
}

fn id_of(
    client: &mut Client,
    sql: &str,
    args: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Answer, postgres::Error> {
    let row = client.query_one(sql, args)?;
    Ok(Answer::Id(row.get(0)))
}

const DEPOSIT: &str = "SELECT cte_ctel.cte_deposit($1, $2::text::numeric, 'USD', $3)::text";
const TRANSFER: &str = "SELECT cte_ctel.cte_transfer($1, $2, $3::text::numeric, 'USD', $4)::text";
const CREATE_LIEN: &str = "SELECT cte_ctel.ctel_create_lien(NULL, $1, $2::text::numeric, 'USD',
                                                          NULL, NULL, $3)::text";
const CAPTURE: &str = "SELECT cte_ctel.ctel_capture_lien($1::text::uuid, $2, $3::text::numeric,
                                                        $4, $5)::text";
const RELEASE: &str = "SELECT cte_ctel.ctel_release_lien($1::text::uuid, 'model')";
const START: &str = "SELECT cte_ctel.cte_start_event($1::text::uuid)";
const REFUND: &str = "SELECT cte_ctel.cte_reverse_event($1::text::uuid, 'model',
                                                       $2::text::numeric, $3)::text";
const CREATE_EVENT: &str = "SELECT cte_ctel.cte_create_event('checkout', NULL, '5 minutes',
                                                             $1::text::jsonb, $2)::text";
const ADD_STEP: &str = "SELECT cte_ctel.cte_add_transaction($1::text::uuid, $2, 'wallet.transfer',
                                                          $3::text::jsonb)";

fn send_once(client: &mut Client, call: &Call) -> Result<Answer, postgres::Error> {
    match call {
        Call::Deposit { account, amount, reference } => {
            id_of(client, DEPOSIT, &[account, amount, reference])
        }
        Call::Transfer { source, destination, amount, reference } => {
            id_of(client, TRANSFER, &[source, destination, amount, reference])
        }
        Call::CreateLien { account, amount, key } => {
            id_of(client, CREATE_LIEN, &[account, amount, key])
        }
        Call::Capture { lien, destination, amount, reference, last } => {
            id_of(client, CAPTURE, &[lien, destination, amount, reference, last])
        }
        Call::Release { lien } => {
            client.execute(RELEASE, &[lien])?;
            Ok(Answer::Done)
        }
        Call::Checkout(checkout) => send_checkout(client, checkout),
        Call::StartAgain { event } => {
            let row = client.query_one(START, &[event])?;
            Ok(Answer::Status(row.get(0)))
        }
        Call::Refund { event, amount, reference } => {
            id_of(client, REFUND, &[event, amount, reference])
        }
        Call::Transfers { items } => send_transfers(client, items),
    }
}

// Each item's answer, its reason as its SQLSTATE (the catalog's), in order.
const TRANSFERS: &str = "
    SELECT t.event_id::text, t.status, c.sqlstate
      FROM cte_ctel.cte_transfers($1::text::jsonb) t
      LEFT JOIN cte_ctel.cte_error_catalog() c ON c.reason = t.reason
     ORDER BY t.item";

fn send_transfers(client: &mut Client, items: &[Call]) -> Result<Answer, postgres::Error> {
    let items: Vec<String> = items
        .iter()
        .map(|item| {
            let Call::Transfer { source, destination, amount, reference } = item else {
                panic!("a bulk call's items are transfers");
            };
            let payload = transfer_payload(source, destination, &format!("{amount:?}"));
            format!(r#"{}, "reference": {reference:?}}}"#, payload.trim_end_matches('}'))
        })
        .collect();
    let rows = client.query(TRANSFERS, &[&format!("[{}]", items.join(", "))])?;
    let answers = rows
        .iter()
        .map(|row| {
            let (id, status, code): (Option<String>, String, Option<String>) =
                (row.get(0), row.get(1), row.get(2));
            match (status.as_str(), id, code) {
                ("posted", Some(id), _) => (Answer::Id(id), false),
                ("replayed", Some(id), _) => (Answer::Id(id), true),
                ("refused", None, Some(code)) => (Answer::Refused(code), false),
                (status, id, code) => (
                    Answer::Error {
                        code: "model".into(),
                        message: format!("item status {status}, event {id:?}, code {code:?}"),
                    },
                    false,
                ),
            }
        })
        .collect();
    Ok(Answer::Items(answers))
}

/// The event's metadata: the whole checkout, so that another checkout under the same key is
/// another request (SPEC §9: other metadata under an event's key is a conflict).
pub fn checkout_metadata(checkout: &Checkout) -> String {
    format!(
        r#"{{"buyer": "{}", "seller": "{}", "market": "{}", "price": "{}", "fee": "{}"}}"#,
        checkout.buyer, checkout.seller, checkout.market, checkout.price, checkout.fee
    )
}

/// The checkout's three steps: (name, source, destination, amount as JSON number text).
fn checkout_steps(
    checkout: &Checkout,
    payout: &str,
) -> [(&'static str, String, String, String); 3] {
    [
        ("pay", checkout.buyer.clone(), ESCROW.to_string(), checkout.price.clone()),
        ("payout", ESCROW.to_string(), checkout.seller.clone(), payout.to_string()),
        ("fee", ESCROW.to_string(), checkout.market.clone(), checkout.fee.clone()),
    ]
}

/// A client's retry-safe checkout: create the event under its key; if the key named an event
/// that already has steps (an earlier attempt committed), leave it alone and report its status;
/// otherwise add the steps and start it, all in one transaction.
fn send_checkout(client: &mut Client, checkout: &Checkout) -> Result<Answer, postgres::Error> {
    let payout = payout_of(checkout);
    let mut transaction = client.transaction()?;
    let row =
        transaction.query_one(CREATE_EVENT, &[&checkout_metadata(checkout), &checkout.key])?;
    let id: String = row.get(0);
    let (status, steps) = event_status(&mut transaction, &id)?;
    if status != "created" || steps != 0 {
        transaction.rollback()?;
        return Ok(Answer::Event { id, status });
    }
    for (name, source, destination, amount) in checkout_steps(checkout, &payout) {
        let payload = transfer_payload(&source, &destination, &amount);
        transaction.execute(ADD_STEP, &[&id, &name, &payload])?;
    }
    let row = transaction.query_one(START, &[&id])?;
    let status: String = row.get(0);
    transaction.commit()?;
    Ok(Answer::Event { id, status })
}

/// A `wallet.transfer` step's payload; the amount is a JSON number, read from its text.
fn transfer_payload(source: &str, destination: &str, amount: &str) -> String {
    let accounts =
        format!(r#""source_account_id": "{source}", "destination_account_id": "{destination}""#);
    format!(r#"{{{accounts}, "amount": {amount}, "currency": "USD"}}"#)
}

/// What the seller gets: the price less the fee (both valid amounts of scale 2).
pub fn payout_of(checkout: &Checkout) -> String {
    let price = rust_decimal::Decimal::from_str_exact(&checkout.price);
    let fee = rust_decimal::Decimal::from_str_exact(&checkout.fee);
    let payout = match (price, fee) {
        (Ok(price), Ok(fee)) => price.checked_sub(fee),
        (Err(_), _) | (_, Err(_)) => None,
    };
    assert!(payout.is_some(), "the generator spells a checkout's amounts as numbers");
    payout.map_or(String::new(), |payout| payout.to_string())
}

fn event_status(transaction: &mut Transaction, id: &str) -> Result<(String, i64), postgres::Error> {
    let row = transaction.query_one(
        "SELECT e.status::text,
                (SELECT count(*) FROM cte_ctel.cte_transactions t WHERE t.event_id = e.id)
           FROM cte_ctel.cte_events e WHERE e.id = $1::text::uuid",
        &[&id],
    )?;
    Ok((row.get(0), row.get(1)))
}
