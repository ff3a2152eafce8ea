"""Refusal classes, one per reason of cte_ctel's error catalog. GENERATED: do not edit.

Made by `python3 -m cte_ctel.generate_errors DSN` from `cte_ctel.cte_error_catalog()`;
`tests/test_errors.py` checks it against the live catalog.
"""

from cte_ctel._base import Refused


class NullArgument(Refused):
    """L0001 null_argument, e.g. argument amount must not be NULL"""

    sqlstate = 'L0001'
    reason = 'null_argument'


class AmountMalformed(Refused):
    """L0002 amount_malformed, e.g. amount "x" is not a number"""

    sqlstate = 'L0002'
    reason = 'amount_malformed'


class AmountNotFinite(Refused):
    """L0003 amount_not_finite, e.g. amount NaN is not a finite number"""

    sqlstate = 'L0003'
    reason = 'amount_not_finite'


class AmountNotPositive(Refused):
    """L0004 amount_not_positive, e.g. amount 0 must be greater than zero"""

    sqlstate = 'L0004'
    reason = 'amount_not_positive'


class AmountScaleExceeded(Refused):
    """L0005 amount_scale_exceeded, e.g. amount 10.001 has 3 decimals; USD allows 2"""

    sqlstate = 'L0005'
    reason = 'amount_scale_exceeded'


class AmountTooLarge(Refused):
    """L0006 amount_too_large, e.g. amount x is too large: at most 16 digits before the point"""

    sqlstate = 'L0006'
    reason = 'amount_too_large'


class TextTooLong(Refused):
    """L0007 text_too_long, e.g. account id is 65 bytes long; at most 64 are allowed"""

    sqlstate = 'L0007'
    reason = 'text_too_long'


class IdentifierInvalid(Refused):
    """L0008 identifier_invalid, e.g. account id "x" is not valid: empty"""

    sqlstate = 'L0008'
    reason = 'identifier_invalid'


class CurrencyScaleInvalid(Refused):
    """L0009 currency_scale_invalid, e.g. currency scale 99 is not valid: it must be between 0
    and 12"""

    sqlstate = 'L0009'
    reason = 'currency_scale_invalid'


class CurrencyListInvalid(Refused):
    """L0010 currency_list_invalid, e.g. currency list is not valid: x"""

    sqlstate = 'L0010'
    reason = 'currency_list_invalid'


class MetadataInvalid(Refused):
    """L0011 metadata_invalid, e.g. metadata is not valid: not an object"""

    sqlstate = 'L0011'
    reason = 'metadata_invalid'


class SameAccount(Refused):
    'L0012 same_account, e.g. source and destination are the same account "x"'

    sqlstate = 'L0012'
    reason = 'same_account'


class LimitExceeded(Refused):
    """L0013 limit_exceeded, e.g. currencies is 33; the limit is 32"""

    sqlstate = 'L0013'
    reason = 'limit_exceeded'


class CurrencyUnknown(Refused):
    """L0014 currency_unknown, e.g. currency "x" is not registered"""

    sqlstate = 'L0014'
    reason = 'currency_unknown'


class CurrencyExists(Refused):
    """L0015 currency_exists, e.g. currency x is already registered with scale 2"""

    sqlstate = 'L0015'
    reason = 'currency_exists'


class AccountUnknown(Refused):
    """L0016 account_unknown, e.g. account "x" does not exist"""

    sqlstate = 'L0016'
    reason = 'account_unknown'


class AccountExists(Refused):
    """L0017 account_exists, e.g. account "x" already exists"""

    sqlstate = 'L0017'
    reason = 'account_exists'


class CurrencyNotHeld(Refused):
    """L0018 currency_not_held, e.g. account "x" does not hold currency x"""

    sqlstate = 'L0018'
    reason = 'currency_not_held'


class SystemAccountRefused(Refused):
    """L0019 system_account_refused, e.g. account "x" is a system account and cannot be used
    here"""

    sqlstate = 'L0019'
    reason = 'system_account_refused'


