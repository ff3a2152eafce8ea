//! Every bound the extension enforces, as a named constant with its unit in the name.
//!
//! Passing one is an operating error (`CteError::LimitExceeded` or a more specific reason), never
//! a silent truncation. Relations between bounds are checked at compile time.

/// Longest account id, in bytes. Ids are keys in every balance row and journal entry, so they
/// stay short; 64 bytes holds a UUID, a ULID or a prefixed external id.
pub const ACCOUNT_ID_BYTES_MAX: usize = 64;

/// Shortest and longest currency code, in characters: ISO 4217 codes have 3; crypto tickers and
/// private units (`USDC`, `POINTS`) need a few more.
pub const CURRENCY_CODE_CHARS_MIN: usize = 3;
pub const CURRENCY_CODE_CHARS_MAX: usize = 12;

/// Most decimals a currency may have. Together with `AMOUNT_INTEGER_DIGITS_MAX` it keeps every
/// amount inside the 28 significant digits that `rust_decimal` represents exactly.
pub const CURRENCY_SCALE_MAX: u32 = 12;

/// Most digits before the decimal point of one amount (below 10^16 units of any currency).
pub const AMOUNT_INTEGER_DIGITS_MAX: u32 = 16;

/// Significant digits `rust_decimal::Decimal` holds exactly.
pub const DECIMAL_DIGITS_MAX: u32 = 28;

/// Largest exponent magnitude accepted in a JSON number's text (`1e3`), so a hostile `1e999999`
/// cannot make the parser build a huge string.
pub const AMOUNT_EXPONENT_MAX: i64 = 64;

/// Longest amount text accepted, in bytes, for the same reason.
pub const AMOUNT_TEXT_BYTES_MAX: usize = 128;

/// Most currencies one account may hold.
pub const ACCOUNT_CURRENCIES_MAX: usize = 32;

/// Largest account metadata document, in bytes of its text form.
pub const METADATA_BYTES_MAX: usize = 8 * 1024;

/// Longest posting reference, in bytes.
pub const REFERENCE_BYTES_MAX: usize = 128;

/// Most system deltas folded into the system balances by one maintenance pass.
pub const SYSTEM_DELTAS_PER_FOLD_MAX: i64 = 100_000;

const _: () = assert!(AMOUNT_INTEGER_DIGITS_MAX + CURRENCY_SCALE_MAX <= DECIMAL_DIGITS_MAX);
const _: () = assert!(CURRENCY_CODE_CHARS_MIN <= CURRENCY_CODE_CHARS_MAX);
const _: () = assert!(ACCOUNT_CURRENCIES_MAX > 0);
const _: () =
    assert!(AMOUNT_TEXT_BYTES_MAX as u32 > AMOUNT_INTEGER_DIGITS_MAX + CURRENCY_SCALE_MAX);

/// Most significant digits of an exchange rate, and most decimals. With amounts of at most 28
/// digits, `amount × rate` stays below 10^38 and is computed exactly in an `i128`.
pub const RATE_DIGITS_MAX: u32 = 10;
pub const RATE_SCALE_MAX: u32 = 18;

const _: () = assert!(DECIMAL_DIGITS_MAX + RATE_DIGITS_MAX <= 38);

/// An event's timeout when its creator does not say, in milliseconds (`cte_create_event`'s
/// default, `'5 minutes'`, and the one-step shortcuts' events).
pub const EVENT_TIMEOUT_DEFAULT_MS: i64 = 5 * 60 * 1_000;

/// How far ahead a start may be scheduled, in days (ten years): the start-by deadline counts
/// from the scheduled time and must stay a finite time.
pub const SCHEDULE_AHEAD_DAYS_MAX: i64 = 3653;

/// Legs one `wallet.split` may credit.
pub const SPLIT_LEGS_MAX: usize = 1_000;

/// Legs one partial refund may name (`cte_reverse_event(..., legs)`): one per payee.
pub const REFUND_LEGS_MAX: usize = 1_000;

/// Steps one event may have.
pub const EVENT_STEPS_MAX: usize = 1_000;

