//! The background workers, two per server, both serving `cte_ctel.database` and started by
//! `shared_preload_libraries`. Each `cte_ctel.worker_interval`:
//! - the feed worker (`cte_ctel feed`; also woken as soon as a transaction that recorded
//!   changes commits, by `wake`) sequences committed changes into the feed and announces them,
//!   expires liens and folds system deltas;
//! - the events worker (`cte_ctel maintenance`) starts scheduled events, times out events and
//!   unreported compensations, and runs due retries, where custom executors run (under
//!   `cte_ctel.executor_timeout`).
//!
//! They are two processes so that no executor, however slow, can hold the feed or an expiry
//! (SPEC §12): the feed worker never runs one.
//!
//! It is a client like any other, with two differences: it never waits for a row another
//! session holds (it skips it, and a lock wait in an executor it runs gives up after
//! `WORKER_LOCK_TIMEOUT_MS`), and it commits every few items (`WORKER_ITEMS_PER_TRANSACTION_MAX`),
//! so one tick's items are never held to one commit and its subtransactions stay few. It does
//! nothing, quietly, where the extension is not installed, where the installed SQL is another
//! version than this library's, or on a standby; SIGHUP reloads the settings; SIGTERM stops it.

use std::time::{Duration, Instant};

use cte_ctel_core::limits::{
    EVENTS_PER_MAINTENANCE_MAX, WORKER_ITEMS_PER_TRANSACTION_MAX, WORKER_LOCK_TIMEOUT_MS,
    WORKER_PASS_GAP_MS,
};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;

use crate::driver::maintenance::{self, Duties, Report};
use crate::driver::Context;
use crate::gucs;
use crate::store::maintenance as store_maintenance;
use crate::store::{now_ms, subtransaction, LockWait};

/// How long the postmaster waits before starting the worker again after it stopped.
const WORKER_RESTART_DELAY: Duration = Duration::from_secs(5);

/// What `pg_stat_activity.backend_type` shows for each worker.
const EVENTS_WORKER_TYPE: &str = "cte_ctel maintenance";
const FEED_WORKER_TYPE: &str = "cte_ctel feed";

/// Registers the workers; only possible while the library is being preloaded.
pub fn register() {
    // SAFETY: reading a postmaster global that is set for the whole preload phase.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    crate::wake::init();
    // pg_upgrade starts both servers in binary-upgrade mode to copy the schema and then the
    // data: a worker there would write (sequence, expire, retry) into a database that is being
    // restored. The workers start with the server pg_upgrade leaves behind.
    // SAFETY: set from the postmaster's command line before libraries are preloaded.
    if unsafe { pg_sys::IsBinaryUpgrade } {
        return;
    }
    let workers = [
        ("cte_ctel maintenance worker", EVENTS_WORKER_TYPE, "cte_ctel_worker_main"),
        ("cte_ctel feed worker", FEED_WORKER_TYPE, "cte_ctel_feed_worker_main"),
    ];
    for (name, worker_type, function) in workers {
        BackgroundWorkerBuilder::new(name)
            .set_type(worker_type)
            .set_library("cte_ctel")
            .set_function(function)
            .enable_spi_access()
            .set_restart_time(Some(WORKER_RESTART_DELAY))
            .load();
    }
}

/// The events worker's entry point (named in `register`).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn cte_ctel_worker_main(_argument: pg_sys::Datum) {
    serve(Duties::Events);
}

/// The feed worker's entry point (named in `register`).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn cte_ctel_feed_worker_main(_argument: pg_sys::Datum) {
    serve(Duties::Feed);
}

/// A worker's life: connect, then a tick of `duties` each interval (and, for the feed worker,
/// at each wake-up) until SIGTERM or a change of database.
fn serve(duties: Duties) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::worker_database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    let name = if duties == Duties::Feed { FEED_WORKER_TYPE } else { EVENTS_WORKER_TYPE };
    log!("{name} worker serving database {database:?}");
    // Wake-ups at commit are for the feed: only its worker takes them.
    let announce = duties == Duties::Feed;
    if announce {
        crate::wake::register_worker(true);
    }
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
            tick(duties);
            // SAFETY: a plain sleep; a SIGTERM meanwhile is seen by the next wait_latch.
            unsafe { pg_sys::pg_usleep(WORKER_PASS_GAP_MS as std::ffi::c_long * 1000) };
        }
    }
    if announce {
        crate::wake::register_worker(false);
    }
    log!("{name} worker stopping");
    // Exit status 1 asks the postmaster to start the worker again (after a terminate or a
    // database change); during a shutdown it is not restarted anyway.
    // SAFETY: ends this worker process; nothing of ours needs cleaning up.
    unsafe { pg_sys::proc_exit(1) };
}

