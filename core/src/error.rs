//! The one error enum of `cte_ctel` and its SQLSTATE table.
//!
//! Each variant is an operating error: a reason a call is refused, documented in
//! `docs/errors.md` with its own SQLSTATE. Every code is in class `L0`, which PostgreSQL does not
//! use (its classes are listed in `errcodes.txt`; `L` is in the implementation-defined range), so
//! a driver never mistakes a refusal for one of PostgreSQL's own errors ("undefined table" for an
//! unknown event). Codes are numbered in the order reasons were added, are stable, and are never
//! reused for another reason. Programmer errors (broken invariants) are `assert!`s,
//! not variants. `sqlstate()` is an exhaustive match, so a new variant does not compile until it
//! has a code; a unit test checks that no two reasons share one and that the docs list them all.

use thiserror::Error;

/// The catalog as one table (see `CteError`): `$(#[$attr])* Variant { fields } = ("L0nnn",
/// "reason")`, in code order.
macro_rules! catalog {
    ($($(#[$attr:meta])* $variant:ident { $($field:ident: $ty:ty),* $(,)? } = ($code:literal, $reason:literal),)+) => {
        /// Why a call was refused. The message names the offending value.
        #[derive(Debug, Clone, PartialEq, Eq, Error)]
        pub enum CteError {
            $($(#[$attr])* $variant { $($field: $ty),* },)+
        }

        /// Every reason's SQLSTATE and name, in code order (`index()` is a position here).
        pub const CATALOG: &[(&str, &str)] = &[$(($code, $reason)),+];

        /// Number of variants of [`CteError`]; `CteError::index` maps each to one of
        /// `0..VARIANT_COUNT`.
        pub const VARIANT_COUNT: usize = CATALOG.len();

        impl CteError {
            /// The SQLSTATE raised for this reason: class `L0`, one code per reason; see
            /// `docs/errors.md`.
            pub fn sqlstate(&self) -> &'static str {
                match self {
                    $(CteError::$variant { .. } => $code,)+
                }
            }

            /// The reason's name in the error catalog (`docs/errors.md`).
            pub fn reason(&self) -> &'static str {
                match self {
                    $(CteError::$variant { .. } => $reason,)+
                }
            }

            /// This variant's position in `0..VARIANT_COUNT`, so tests can prove they cover
            /// every one.
            pub fn index(&self) -> usize {
                let code = self.sqlstate();
                match CATALOG.iter().position(|(listed, _)| *listed == code) {
                    Some(index) => index,
                    None => panic!("every variant's code is in the catalog: {code}"),
                }
            }
        }
    };
}

// The catalog, one table: each reason is written once, with its message, its SQLSTATE and its
// name; `catalog!` makes the enum, `sqlstate()`, `reason()`, `index()`, `CATALOG` and
// `VARIANT_COUNT` from it, so nothing is kept in step by hand.
catalog! {
    #[error("argument {argument} must not be NULL")]
    NullArgument { argument: &'static str } = ("L0001", "null_argument"),

    #[error("amount {text:?} is not a number")]
    AmountMalformed { text: String } = ("L0002", "amount_malformed"),

    #[error("amount {text} is not a finite number")]
    AmountNotFinite { text: String } = ("L0003", "amount_not_finite"),

    #[error("amount {amount} must be greater than zero")]
    AmountNotPositive { amount: String } = ("L0004", "amount_not_positive"),

    #[error("amount {amount} has {decimals} decimals; {currency} allows {scale}")]
    AmountScaleExceeded { amount: String, decimals: u32, currency: String, scale: u32 } = ("L0005", "amount_scale_exceeded"),

    #[error("amount {amount} is too large: at most {integer_digits_max} digits before the point")]
    AmountTooLarge { amount: String, integer_digits_max: u32 } = ("L0006", "amount_too_large"),

    #[error("{what} is {bytes} bytes long; at most {bytes_max} are allowed")]
    TextTooLong { what: &'static str, bytes: usize, bytes_max: usize } = ("L0007", "text_too_long"),

    #[error("{what} {value:?} is not valid: {why}")]
    IdentifierInvalid { what: &'static str, value: String, why: &'static str } = ("L0008", "identifier_invalid"),

    #[error("currency scale {scale} is not valid: it must be between 0 and {scale_max}")]
    CurrencyScaleInvalid { scale: i64, scale_max: u32 } = ("L0009", "currency_scale_invalid"),

    #[error("currency list is not valid: {why}")]
    CurrencyListInvalid { why: String } = ("L0010", "currency_list_invalid"),

    #[error("metadata is not valid: {why}")]
    MetadataInvalid { why: &'static str } = ("L0011", "metadata_invalid"),

    #[error("source and destination are the same account {account_id:?}")]
    SameAccount { account_id: String } = ("L0012", "same_account"),

    #[error("{what} is {value}; the limit is {limit}")]
    LimitExceeded { what: &'static str, value: usize, limit: usize } = ("L0013", "limit_exceeded"),

    #[error("currency {currency:?} is not registered")]
    CurrencyUnknown { currency: String } = ("L0014", "currency_unknown"),

    #[error("currency {currency} is already registered with scale {scale_registered}")]
    CurrencyExists { currency: String, scale_registered: u32, scale_requested: u32 } = ("L0015", "currency_exists"),

    #[error("account {account_id:?} does not exist")]
    AccountUnknown { account_id: String } = ("L0016", "account_unknown"),

    #[error("account {account_id:?} already exists")]
    AccountExists { account_id: String } = ("L0017", "account_exists"),

    #[error("account {account_id:?} does not hold currency {currency}")]
    CurrencyNotHeld { account_id: String, currency: String } = ("L0018", "currency_not_held"),

    #[error("account {account_id:?} is a system account and cannot be used here")]
    SystemAccountRefused { account_id: String } = ("L0019", "system_account_refused"),

    #[error(
        "insufficient funds in {account_id:?}: {available} {currency} available, {amount} needed"
    )]
    InsufficientFunds { account_id: String, currency: String, available: String, amount: String } = ("L0020", "insufficient_funds"),

    #[error("journal entries are append-only: {operation} is not allowed")]
    JournalAppendOnly { operation: String } = ("L0021", "journal_append_only"),

    #[error("exchange rate {rate} is not valid: {why}")]
    RateInvalid { rate: String, why: &'static str } = ("L0022", "rate_invalid"),

    #[error("{what} is {from}: cannot {input} it")]
    TransitionNotAllowed { what: &'static str, from: &'static str, input: &'static str } = ("L0023", "transition_not_allowed"),

    #[error("event {event_id} does not exist")]
    EventUnknown { event_id: String } = ("L0024", "event_unknown"),

    #[error("transaction {transaction_id} does not exist")]
    TransactionUnknown { transaction_id: String } = ("L0025", "transaction_unknown"),

    #[error("transaction type {step_type:?} is not registered")]
    StepTypeUnknown { step_type: String } = ("L0026", "type_unknown"),

    #[error("payload of {step_type} is not valid: {why}")]
    PayloadInvalid { step_type: String, why: String } = ("L0027", "payload_invalid"),

    /// `held`: what the key names (an event called "x", a lien of 5.00 USD on "alice");
    /// `requested`: what this call asked for, in the same words.
    /// `original`: the id of what the key names (an event, a lien, a posting), for the HINT.
    #[error("idempotency key {key:?} already names {held}, not {requested}")]
    IdempotencyConflict { key: String, held: String, requested: String, original: String } = ("L0028", "idempotency_conflict"),

    #[error("reference {reference:?} is already used by a {step_type} transaction of {held_by}")]
    DuplicateReference { step_type: String, reference: String, held_by: String } = ("L0029", "duplicate_reference"),

    /// `fix`: how to write or register it so that it may run (the HINT).
    #[error("executor for {step_type:?} is not valid: {why}")]
    ExecutorInvalid { step_type: String, why: String, fix: &'static str } = ("L0030", "executor_invalid"),

    #[error("event {event_id} already has a transaction with order {order}")]
    OrderTaken { event_id: String, order: i64 } = ("L0031", "order_taken"),

    #[error(
        "timeout {timeout} is not valid: it must be whole milliseconds, from 1 millisecond to \
         {timeout_max}"
    )]
    TimeoutInvalid { timeout: String, timeout_max: &'static str } = ("L0032", "timeout_invalid"),

    /// `value` is the offending value as text (a number, or a time such as `infinity`);
    /// `bounds` says what it must be ("between 1 and 100", "at most 3653 days from now"), in
    /// words that hold on any day: never a count computed from the clock.
    #[error("{argument} is {value}; it must be {bounds}")]
    ArgumentOutOfRange { argument: &'static str, value: String, bounds: String } = ("L0033", "argument_out_of_range"),

    #[error("lien {lien_id} does not exist")]
    LienUnknown { lien_id: String } = ("L0034", "lien_unknown"),

    #[error("capture of {amount} exceeds the {held} the lien holds")]
    CaptureExceedsLien { amount: String, held: String } = ("L0035", "capture_exceeds_lien"),

    #[error("expires_at {expires_at} is not in the future")]
    ExpiryInvalid { expires_at: String } = ("L0036", "expiry_invalid"),

    #[error("account {account_id:?} is frozen: it takes no new debit and no new lien")]
    AccountFrozen { account_id: String } = ("L0037", "account_frozen"),

    #[error("account {account_id:?} is closed: it takes nothing")]
    AccountClosed { account_id: String } = ("L0038", "account_closed"),

    #[error(
        "floor {floor} {currency} is above the available balance {available} of {account_id:?}"
    )]
    FloorAboveAvailable { account_id: String, currency: String, floor: String, available: String } = ("L0039", "floor_above_available"),

    #[error("account {account_id:?} cannot be closed: {why}")]
    AccountNotEmpty { account_id: String, why: String } = ("L0040", "account_not_empty"),

    #[error("refund of {amount} exceeds what is left to refund of event {event_id}: {left}")]
    RefundExceedsEvent { event_id: String, amount: String, left: String } = ("L0041", "refund_exceeds_event"),

    #[error("event {event_id} cannot be refunded in part: {why}")]
    RefundPartialUnsupported { event_id: String, why: &'static str } = ("L0042", "refund_partial_unsupported"),

    #[error("{function} needs {needs}: {why}")]
    IsolationUnsupported { function: &'static str, needs: &'static str, why: &'static str } = ("L0043", "isolation_unsupported"),

    /// 0.3.0 (SPEC §10): a report or a lease extension under a lease that has expired or was
    /// taken over, or without the token of the lease that is held.
    #[error("the lease on transaction {transaction_id} does not hold: {why}")]
    LeaseExpired { transaction_id: String, why: String } = ("L0044", "lease_expired"),
}

/// The SQLSTATE class of every refusal. PostgreSQL's classes (`errcodes.txt`) do not include it;
/// pg_test `06_error_catalog` checks that against the server's own list.
pub const SQLSTATE_CLASS: &str = "L0";

impl CteError {
    /// `argument_out_of_range` for a number that must lie between `min` and `max` (inclusive).
    pub fn out_of_range(argument: &'static str, value: i64, min: i64, max: i64) -> CteError {
        assert!(min <= max, "a range's bounds are in order");
        assert!(!(min..=max).contains(&value), "only a value outside its range is refused");
        let bounds = format!("between {min} and {max}");
        CteError::ArgumentOutOfRange { argument, value: value.to_string(), bounds }
    }

    /// This refusal as told to a role read tenancy limits (SPEC §12): a key or a reference is
    /// one namespace for every role, so what holds it (an event's name and id, a lien's amount
    /// and account) is withheld; the reason and its code stay.
    #[must_use]
    pub fn withholding_holder(self) -> CteError {
        const WITHHELD: &str = "a request whose details read tenancy withholds";
        let sqlstate = self.sqlstate();
        let withheld = match self {
            CteError::IdempotencyConflict { key, requested, .. } => CteError::IdempotencyConflict {
                key,
                held: WITHHELD.into(),
                requested,
                original: WITHHELD.into(),
            },
            CteError::DuplicateReference { step_type, reference, .. } => {
                CteError::DuplicateReference { step_type, reference, held_by: WITHHELD.into() }
            }
            other => other,
        };
        // Only the details go: a driver still sees the same refusal.
        assert_eq!(withheld.sqlstate(), sqlstate, "withholding keeps the reason's code");
        withheld
    }

    /// A hint for the caller on how to get past this refusal, where there is a useful one.
    pub fn hint(&self) -> Option<String> {
        if let CteError::IdempotencyConflict { original, .. } = self {
            return Some(format!(
                "the key names {original}; a replay must repeat its request exactly, and a new \
                 request takes a new key"
            ));
        }
        if let CteError::ExecutorInvalid { fix, .. } = self {
            return Some(fix.to_string());
        }
        self.hint_fixed().map(str::to_string)
    }

    /// The HINTs that name no value.
    fn hint_fixed(&self) -> Option<&'static str> {
        match self {
            CteError::AmountScaleExceeded { .. } => {
                Some("amounts are never rounded: pass the amount in the currency's own scale")
            }
            CteError::CurrencyUnknown { .. } => Some("register it with cte_create_currency"),
            CteError::IdentifierInvalid { what: "account id", .. } => Some(
                "account ids are printable text without surrounding spaces, not starting with '@'",
            ),
            CteError::InsufficientFunds { .. } => {
                Some("available balance is the posted balance less active liens")
            }
            CteError::JournalAppendOnly { .. } => Some("correct a posting by posting its reversal"),
            CteError::StepTypeUnknown { .. } => Some(
                "built-in types are wallet.transfer, wallet.deposit, wallet.withdrawal, \
                 wallet.exchange, batch.operation and external; add others with \
                 cte_register_executor",
            ),
            CteError::IdempotencyConflict { .. } => None, // hint() names the original
            CteError::AccountFrozen { .. } => Some("cte_unfreeze_account lifts the freeze"),
            CteError::FloorAboveAvailable { .. } => {
                Some("a floor may not be above what the balance can spend now")
            }
            CteError::AccountNotEmpty { .. } => Some(
                "an account is closed at zero balance with no active lien and no unfinished event",
            ),
            CteError::NullArgument { .. }
            | CteError::AmountMalformed { .. }
            | CteError::AmountNotFinite { .. }
            | CteError::AmountNotPositive { .. }
            | CteError::AmountTooLarge { .. }
            | CteError::TextTooLong { .. }
            | CteError::CurrencyScaleInvalid { .. }
            | CteError::CurrencyListInvalid { .. }
            | CteError::MetadataInvalid { .. }
            | CteError::SameAccount { .. }
            | CteError::LimitExceeded { .. }
            | CteError::CurrencyExists { .. }
            | CteError::AccountUnknown { .. }
            | CteError::AccountExists { .. }
            | CteError::CurrencyNotHeld { .. }
            | CteError::SystemAccountRefused { .. }
            | CteError::RateInvalid { .. }
            | CteError::TransitionNotAllowed { .. }
            | CteError::EventUnknown { .. }
            | CteError::TransactionUnknown { .. }
            | CteError::PayloadInvalid { .. }
            | CteError::DuplicateReference { .. }
            | CteError::ExecutorInvalid { .. }
            | CteError::OrderTaken { .. }
            | CteError::TimeoutInvalid { .. }
            | CteError::ArgumentOutOfRange { .. }
            | CteError::LienUnknown { .. }
            | CteError::CaptureExceedsLien { .. }
            | CteError::ExpiryInvalid { .. }
            | CteError::AccountClosed { .. }
            | CteError::RefundExceedsEvent { .. }
            | CteError::RefundPartialUnsupported { .. }
            | CteError::IdentifierInvalid { .. } => None,
            CteError::IsolationUnsupported { .. } => {
                Some("call it in a transaction of its own, at the default isolation level")
            }
            CteError::LeaseExpired { .. } => Some(
                "claim the step again (cte_claim_steps); another worker may have taken it over",
            ),
        }
    }

    /// One example of every variant, for catalog tests.
    pub fn examples() -> Vec<CteError> {
        let text = || "x".to_string();
        vec![
            CteError::NullArgument { argument: "amount" },
            CteError::AmountMalformed { text: text() },
            CteError::AmountNotFinite { text: "NaN".into() },
            CteError::AmountNotPositive { amount: "0".into() },
            CteError::AmountScaleExceeded {
                amount: "10.001".into(),
                decimals: 3,
                currency: "USD".into(),
                scale: 2,
            },
            CteError::AmountTooLarge { amount: text(), integer_digits_max: 16 },
            CteError::TextTooLong { what: "account id", bytes: 65, bytes_max: 64 },
            CteError::IdentifierInvalid { what: "account id", value: text(), why: "empty" },
            CteError::CurrencyScaleInvalid { scale: 99, scale_max: 12 },
            CteError::CurrencyListInvalid { why: text() },
            CteError::MetadataInvalid { why: "not an object" },
            CteError::SameAccount { account_id: text() },
            CteError::LimitExceeded { what: "currencies", value: 33, limit: 32 },
            CteError::CurrencyUnknown { currency: text() },
            CteError::CurrencyExists { currency: text(), scale_registered: 2, scale_requested: 3 },
            CteError::AccountUnknown { account_id: text() },
            CteError::AccountExists { account_id: text() },
            CteError::CurrencyNotHeld { account_id: text(), currency: text() },
            CteError::SystemAccountRefused { account_id: text() },
            CteError::InsufficientFunds {
                account_id: text(),
                currency: text(),
                available: "0".into(),
                amount: "1".into(),
            },
            CteError::JournalAppendOnly { operation: "UPDATE".into() },
            CteError::RateInvalid { rate: "0".into(), why: "a rate must be greater than zero" },
            CteError::TransitionNotAllowed { what: "event", from: "completed", input: "start" },
            CteError::EventUnknown { event_id: text() },
            CteError::TransactionUnknown { transaction_id: text() },
            CteError::StepTypeUnknown { step_type: text() },
            CteError::PayloadInvalid { step_type: text(), why: text() },
            CteError::IdempotencyConflict {
                key: text(),
                held: text(),
                requested: text(),
                original: text(),
            },
            CteError::DuplicateReference { step_type: text(), reference: text(), held_by: text() },
            CteError::ExecutorInvalid { step_type: text(), why: text(), fix: "fix" },
            CteError::OrderTaken { event_id: text(), order: 1 },
            CteError::TimeoutInvalid { timeout: text(), timeout_max: "30 days" },
            CteError::out_of_range("max_attempts", 0, 1, 100),
            CteError::LienUnknown { lien_id: text() },
            CteError::CaptureExceedsLien { amount: "2".into(), held: "1".into() },
            CteError::ExpiryInvalid { expires_at: text() },
            CteError::AccountFrozen { account_id: text() },
            CteError::AccountClosed { account_id: text() },
            CteError::FloorAboveAvailable {
                account_id: text(),
                currency: "USD".into(),
                floor: "10".into(),
                available: "5".into(),
            },
            CteError::AccountNotEmpty { account_id: text(), why: text() },
            CteError::RefundExceedsEvent { event_id: text(), amount: "2".into(), left: "1".into() },
            CteError::RefundPartialUnsupported { event_id: text(), why: "it posted twice" },
            CteError::IsolationUnsupported {
                function: "cte_ledger_digest",
                needs: "a READ COMMITTED transaction",
                why: "it waits for the journal's writers, then reads what they committed",
            },
            CteError::LeaseExpired { transaction_id: text(), why: text() },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn examples_cover_every_variant_once() {
        let indexes: Vec<usize> = CteError::examples().iter().map(CteError::index).collect();
        let expected: Vec<usize> = (0..VARIANT_COUNT).collect();
        assert_eq!(indexes, expected);
    }

    #[test]
    fn withholding_a_holder_keeps_the_reason_and_drops_what_holds_it() {
        for error in CteError::examples() {
            let (code, reason, text) = (error.sqlstate(), error.reason(), error.to_string());
            let names_a_holder = matches!(
                error,
                CteError::IdempotencyConflict { .. } | CteError::DuplicateReference { .. }
            );
            let withheld = error.withholding_holder();
            assert_eq!((withheld.sqlstate(), withheld.reason()), (code, reason));
            assert_eq!(withheld.to_string() != text, names_a_holder, "{text}");
            if names_a_holder {
                let told = format!("{withheld} {}", withheld.hint().unwrap_or_default());
                assert!(told.contains("withholds"), "{told}");
            }
        }
    }

    #[test]
    fn every_reason_has_its_own_code_and_name() {
        let examples = CteError::examples();
        let codes: BTreeSet<&str> = examples.iter().map(CteError::sqlstate).collect();
        let reasons: BTreeSet<&str> = examples.iter().map(CteError::reason).collect();
        assert_eq!(codes.len(), VARIANT_COUNT);
        assert_eq!(reasons.len(), VARIANT_COUNT);
    }

    #[test]
    fn codes_are_of_our_class_well_formed_and_numbered_in_order() {
        for (position, error) in CteError::examples().iter().enumerate() {
            let code = error.sqlstate();
            assert_eq!(code.len(), 5, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()), "{code}");
            assert_eq!(&code[..2], SQLSTATE_CLASS, "{code}");
            // Stable numbers: a reason's code is its place in the order reasons were added.
            assert_eq!(code[2..].parse::<usize>().ok(), Some(position + 1), "{code}");
        }
    }

    #[test]
    fn the_catalog_in_the_docs_lists_every_reason_with_its_code() {
        let catalog = include_str!("../../docs/errors.md");
        for error in CteError::examples() {
            let row = format!("| `{}` | `{}` |", error.reason(), error.sqlstate());
            assert!(catalog.contains(&row), "docs/errors.md lacks the row {row}");
        }
        let rows = catalog.lines().filter(|line| line.starts_with("| `")).count();
        assert_eq!(rows, VARIANT_COUNT, "docs/errors.md lists reasons CteError does not have");
    }

    #[test]
    fn messages_name_the_offending_value() {
        let error = CteError::AmountScaleExceeded {
            amount: "10.001".into(),
            decimals: 3,
            currency: "USD".into(),
            scale: 2,
        };
        assert_eq!(error.to_string(), "amount 10.001 has 3 decimals; USD allows 2");
    }
}
