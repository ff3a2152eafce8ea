//! `#[pg_test]` tests: the shell inside a real backend (error raising, SPI round trips).
//! The rules themselves are tested in `core/` and the SQL behaviour in `pg_test/`.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use cte_ctel_core::CteError;
    use pgrx::prelude::*;
    use pgrx::AnyNumeric;

    /// The SQLSTATE a statement fails with, as PL/pgSQL (any client) sees it; None if it runs.
    fn sqlstate_of(statement: &str) -> Option<String> {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(statement text) RETURNS text
             LANGUAGE plpgsql AS $$
             BEGIN EXECUTE statement; RETURN NULL;
             EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$",
        )
        .expect("helper is created");
        Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[statement.into()])
            .expect("helper runs")
    }

    fn code_of(reason: &str) -> String {
        let error = CteError::examples().into_iter().find(|error| error.reason() == reason);
        error.map(|error| error.sqlstate().to_string()).expect("a catalog reason")
    }

    #[pg_test]
    fn a_refusal_raises_the_reason_sqlstate_and_changes_nothing() {
        Spi::run("SELECT cte_ctel.cte_create_account('pgtest-alice', ARRAY['USD'])").unwrap();
        let code = sqlstate_of("SELECT cte_ctel.cte_deposit('pgtest-alice', 10.001, 'USD')");
        assert_eq!(code, Some(code_of("amount_scale_exceeded")));
        let balance =
            Spi::get_one::<AnyNumeric>("SELECT cte_ctel.cte_balance('pgtest-alice', 'USD')");
        assert_eq!(balance.unwrap().unwrap().to_string(), "0.00");
        let entries = Spi::get_one::<i64>("SELECT count(*) FROM cte_ctel.cte_entries");
        assert_eq!(entries.unwrap(), Some(0));
    }

    #[pg_test]
    fn a_deposit_posts_two_balanced_entries() {
        Spi::run("SELECT cte_ctel.cte_create_account('pgtest-bob', ARRAY['EUR'])").unwrap();
        Spi::run("SELECT cte_ctel.cte_deposit('pgtest-bob', 12.34, 'EUR', 'ref-1')").unwrap();
        let sum = Spi::get_one::<AnyNumeric>(
            "SELECT sum(amount) FROM cte_ctel.cte_entries WHERE reference = 'ref-1'",
        );
        assert_eq!(sum.unwrap().unwrap().to_string(), "0.00");
        let balance =
            Spi::get_one::<AnyNumeric>("SELECT cte_ctel.cte_balance('pgtest-bob', 'EUR')");
        assert_eq!(balance.unwrap().unwrap().to_string(), "12.34");
        let problems = Spi::get_one::<i64>("SELECT count(*) FROM cte_ctel.cte_verify_ledger()");
        assert_eq!(problems.unwrap(), Some(0));
    }

    #[pg_test]
    fn the_journal_refuses_updates_with_its_own_sqlstate() {
        Spi::run("SELECT cte_ctel.cte_create_account('pgtest-carol', ARRAY['USD'])").unwrap();
        Spi::run("SELECT cte_ctel.cte_deposit('pgtest-carol', 1, 'USD')").unwrap();
        let code = sqlstate_of("UPDATE cte_ctel.cte_entries SET amount = 2");
        assert_eq!(code, Some(code_of("journal_append_only")));
    }

    #[pg_test]
    fn a_refusal_inside_a_refusal_keeps_its_code() {
        // A refusal raised in a nested call (a PL/pgSQL block calling the API) reaches the
        // outer handler with its own code, not XX000.
        Spi::run("SELECT cte_ctel.cte_create_account('pgtest-dan', ARRAY['USD'])").unwrap();
        let code = sqlstate_of(
            "DO $$ BEGIN PERFORM cte_ctel.cte_transfer('pgtest-dan', 'nobody', 1, 'USD'); END $$",
        );
        assert_eq!(code, Some(code_of("account_unknown")));
    }

    /// An event scheduled by `cte_start_event(id, at)`; its id.
    fn scheduled_payment(account: &str, at: &str) -> pgrx::Uuid {
        let create = format!("SELECT cte_ctel.cte_create_account('{account}', ARRAY['USD'])");
        Spi::run(&create).unwrap();
        Spi::run(&format!("SELECT cte_ctel.cte_deposit('{account}', 10, 'USD')")).unwrap();
        let event = Spi::get_one::<pgrx::Uuid>("SELECT cte_ctel.cte_create_event('payroll')");
        let event = event.unwrap().expect("an event id");
        let payload = format!(r#"{{"account_id": "{account}", "amount": 1, "currency": "USD"}}"#);
        let add = "SELECT cte_ctel.cte_add_transaction($1, 'pay', 'wallet.withdrawal', $2::jsonb)";
        Spi::run_with_args(add, &[event.into(), payload.as_str().into()]).unwrap();
        let start = format!("SELECT cte_ctel.cte_start_event($1, {at})");
        Spi::run_with_args(&start, &[event.into()]).unwrap();
        event
    }

    fn status_of(event: pgrx::Uuid) -> String {
        let query = "SELECT status::text FROM cte_ctel.cte_events WHERE id = $1";
        Spi::get_one_with_args::<String>(query, &[event.into()]).unwrap().unwrap()
    }

    /// SPEC §9: the worker lists due events without their locks, then starts each. An event
    /// the application started itself meanwhile, or moved to a later time, is left alone (0.2.0
    /// cancelled the first, "could not start at its time", and started the second at its old
    /// time). The worker's start is called here as it is after such a race.
    #[pg_test]
    fn the_worker_leaves_alone_a_scheduled_event_started_or_moved_meanwhile() {
        use crate::driver::{schedule, Context};
        let now_ms = crate::store::now_ms();
        let worker = Context {
            now_ms: now_ms + 120_000, // the first booked time (one minute ahead) has come
            config: crate::gucs::saga_config(),
            wait: crate::store::LockWait::Skip,
            actor: None,
        };
        let started = scheduled_payment("pgtest-sched-1", "now() + interval '1 minute'");
        Spi::run_with_args("SELECT cte_ctel.cte_start_event($1)", &[started.into()]).unwrap();
        let status = status_of(started);
        assert_ne!(status, "created", "the application started it");
        assert!(schedule::start_due(started, &worker).is_ok_and(|done| done.is_none()));
        assert_eq!(status_of(started), status, "the worker left it as the application did");
        let moved = scheduled_payment("pgtest-sched-2", "now() + interval '1 minute'");
        let later = "SELECT cte_ctel.cte_start_event($1, now() + interval '1 hour')";
        Spi::run_with_args(later, &[moved.into()]).unwrap();
        assert!(schedule::start_due(moved, &worker).is_ok_and(|done| done.is_none()));
        assert_eq!(status_of(moved), "created", "not started at its old time");
        let due = scheduled_payment("pgtest-sched-3", "now() + interval '1 minute'");
        let outcome = schedule::start_due(due, &worker);
        assert!(outcome.is_ok_and(|done| done.is_some()), "a due event is started");
        assert_ne!(status_of(due), "created");
    }
}