class InsufficientFunds(Refused):
    """L0020 insufficient_funds, e.g. insufficient funds in "x": 0 x available, 1 needed"""

    sqlstate = 'L0020'
    reason = 'insufficient_funds'


class JournalAppendOnly(Refused):
    """L0021 journal_append_only, e.g. journal entries are append-only: UPDATE is not allowed"""

    sqlstate = 'L0021'
    reason = 'journal_append_only'


class RateInvalid(Refused):
    """L0022 rate_invalid, e.g. exchange rate 0 is not valid: a rate must be greater than zero"""

    sqlstate = 'L0022'
    reason = 'rate_invalid'


class TransitionNotAllowed(Refused):
    """L0023 transition_not_allowed, e.g. event is completed: cannot start it"""

    sqlstate = 'L0023'
    reason = 'transition_not_allowed'


class EventUnknown(Refused):
    """L0024 event_unknown, e.g. event x does not exist"""

    sqlstate = 'L0024'
    reason = 'event_unknown'


class TransactionUnknown(Refused):
    """L0025 transaction_unknown, e.g. transaction x does not exist"""

    sqlstate = 'L0025'
    reason = 'transaction_unknown'


class TypeUnknown(Refused):
    """L0026 type_unknown, e.g. transaction type "x" is not registered"""

    sqlstate = 'L0026'
    reason = 'type_unknown'


class PayloadInvalid(Refused):
    """L0027 payload_invalid, e.g. payload of x is not valid: x"""

    sqlstate = 'L0027'
    reason = 'payload_invalid'


class IdempotencyConflict(Refused):
    """L0028 idempotency_conflict, e.g. idempotency key "x" already names x, not x"""

    sqlstate = 'L0028'
    reason = 'idempotency_conflict'


class DuplicateReference(Refused):
    """L0029 duplicate_reference, e.g. reference "x" is already used by a x transaction of x"""

    sqlstate = 'L0029'
    reason = 'duplicate_reference'


class ExecutorInvalid(Refused):
    """L0030 executor_invalid, e.g. executor for "x" is not valid: x"""

    sqlstate = 'L0030'
    reason = 'executor_invalid'


class OrderTaken(Refused):
    """L0031 order_taken, e.g. event x already has a transaction with order 1"""

    sqlstate = 'L0031'
    reason = 'order_taken'


class TimeoutInvalid(Refused):
    """L0032 timeout_invalid, e.g. timeout x is not valid: it must be whole milliseconds, from
    1 millisecond to 30 days"""

    sqlstate = 'L0032'
    reason = 'timeout_invalid'


class ArgumentOutOfRange(Refused):
    """L0033 argument_out_of_range, e.g. max_attempts is 0; it must be between 1 and 100"""

    sqlstate = 'L0033'
    reason = 'argument_out_of_range'


class LienUnknown(Refused):
    """L0034 lien_unknown, e.g. lien x does not exist"""

    sqlstate = 'L0034'
    reason = 'lien_unknown'


class CaptureExceedsLien(Refused):
    """L0035 capture_exceeds_lien, e.g. capture of 2 exceeds the 1 the lien holds"""

    sqlstate = 'L0035'
    reason = 'capture_exceeds_lien'


class ExpiryInvalid(Refused):
    """L0036 expiry_invalid, e.g. expires_at x is not in the future"""

    sqlstate = 'L0036'
    reason = 'expiry_invalid'


class AccountFrozen(Refused):
    """L0037 account_frozen, e.g. account "x" is frozen: it takes no new debit and no new lien"""

    sqlstate = 'L0037'
    reason = 'account_frozen'


class AccountClosed(Refused):
    """L0038 account_closed, e.g. account "x" is closed: it takes nothing"""

    sqlstate = 'L0038'
    reason = 'account_closed'


class FloorAboveAvailable(Refused):
    'L0039 floor_above_available, e.g. floor 10 USD is above the available balance 5 of "x"'

    sqlstate = 'L0039'
    reason = 'floor_above_available'


