//! `#[pg_test]` tests: the shell inside a real backend (error mapping, SPI round trips).
//! The rules themselves are tested in `core/` and the SQL behaviour in `pg_test/`.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use cte_ctel_core::CteError;
    use pgrx::prelude::*;
    use pgrx::{AnyNumeric, PgSqlErrorCode};

    use crate::api::sqlstate_code;

    fn sqlstate_of(statement: &'static str) -> Option<PgSqlErrorCode> {
        PgTryBuilder::new(|| {
            Spi::run(statement).expect("statement runs");
            None
        })
        .catch_others(|error| match error {
            pg_sys::panic::CaughtError::PostgresError(report) => Some(report.sql_error_code()),
            other => other.rethrow(),
        })
        .execute()
    }

    #[pg_test]
    fn every_sqlstate_maps_to_its_own_postgres_code() {
        for error in CteError::examples() {
            let packed = sqlstate_code(error.sqlstate());
            let code = PgSqlErrorCode::from(packed);
            assert_eq!(code as i32, packed, "{} ({})", error.reason(), error.sqlstate());
            assert_ne!(code, PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "{}", error.reason());
        }
    }

    #[pg_test]
    fn a_refusal_raises_the_reason_sqlstate_and_changes_nothing() {
        Spi::run("SELECT cte_ctel.cte_create_account('pgtest-alice', ARRAY['USD'])").unwrap();
        let code = sqlstate_of("SELECT cte_ctel.cte_deposit('pgtest-alice', 10.001, 'USD')");
        assert_eq!(code, Some(PgSqlErrorCode::ERRCODE_INVALID_CHARACTER_VALUE_FOR_CAST));
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
        assert_eq!(code, Some(PgSqlErrorCode::ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION));
    }
}
