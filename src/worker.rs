//! The background worker: every `cte_ctel.worker_interval` it runs `cte_run_maintenance()` in a
//! transaction of its own in `cte_ctel.database` — expiring liens, compensating overdue events,
//! running due retries, folding system deltas. Started by `shared_preload_libraries`.
//!
//! It does nothing, quietly, where the extension is not installed or on a standby; a tick that
//! fails is logged and the loop goes on; SIGHUP reloads the settings; SIGTERM stops it at once
//! (and the postmaster starts it again after a `pg_terminate_backend`).

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::gucs;
use crate::store::{spi, subtransaction};

/// How long the postmaster waits before starting the worker again after it stopped.
const WORKER_RESTART_DELAY: Duration = Duration::from_secs(5);

/// What `pg_stat_activity.backend_type` shows for the worker.
const WORKER_TYPE: &str = "cte_ctel maintenance";

/// Registers the worker; only possible while the library is being preloaded.
pub fn register() {
    // SAFETY: reading a postmaster global that is set for the whole preload phase.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new("cte_ctel maintenance worker")
        .set_type(WORKER_TYPE)
        .set_library("cte_ctel")
        .set_function("cte_ctel_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(WORKER_RESTART_DELAY))
        .load();
}

/// The worker's entry point (named in `register`).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn cte_ctel_worker_main(_argument: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::worker_database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    log!("cte_ctel maintenance worker serving database {database:?}");
    while BackgroundWorker::wait_latch(Some(gucs::worker_interval())) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a worker to reload its configuration file.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            if gucs::worker_database() != database {
                log!("cte_ctel maintenance worker: cte_ctel.database changed, restarting");
                break;
            }
        }
        // SAFETY: a plain read of the recovery state.
        let standby = unsafe { pg_sys::RecoveryInProgress() };
        if gucs::worker_enabled() && !standby {
            BackgroundWorker::transaction(tick);
        }
    }
    log!("cte_ctel maintenance worker stopping");
    // Exit status 1 asks the postmaster to start the worker again (after a terminate or a
    // database change); during a shutdown it is not restarted anyway.
    // SAFETY: ends this worker process; nothing of ours needs cleaning up.
    unsafe { pg_sys::proc_exit(1) };
}

// The library serves whatever SQL version is installed, and between a package upgrade and
// `ALTER EXTENSION cte_ctel UPDATE` that is an older one, whose tables the worker's queries may
// not match: it does nothing until the installed version is its own.
const INSTALLED: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                          WHERE extname = 'cte_ctel' AND extversion = $1)";
const MAINTENANCE: &str = "SELECT cte_ctel.cte_run_maintenance()";

/// One tick, inside the worker's transaction. A failure is rolled back, logged, and the next
/// tick tries again.
fn tick() {
    let version = env!("CARGO_PKG_VERSION");
    let installed: Option<bool> =
        spi(Spi::get_one_with_args(INSTALLED, &[version.into()]), INSTALLED);
    if installed != Some(true) {
        return;
    }
    let outcome = subtransaction::run(|| Ok(spi(Spi::get_one::<JsonB>(MAINTENANCE), MAINTENANCE)));
    match outcome {
        Ok(Some(JsonB(report))) => debug1!("cte_ctel maintenance: {report}"),
        Ok(None) => {}
        Err(failure) => {
            warning!(
                "cte_ctel maintenance failed: {} (SQLSTATE {})",
                failure.message,
                failure.sqlstate
            )
        }
    }
}
