//! Refusal reasons, one per row of cte_ctel's error catalog. GENERATED: do not edit.
//!
//! Made by `cargo run -p cte_ctel_client --bin generate_errors -- DSN` from
//! `cte_ctel.cte_error_catalog()`; `tests/errors.rs` checks it against the live catalog.

/// Why the ledger refused a call: a variant per reason of the catalog, then `PermissionDenied`
/// (42501, outside the catalog) and `Unknown` (a reason this client does not know yet).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// L0001 null_argument, e.g. argument amount must not be NULL
    NullArgument,
    /// L0002 amount_malformed, e.g. amount "x" is not a number
    AmountMalformed,
    /// L0003 amount_not_finite, e.g. amount NaN is not a finite number
    AmountNotFinite,
    /// L0004 amount_not_positive, e.g. amount 0 must be greater than zero
    AmountNotPositive,
    /// L0005 amount_scale_exceeded, e.g. amount 10.001 has 3 decimals; USD allows 2
    AmountScaleExceeded,
    /// L0006 amount_too_large, e.g. amount x is too large: at most 16 digits before the point
    AmountTooLarge,
    /// L0007 text_too_long, e.g. account id is 65 bytes long; at most 64 are allowed
    TextTooLong,
    /// L0008 identifier_invalid, e.g. account id "x" is not valid: empty
    IdentifierInvalid,
    /// L0009 currency_scale_invalid, e.g. currency scale 99 is not valid: it must be between 0 and
    /// 12
    CurrencyScaleInvalid,
    /// L0010 currency_list_invalid, e.g. currency list is not valid: x
    CurrencyListInvalid,
    /// L0011 metadata_invalid, e.g. metadata is not valid: not an object
    MetadataInvalid,
    /// L0012 same_account, e.g. source and destination are the same account "x"
    SameAccount,
    /// L0013 limit_exceeded, e.g. currencies is 33; the limit is 32
    LimitExceeded,
    /// L0014 currency_unknown, e.g. currency "x" is not registered
    CurrencyUnknown,
    /// L0015 currency_exists, e.g. currency x is already registered with scale 2
    CurrencyExists,
    /// L0016 account_unknown, e.g. account "x" does not exist
    AccountUnknown,
    /// L0017 account_exists, e.g. account "x" already exists
    AccountExists,
    /// L0018 currency_not_held, e.g. account "x" does not hold currency x
    CurrencyNotHeld,
    /// L0019 system_account_refused, e.g. account "x" is a system account and cannot be used here
    SystemAccountRefused,
    /// L0020 insufficient_funds, e.g. insufficient funds in "x": 0 x available, 1 needed
    InsufficientFunds,
    /// L0021 journal_append_only, e.g. journal entries are append-only: UPDATE is not allowed
    JournalAppendOnly,
    /// L0022 rate_invalid, e.g. exchange rate 0 is not valid: a rate must be greater than zero
    RateInvalid,
    /// L0023 transition_not_allowed, e.g. event is completed: cannot start it
    TransitionNotAllowed,
    /// L0024 event_unknown, e.g. event x does not exist
    EventUnknown,
    /// L0025 transaction_unknown, e.g. transaction x does not exist
    TransactionUnknown,
    /// L0026 type_unknown, e.g. transaction type "x" is not registered
    TypeUnknown,
    /// L0027 payload_invalid, e.g. payload of x is not valid: x
    PayloadInvalid,
    /// L0028 idempotency_conflict, e.g. idempotency key "x" already names x, not x
    IdempotencyConflict,
    /// L0029 duplicate_reference, e.g. reference "x" is already used by a x transaction of x
    DuplicateReference,
    /// L0030 executor_invalid, e.g. executor for "x" is not valid: x
    ExecutorInvalid,
    /// L0031 order_taken, e.g. event x already has a transaction with order 1
    OrderTaken,
    /// L0032 timeout_invalid, e.g. timeout x is not valid: it must be whole milliseconds, from 1
    /// millisecond to 30 days
    TimeoutInvalid,
    /// L0033 argument_out_of_range, e.g. max_attempts is 0; it must be between 1 and 100
    ArgumentOutOfRange,
    /// L0034 lien_unknown, e.g. lien x does not exist
    LienUnknown,
    /// L0035 capture_exceeds_lien, e.g. capture of 2 exceeds the 1 the lien holds
    CaptureExceedsLien,
    /// L0036 expiry_invalid, e.g. expires_at x is not in the future
    ExpiryInvalid,
    /// L0037 account_frozen, e.g. account "x" is frozen: it takes no new debit and no new lien
    AccountFrozen,
    /// L0038 account_closed, e.g. account "x" is closed: it takes nothing
    AccountClosed,
    /// L0039 floor_above_available, e.g. floor 10 USD is above the available balance 5 of "x"
    FloorAboveAvailable,
    /// L0040 account_not_empty, e.g. account "x" cannot be closed: x
    AccountNotEmpty,
    /// L0041 refund_exceeds_event, e.g. refund of 2 exceeds what is left to refund of event x: 1
    RefundExceedsEvent,
    /// L0042 refund_partial_unsupported, e.g. event x cannot be refunded in part: it posted twice
    RefundPartialUnsupported,
    /// L0043 isolation_unsupported, e.g. cte_ledger_digest needs a READ COMMITTED transaction: it
    /// waits for the journal's writers, then reads what they committed
    IsolationUnsupported,
    /// L0044 lease_expired, e.g. the lease on transaction x does not hold: x
    LeaseExpired,
    /// 42501: the role may not do this (outside the catalog).
    PermissionDenied,
    /// A refusal this client does not know (a newer server): the reason its DETAIL names.
    Unknown(String),
}