class AccountNotEmpty(Refused):
    """L0040 account_not_empty, e.g. account "x" cannot be closed: x"""

    sqlstate = 'L0040'
    reason = 'account_not_empty'


class RefundExceedsEvent(Refused):
    """L0041 refund_exceeds_event, e.g. refund of 2 exceeds what is left to refund of event x:
    1"""

    sqlstate = 'L0041'
    reason = 'refund_exceeds_event'


class RefundPartialUnsupported(Refused):
    """L0042 refund_partial_unsupported, e.g. event x cannot be refunded in part: it posted
    twice"""

    sqlstate = 'L0042'
    reason = 'refund_partial_unsupported'


class IsolationUnsupported(Refused):
    """L0043 isolation_unsupported, e.g. cte_ledger_digest needs a READ COMMITTED transaction:
    it waits for the journal's writers, then reads what they committed"""

    sqlstate = 'L0043'
    reason = 'isolation_unsupported'


class LeaseExpired(Refused):
    """L0044 lease_expired, e.g. the lease on transaction x does not hold: x"""

    sqlstate = 'L0044'
    reason = 'lease_expired'


# reason -> (SQLSTATE, class), in SQLSTATE order.
CATALOG = {
    'null_argument': ('L0001', NullArgument),
    'amount_malformed': ('L0002', AmountMalformed),
    'amount_not_finite': ('L0003', AmountNotFinite),
    'amount_not_positive': ('L0004', AmountNotPositive),
    'amount_scale_exceeded': ('L0005', AmountScaleExceeded),
    'amount_too_large': ('L0006', AmountTooLarge),
    'text_too_long': ('L0007', TextTooLong),
    'identifier_invalid': ('L0008', IdentifierInvalid),
    'currency_scale_invalid': ('L0009', CurrencyScaleInvalid),
    'currency_list_invalid': ('L0010', CurrencyListInvalid),
    'metadata_invalid': ('L0011', MetadataInvalid),
    'same_account': ('L0012', SameAccount),
    'limit_exceeded': ('L0013', LimitExceeded),
    'currency_unknown': ('L0014', CurrencyUnknown),
    'currency_exists': ('L0015', CurrencyExists),
    'account_unknown': ('L0016', AccountUnknown),
    'account_exists': ('L0017', AccountExists),
    'currency_not_held': ('L0018', CurrencyNotHeld),
    'system_account_refused': ('L0019', SystemAccountRefused),
    'insufficient_funds': ('L0020', InsufficientFunds),
    'journal_append_only': ('L0021', JournalAppendOnly),
    'rate_invalid': ('L0022', RateInvalid),
    'transition_not_allowed': ('L0023', TransitionNotAllowed),
    'event_unknown': ('L0024', EventUnknown),
    'transaction_unknown': ('L0025', TransactionUnknown),
    'type_unknown': ('L0026', TypeUnknown),
    'payload_invalid': ('L0027', PayloadInvalid),
    'idempotency_conflict': ('L0028', IdempotencyConflict),
    'duplicate_reference': ('L0029', DuplicateReference),
    'executor_invalid': ('L0030', ExecutorInvalid),
    'order_taken': ('L0031', OrderTaken),
    'timeout_invalid': ('L0032', TimeoutInvalid),
    'argument_out_of_range': ('L0033', ArgumentOutOfRange),
    'lien_unknown': ('L0034', LienUnknown),
    'capture_exceeds_lien': ('L0035', CaptureExceedsLien),
    'expiry_invalid': ('L0036', ExpiryInvalid),
    'account_frozen': ('L0037', AccountFrozen),
    'account_closed': ('L0038', AccountClosed),
    'floor_above_available': ('L0039', FloorAboveAvailable),
    'account_not_empty': ('L0040', AccountNotEmpty),
    'refund_exceeds_event': ('L0041', RefundExceedsEvent),
    'refund_partial_unsupported': ('L0042', RefundPartialUnsupported),
    'isolation_unsupported': ('L0043', IsolationUnsupported),
    'lease_expired': ('L0044', LeaseExpired),
}