/// Largest step payload, in bytes of its stored `jsonb` form (what PostgreSQL keeps and passes;
/// a payload the ledger does not read is never printed as text): a batch of the maximum number
/// of items fits.
pub const PAYLOAD_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Largest sum of the payloads of one event's steps, in stored bytes. A drive reads the payloads of
/// the steps it runs (and plans every built-in one to lock its wallets first): this bounds what
/// one drive of the largest event can cost a backend's memory, a small multiple of it.
pub const EVENT_PAYLOAD_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Largest step result, in bytes of its JSON text: what a custom executor returns or an
/// application reports is kept on the step; a larger one fails the step (or is refused).
pub const RESULT_BYTES_MAX: usize = 1024 * 1024;

/// Liens `ctel_create_lien` may make for one event (its steps' own holds come on top, at most
/// two per step): each is locked and settled by the event's drives.
pub const EVENT_LIENS_MAX: usize = 1_000;

/// Most changes one outbox row holds (one drive of an event, or one operation). A drive of the
/// largest event changes each step's status at most four times and the event's a few times,
/// and each lien (a step holds at most two) at most twice.
pub const CHANGES_PER_ROW_MAX: usize = 16 * 1024;

/// Outbox rows one sequencer run gives positions to; the rest wait for the next run.
pub const CHANGE_ROWS_PER_SEQUENCE_MAX: i64 = 10_000;

/// Most changes one call of `cte_changes` returns.
pub const FEED_CHANGES_MAX: i64 = 10_000;

/// Entries one `cte_account_statement` page returns at most (page on with `after_entry`).
pub const STATEMENT_ROWS_MAX: i64 = 10_000;

/// Items one `batch.operation` step may hold.
pub const BATCH_ITEMS_MAX: usize = 10_000;

/// Longest event or step name, step type, idempotency key or error text kept, in bytes.
pub const NAME_BYTES_MAX: usize = 128;
pub const DESCRIPTION_BYTES_MAX: usize = 1_024;
pub const ERROR_TEXT_BYTES_MAX: usize = 2_048;

/// Most attempts a step may be given, and the default when neither the step nor the
/// `cte_ctel.retry_max_attempts` setting says otherwise.
pub const STEP_ATTEMPTS_MAX: u32 = 100;
pub const STEP_ATTEMPTS_DEFAULT: u32 = 3;

/// Events one maintenance pass resumes (due retries) or times out, so a pass stays short.
pub const EVENTS_PER_MAINTENANCE_MAX: i64 = 1_000;

/// Items (an event to time out or retry, a lien to expire) the worker handles in one committed
/// transaction: each is a subtransaction with its own, and PostgreSQL keeps only 64
/// subtransaction ids per backend in shared memory before every snapshot on the server slows.
pub const WORKER_ITEMS_PER_TRANSACTION_MAX: usize = 16;

/// Least time between two passes of the worker once it is woken: commits that come within it
/// are taken by one pass, and set the worker's latch without a signal (it is not waiting), so
/// at thousands of commits a second the worker neither runs thousands of passes nor has a
/// signal sent per commit. A change reaches the feed at most this much later.
pub const WORKER_PASS_GAP_MS: u64 = 10;

/// How long the worker's statements wait for a lock before they give up (the item is retried
/// on a later pass): it never queues behind a session that holds a row and does nothing.
pub const WORKER_LOCK_TIMEOUT_MS: i64 = 1_000;

/// Actions (step runs and compensations) one call drives before it must have finished: a bound
/// on the driver loop; an event has at most `EVENT_STEPS_MAX` steps, each run and compensated
/// at most once per call.
pub const ACTIONS_PER_RUN_MAX: usize = 2 * EVENT_STEPS_MAX + 2;

const _: () = assert!(STEP_ATTEMPTS_DEFAULT <= STEP_ATTEMPTS_MAX);
const _: () = assert!(EVENT_PAYLOAD_BYTES_MAX >= PAYLOAD_BYTES_MAX);
const _: () = assert!(8 * EVENT_STEPS_MAX + 8 + 2 * EVENT_LIENS_MAX <= CHANGES_PER_ROW_MAX);
const _: () = assert!(BATCH_ITEMS_MAX * 512 <= PAYLOAD_BYTES_MAX);

/// Deepest JSON nesting accepted in a payload, metadata or result: serde_json's own recursion
/// limit, which bounds the stack a hostile document can take.
pub const JSON_DEPTH_MAX: usize = 128;