/// The catalog: (reason, SQLSTATE, the reason's name), in SQLSTATE order.
pub static CATALOG: &[(Reason, &str, &str)] = &[
    (Reason::NullArgument, "L0001", "null_argument"),
    (Reason::AmountMalformed, "L0002", "amount_malformed"),
    (Reason::AmountNotFinite, "L0003", "amount_not_finite"),
    (Reason::AmountNotPositive, "L0004", "amount_not_positive"),
    (Reason::AmountScaleExceeded, "L0005", "amount_scale_exceeded"),
    (Reason::AmountTooLarge, "L0006", "amount_too_large"),
    (Reason::TextTooLong, "L0007", "text_too_long"),
    (Reason::IdentifierInvalid, "L0008", "identifier_invalid"),
    (Reason::CurrencyScaleInvalid, "L0009", "currency_scale_invalid"),
    (Reason::CurrencyListInvalid, "L0010", "currency_list_invalid"),
    (Reason::MetadataInvalid, "L0011", "metadata_invalid"),
    (Reason::SameAccount, "L0012", "same_account"),
    (Reason::LimitExceeded, "L0013", "limit_exceeded"),
    (Reason::CurrencyUnknown, "L0014", "currency_unknown"),
    (Reason::CurrencyExists, "L0015", "currency_exists"),
    (Reason::AccountUnknown, "L0016", "account_unknown"),
    (Reason::AccountExists, "L0017", "account_exists"),
    (Reason::CurrencyNotHeld, "L0018", "currency_not_held"),
    (Reason::SystemAccountRefused, "L0019", "system_account_refused"),
    (Reason::InsufficientFunds, "L0020", "insufficient_funds"),
    (Reason::JournalAppendOnly, "L0021", "journal_append_only"),
    (Reason::RateInvalid, "L0022", "rate_invalid"),
    (Reason::TransitionNotAllowed, "L0023", "transition_not_allowed"),
    (Reason::EventUnknown, "L0024", "event_unknown"),
    (Reason::TransactionUnknown, "L0025", "transaction_unknown"),
    (Reason::TypeUnknown, "L0026", "type_unknown"),
    (Reason::PayloadInvalid, "L0027", "payload_invalid"),
    (Reason::IdempotencyConflict, "L0028", "idempotency_conflict"),
    (Reason::DuplicateReference, "L0029", "duplicate_reference"),
    (Reason::ExecutorInvalid, "L0030", "executor_invalid"),
    (Reason::OrderTaken, "L0031", "order_taken"),
    (Reason::TimeoutInvalid, "L0032", "timeout_invalid"),
    (Reason::ArgumentOutOfRange, "L0033", "argument_out_of_range"),
    (Reason::LienUnknown, "L0034", "lien_unknown"),
    (Reason::CaptureExceedsLien, "L0035", "capture_exceeds_lien"),
    (Reason::ExpiryInvalid, "L0036", "expiry_invalid"),
    (Reason::AccountFrozen, "L0037", "account_frozen"),
    (Reason::AccountClosed, "L0038", "account_closed"),
    (Reason::FloorAboveAvailable, "L0039", "floor_above_available"),
    (Reason::AccountNotEmpty, "L0040", "account_not_empty"),
    (Reason::RefundExceedsEvent, "L0041", "refund_exceeds_event"),
    (Reason::RefundPartialUnsupported, "L0042", "refund_partial_unsupported"),
    (Reason::IsolationUnsupported, "L0043", "isolation_unsupported"),
    (Reason::LeaseExpired, "L0044", "lease_expired"),
];

