//! `cte_ctel`: a double-entry wallet ledger with a saga engine inside PostgreSQL.
//!
//! This crate is the imperative shell: `api` holds the SQL entry points, `store` is the only
//! code that runs SQL, `raise` the only code that raises an ERROR. The rules themselves (money, ledger, errors, limits) live in the pure
//! `cte_ctel_core` crate (`core/`), which unit-tests without PostgreSQL. The schema is in `sql/`.

// API functions return `Result<_, pgrx::ErrorReport>`: that type is what keeps each refusal's own
// SQLSTATE (any other error type is raised as 22000), and it is large by pgrx's design.
#![allow(clippy::result_large_err)]
// Forbidden only in the store (clippy.toml): see its `deny`.
#![allow(clippy::disallowed_methods)]

use pgrx::prelude::*;

mod api;
mod driver;
mod gucs;
mod raise;
mod store;
mod wake;
mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/ledger.sql", name = "ledger_schema", bootstrap);
extension_sql_file!("../sql/engine.sql", name = "engine_schema", requires = ["ledger_schema"]);
extension_sql_file!("../sql/liens.sql", name = "liens_schema", requires = ["engine_schema"]);
extension_sql_file!("../sql/chains.sql", name = "chains", requires = ["ledger_schema"]);
extension_sql_file!(
    "../sql/verify.sql",
    name = "verify",
    requires = ["liens_schema", "chains", api::security::cte_verify_ledger_reader]
);
extension_sql_file!("../sql/executors.sql", name = "executors", requires = ["engine_schema"]);
extension_sql_file!(
    "../sql/journal_guard.sql",
    name = "journal_guard",
    requires = ["ledger_schema", "chains", api::journal::cte_journal_append_only]
);
extension_sql_file!(
    "../sql/lifecycle.sql",
    name = "lifecycle",
    requires = ["liens_schema", "verify", "executors", "journal_guard"]
);
extension_sql_file!("../sql/leases.sql", name = "leases", requires = ["engine_schema"]);
extension_sql_file!(
    "../sql/bulk.sql",
    name = "bulk",
    requires = ["engine_schema", api::bulk::cte_transfers]
);
extension_sql_file!(
    "../sql/caller.sql",
    name = "caller",
    requires = ["engine_schema", api::security::cte_caller]
);
extension_sql_file!(
    "../sql/consumers.sql",
    name = "consumers",
    requires = ["engine_schema", api::feed::cte_changes_with_metadata]
);
extension_sql_file!(
    "../sql/reads.sql",
    name = "reads",
    requires = ["engine_schema", api::ledger::cte_balance_at]
);
extension_sql_file!(
    "../sql/stats.sql",
    name = "stats",
    requires = ["liens_schema", "verify", "consumers"]
);
extension_sql_file!(
    "../sql/run_event.sql",
    name = "run_event",
    requires = ["executors", api::engine::cte_create_event, api::engine::cte_start_event_at]
);
extension_sql_file!(
    "../sql/monitors.sql",
    name = "monitors",
    requires = ["engine_schema", api::security::cte_caller]
);
extension_sql_file!(
    "../sql/external_types.sql",
    name = "external_types",
    requires = ["executors", api::security::cte_caller]
);
extension_sql_file!(
    "../sql/tenancy.sql",
    name = "tenancy",
    requires = ["stats", "reads", "monitors", "consumers", "chains", "caller"]
);
extension_sql_file!("../sql/roles.sql", name = "roles", finalize);

/// Registers the settings, and the background worker when preloaded. With
/// `shared_preload_libraries` this runs at server start; otherwise on the first call in each
/// session (and there is no worker: `cte_run_maintenance()` does its duties on demand).
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx's panic hook captures a Rust backtrace for every error that crosses Rust frames and
    // appends it to the error's DETAIL whenever RUST_BACKTRACE is set in the server's
    // environment. A DETAIL is `reason: …` for clients, never a stack: RUST_LIB_BACKTRACE=0
    // turns library backtraces off whatever RUST_BACKTRACE says. Set before any panic can
    // happen (the standard library reads it once), while the process has one thread.
    // SAFETY: _PG_init runs in a single-threaded backend or postmaster.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    gucs::init();
    store::ledger::init_currency_cache();
    worker::register();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Hooks for `cargo pgrx test`: the test server preloads the library, as production does.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'cte_ctel'"]
    }
}
