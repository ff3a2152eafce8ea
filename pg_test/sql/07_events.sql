-- Events: an ordered chain of steps that completes as a whole or is compensated as a whole.
-- Steps run in the caller's transaction, each in a subtransaction; when one fails for good the
-- completed ones are compensated newest first and every balance is exactly as it was.
SET search_path = cte_ctel, test;
BEGIN;
SELECT cte_create_account('alice', ARRAY['USD', 'EUR']);
SELECT cte_create_account('bob', ARRAY['USD']);
SELECT cte_deposit('alice', 100, 'USD') IS NOT NULL AS funded;

-- A three-step event that completes.
SELECT cte_create_event('payroll', 'three moves', '10 minutes') AS e \gset
SELECT status FROM cte_events WHERE id = :'e';
SELECT cte_add_transaction(:'e', 'pay bob', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 10, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'e', 'top up euros', 'wallet.deposit',
    '{"account_id": "alice", "amount": "0.1", "currency": "EUR", "reference": "eur-1"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'e', 'pay bob again', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 2.5, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'e');
SELECT "order", name, type, status, attempts, max_attempts, error FROM cte_transactions
 WHERE event_id = :'e' ORDER BY "order";
SELECT status, error, started_at IS NOT NULL AS started, finished_at IS NOT NULL AS finished,
       deadline = started_at + interval '10 minutes' AS deadline_is_start_plus_timeout
  FROM cte_events WHERE id = :'e';
SELECT * FROM cte_account_balances('alice');
-- 0.1 in JSON posts exactly 0.10.
SELECT amount FROM cte_entries WHERE reference = 'eur-1' AND account_id = 'alice';

-- A three-step event whose last step fails: the two before it are compensated, newest first.
SELECT cte_create_event('doomed') AS d \gset
SELECT cte_add_transaction(:'d', 'one', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 20, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'d', 'two', 'wallet.deposit',
    '{"account_id": "alice", "amount": 5, "currency": "EUR"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'d', 'three', 'wallet.transfer',
    '{"source_account_id": "bob", "destination_account_id": "alice", "amount": 1000, "currency": "USD"}') IS NOT NULL AS added;
SELECT test.ledger_state() AS before_doomed \gset
SELECT cte_start_event(:'d');
SELECT "order", name, status, attempts, error_sqlstate, error FROM cte_transactions
 WHERE event_id = :'d' ORDER BY "order";
SELECT status, error_sqlstate, error FROM cte_events WHERE id = :'d';
-- Balances are exactly as before; the journal keeps the steps and their reversals.
SELECT * FROM cte_account_balances('alice');
SELECT cte_balance('bob', 'USD') AS bob_usd;
SELECT t.name, e.kind, e.account_id, e.currency, e.amount
  FROM cte_entries e JOIN cte_transactions t ON t.id = e.transaction_id
 WHERE t.event_id = :'d' ORDER BY e.id;
SELECT count(*) AS violations FROM cte_verify_ledger();

-- Every status change is in the history, in order: seq sorts by itself (each drive's changes
-- are one stored row, id, ordered within it by n; seq is both in one column).
SELECT h.old_status, h.new_status, t.name AS transaction, h.actor = session_user AS by_caller
  FROM cte_event_history h LEFT JOIN cte_transactions t ON t.id = h.transaction_id
 WHERE h.event_id = :'d' ORDER BY h.seq;
SELECT array_agg(seq ORDER BY seq) = array_agg(seq ORDER BY id, n) AS seq_orders_as_id_and_n,
       count(DISTINCT seq) = count(*) AS seq_is_unique
  FROM cte_event_history;

-- An external step waits on the outside world; the application reports back.
SELECT cte_create_event('payout') AS p \gset
SELECT cte_add_transaction(:'p', 'debit', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 1, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'p', 'bank payout', 'external', '{"rail": "sepa"}') AS x \gset
SELECT cte_start_event(:'p');
SELECT name, status FROM cte_transactions WHERE event_id = :'p' ORDER BY "order";
SELECT cte_complete_transaction(:'x', '{"bank_ref": "B-77"}');
SELECT name, status, result ? 'postings' AS posted, result ->> 'bank_ref' AS bank_ref
  FROM cte_transactions WHERE event_id = :'p' ORDER BY "order";

-- A payout that the bank refuses for good: the debit is compensated.
SELECT cte_create_event('refused payout') AS r \gset
SELECT cte_add_transaction(:'r', 'debit', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 3, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'r', 'bank payout', 'external', '{}') AS rx \gset
SELECT cte_start_event(:'r');
SELECT cte_fail_transaction(:'rx', 'account closed', retryable => false);
SELECT name, status, error FROM cte_transactions WHERE event_id = :'r' ORDER BY "order";

-- Compensating a completed external step waits for the application too: the event stays
-- compensating until the application reports the compensation done, with
-- cte_complete_compensation (SPEC v2: kept apart from the step's own outcome, so a second
-- "completed" report is a late report that changes nothing).
SELECT cte_create_event('hold then fail') AS h \gset
SELECT cte_add_transaction(:'h', 'card hold', 'external', '{"psp": "acme"}') AS hx \gset
SELECT cte_add_transaction(:'h', 'pay too much', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 9999, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_start_event(:'h');
SELECT cte_complete_transaction(:'hx', '{"hold": "H-1"}');
SELECT name, status FROM cte_transactions WHERE event_id = :'h' ORDER BY "order";
SELECT cte_complete_transaction(:'hx');
SELECT name, status FROM cte_transactions WHERE event_id = :'h' ORDER BY "order";
SELECT cte_complete_compensation(:'hx');
SELECT name, status FROM cte_transactions WHERE event_id = :'h' ORDER BY "order";
SELECT kind, old_status, new_status FROM cte_event_history
 WHERE transaction_id = :'hx' ORDER BY id, n;

-- A report the application marks retryable keeps the step waiting for another attempt (SPEC
-- v2: only when it says so; retryable defaults to false).
SELECT cte_create_event('flaky payout') AS f \gset
SELECT cte_add_transaction(:'f', 'bank payout', 'external', '{}', max_attempts => 2) AS fx \gset
SELECT cte_start_event(:'f');
SELECT cte_fail_transaction(:'fx', 'bank timeout', retryable => true);
SELECT status, attempts, next_attempt_at IS NOT NULL AS retry_scheduled FROM cte_transactions WHERE id = :'fx';

-- Cancelling a waiting event compensates what completed. The external step it waits on may
-- have happened at the bank already: it is asked to compensate first (SPEC v2), and the debit
-- before it is compensated once the application reports that compensation.
SELECT cte_create_event('cancelled') AS c \gset
SELECT cte_add_transaction(:'c', 'debit', 'wallet.transfer',
    '{"source_account_id": "alice", "destination_account_id": "bob", "amount": 4, "currency": "USD"}') IS NOT NULL AS added;
SELECT cte_add_transaction(:'c', 'approval', 'external', '{}') AS cx \gset
SELECT cte_start_event(:'c');
SELECT cte_balance('alice', 'USD') AS alice_while_waiting;
SELECT cte_cancel_event(:'c', 'customer changed their mind');
SELECT name, status, error FROM cte_transactions WHERE event_id = :'c' ORDER BY "order";
SELECT cte_balance('alice', 'USD') AS alice_until_the_compensation_is_reported;
SELECT cte_complete_compensation(:'cx');
SELECT cte_balance('alice', 'USD') AS alice_after_cancel;
SELECT status, error FROM cte_events WHERE id = :'c';
SELECT name, status, error FROM cte_transactions WHERE event_id = :'c' ORDER BY "order";

-- A created event that is cancelled ends compensated at once; nothing ran.
SELECT cte_create_event('never started') AS n \gset
SELECT cte_cancel_event(:'n');

-- An event past its deadline is listed as overdue, and maintenance compensates it. Time is
-- frozen inside this transaction, so the deadline is moved into the past by hand.
UPDATE cte_events SET deadline = now() - interval '1 second' WHERE id = :'f';
SELECT name, status FROM cte_overdue_events ORDER BY name;
SELECT cte_run_maintenance() ->> 'events_timed_out' AS timed_out;
SELECT status, error FROM cte_events WHERE id = :'f';
SELECT name FROM cte_overdue_events;

-- Transitions that are not allowed, each refused with nothing changed.
SELECT test.refusal(format($$SELECT cte_ctel.cte_start_event(%L)$$, :'e'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_add_transaction(%L, 'late', 'external', '{}')$$, :'e'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_cancel_event(%L)$$, :'e'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_cancel_event(%L)$$, :'d'));
SELECT test.refusal(format($$SELECT cte_ctel.cte_complete_transaction(
    (SELECT id FROM cte_ctel.cte_transactions WHERE event_id = %L AND "order" = 1))$$, :'e'));
-- A report on an external step that no longer awaits it is not refused (SPEC v2): the event's
-- status comes back, nothing changes, and a late_report is recorded for an operator.
SELECT test.ledger_state() AS before_late \gset
SELECT cte_complete_transaction(:'x') AS late_report_returns;
SELECT test.ledger_state() = :'before_late' AS ledger_unchanged;
SELECT kind, old_status, new_status FROM cte_event_history
 WHERE transaction_id = :'x' AND kind = 'late_report';
SELECT test.refusal($$SELECT cte_ctel.cte_start_event('00000000-0000-0000-0000-000000000000')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_complete_transaction('00000000-0000-0000-0000-000000000000')$$);
SELECT test.refusal($$SELECT cte_ctel.cte_start_event(NULL)$$);
SELECT count(*) AS violations FROM cte_verify_ledger();
ROLLBACK;