impl Reason {
    /// The reason's name as the catalog and the DETAIL spell it.
    pub fn name(&self) -> &str {
        match self {
            Reason::NullArgument => "null_argument",
            Reason::AmountMalformed => "amount_malformed",
            Reason::AmountNotFinite => "amount_not_finite",
            Reason::AmountNotPositive => "amount_not_positive",
            Reason::AmountScaleExceeded => "amount_scale_exceeded",
            Reason::AmountTooLarge => "amount_too_large",
            Reason::TextTooLong => "text_too_long",
            Reason::IdentifierInvalid => "identifier_invalid",
            Reason::CurrencyScaleInvalid => "currency_scale_invalid",
            Reason::CurrencyListInvalid => "currency_list_invalid",
            Reason::MetadataInvalid => "metadata_invalid",
            Reason::SameAccount => "same_account",
            Reason::LimitExceeded => "limit_exceeded",
            Reason::CurrencyUnknown => "currency_unknown",
            Reason::CurrencyExists => "currency_exists",
            Reason::AccountUnknown => "account_unknown",
            Reason::AccountExists => "account_exists",
            Reason::CurrencyNotHeld => "currency_not_held",
            Reason::SystemAccountRefused => "system_account_refused",
            Reason::InsufficientFunds => "insufficient_funds",
            Reason::JournalAppendOnly => "journal_append_only",
            Reason::RateInvalid => "rate_invalid",
            Reason::TransitionNotAllowed => "transition_not_allowed",
            Reason::EventUnknown => "event_unknown",
            Reason::TransactionUnknown => "transaction_unknown",
            Reason::TypeUnknown => "type_unknown",
            Reason::PayloadInvalid => "payload_invalid",
            Reason::IdempotencyConflict => "idempotency_conflict",
            Reason::DuplicateReference => "duplicate_reference",
            Reason::ExecutorInvalid => "executor_invalid",
            Reason::OrderTaken => "order_taken",
            Reason::TimeoutInvalid => "timeout_invalid",
            Reason::ArgumentOutOfRange => "argument_out_of_range",
            Reason::LienUnknown => "lien_unknown",
            Reason::CaptureExceedsLien => "capture_exceeds_lien",
            Reason::ExpiryInvalid => "expiry_invalid",
            Reason::AccountFrozen => "account_frozen",
            Reason::AccountClosed => "account_closed",
            Reason::FloorAboveAvailable => "floor_above_available",
            Reason::AccountNotEmpty => "account_not_empty",
            Reason::RefundExceedsEvent => "refund_exceeds_event",
            Reason::RefundPartialUnsupported => "refund_partial_unsupported",
            Reason::IsolationUnsupported => "isolation_unsupported",
            Reason::LeaseExpired => "lease_expired",
            Reason::PermissionDenied => "permission_denied",
            Reason::Unknown(name) => name,
        }
    }

    /// Its SQLSTATE; None for a reason this client does not know.
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            Reason::NullArgument => Some("L0001"),
            Reason::AmountMalformed => Some("L0002"),
            Reason::AmountNotFinite => Some("L0003"),
            Reason::AmountNotPositive => Some("L0004"),
            Reason::AmountScaleExceeded => Some("L0005"),
            Reason::AmountTooLarge => Some("L0006"),
            Reason::TextTooLong => Some("L0007"),
            Reason::IdentifierInvalid => Some("L0008"),
            Reason::CurrencyScaleInvalid => Some("L0009"),
            Reason::CurrencyListInvalid => Some("L0010"),
            Reason::MetadataInvalid => Some("L0011"),
            Reason::SameAccount => Some("L0012"),
            Reason::LimitExceeded => Some("L0013"),
            Reason::CurrencyUnknown => Some("L0014"),
            Reason::CurrencyExists => Some("L0015"),
            Reason::AccountUnknown => Some("L0016"),
            Reason::AccountExists => Some("L0017"),
            Reason::CurrencyNotHeld => Some("L0018"),
            Reason::SystemAccountRefused => Some("L0019"),
            Reason::InsufficientFunds => Some("L0020"),
            Reason::JournalAppendOnly => Some("L0021"),
            Reason::RateInvalid => Some("L0022"),
            Reason::TransitionNotAllowed => Some("L0023"),
            Reason::EventUnknown => Some("L0024"),
            Reason::TransactionUnknown => Some("L0025"),
            Reason::TypeUnknown => Some("L0026"),
            Reason::PayloadInvalid => Some("L0027"),
            Reason::IdempotencyConflict => Some("L0028"),
            Reason::DuplicateReference => Some("L0029"),
            Reason::ExecutorInvalid => Some("L0030"),
            Reason::OrderTaken => Some("L0031"),
            Reason::TimeoutInvalid => Some("L0032"),
            Reason::ArgumentOutOfRange => Some("L0033"),
            Reason::LienUnknown => Some("L0034"),
            Reason::CaptureExceedsLien => Some("L0035"),
            Reason::ExpiryInvalid => Some("L0036"),
            Reason::AccountFrozen => Some("L0037"),
            Reason::AccountClosed => Some("L0038"),
            Reason::FloorAboveAvailable => Some("L0039"),
            Reason::AccountNotEmpty => Some("L0040"),
            Reason::RefundExceedsEvent => Some("L0041"),
            Reason::RefundPartialUnsupported => Some("L0042"),
            Reason::IsolationUnsupported => Some("L0043"),
            Reason::LeaseExpired => Some("L0044"),
            Reason::PermissionDenied => Some("42501"),
            Reason::Unknown(_) => None,
        }
    }
}