/// One tick: passes of a few items, each pass committed on its own, until nothing is left or
/// the tick's bound is reached.
fn tick(duties: Duties) {
    let started = Instant::now();
    let mut total = Report::default();
    let passes_max =
        usize::try_from(EVENTS_PER_MAINTENANCE_MAX).unwrap_or(1) / WORKER_ITEMS_PER_TRANSACTION_MAX;
    for _ in 0..passes_max.max(1) {
        let pass = BackgroundWorker::transaction(|| one_pass(duties));
        let Some((report, more)) = pass else {
            return; // not installed, another version, or the pass failed (logged)
        };
        if let Some(newest) = report.to_announce {
            total.notifications_sent += announce(newest);
        }
        total.add(&report);
        if !more {
            break;
        }
    }
    let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    BackgroundWorker::transaction(|| {
        // A session may hold the state row (cte_run_maintenance() in an open transaction): the
        // worker gives up recording after the lock timeout rather than wait for it.
        settings();
        // Inside the subtransaction: the extension may be dropped between the pass and here.
        let recorded = subtransaction::run_isolated(|| {
            if !store_maintenance::state_held() {
                maintenance::record_pass(elapsed, &total); // else a session holds the row
            }
            Ok(())
        });
        if let Err(failure) = recorded {
            warning!("cte_ctel maintenance: recording the pass failed: {}", failure.message);
        }
    });
    debug1!("cte_ctel maintenance: {}", total.to_json());
}

/// Announces the feed's newest position in a transaction of its own; 1 if it went out. With
/// the server's NOTIFY queue half full it is skipped and logged (a NOTIFY that finds the queue
/// full fails at commit, which would end the worker): the feed goes on, and consumers catch up
/// at the next announcement or by polling.
fn announce(newest: i64) -> i64 {
    let sent = BackgroundWorker::transaction(|| {
        subtransaction::run_isolated(|| Ok(maintenance::announce(newest)))
    });
    match sent {
        Ok(true) => 1,
        Ok(false) => {
            warning!(
                "cte_ctel feed: position {newest} not announced: the NOTIFY queue is half full"
            );
            0
        }
        Err(failure) => {
            warning!("cte_ctel feed: announcing position {newest} failed: {}", failure.message);
            0
        }
    }
}

/// The worker's settings for its current transaction: a fixed search_path, and a lock timeout
/// so that it never waits long for a row a session holds.
fn settings() {
    store_maintenance::worker_settings(&format!("{WORKER_LOCK_TIMEOUT_MS}ms"));
}

/// One pass in the worker's current transaction; `None` if there is nothing to serve.
fn one_pass(duties: Duties) -> Option<(Report, bool)> {
    // SAFETY: a bgworker's statement clock is not advanced for it: each pass is a statement.
    unsafe { pg_sys::SetCurrentStatementStartTimestamp() };
    let version = env!("CARGO_PKG_VERSION");
    if !store_maintenance::installed(version) {
        return None;
    }
    settings();
    let ctx = Context {
        now_ms: now_ms(),
        config: gucs::saga_config(),
        wait: LockWait::Skip,
        actor: Some("cte_ctel worker".into()),
    };
    let pass = subtransaction::run_isolated(|| {
        Ok(maintenance::pass(&ctx, WORKER_ITEMS_PER_TRANSACTION_MAX, duties))
    });
    match pass {
        Ok(result) => Some(result),
        Err(failure) => {
            let text = format!("the pass: {} (SQLSTATE {})", failure.message, failure.sqlstate);
            warning!("cte_ctel maintenance failed: {text}");
            // The check too runs isolated: a DROP EXTENSION during the pass removes the table
            // it reads, and an error here would end the worker.
            let recorded = subtransaction::run_isolated(|| {
                if !store_maintenance::state_held() {
                    store_maintenance::record_failure(&text); // else: in the log only, nothing waits
                }
                Ok(())
            });
            if let Err(failure) = recorded {
                warning!("cte_ctel maintenance: recording the failure failed: {}", failure.message);
            }
            None
        }
    }
}
