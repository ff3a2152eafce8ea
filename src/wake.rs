//! Waking the worker when a transaction that recorded changes commits, so the change feed and
//! its `NOTIFY cte_events` follow within milliseconds rather than a whole worker interval.
//!
//! The worker keeps its process number in one shared-memory slot; a committing backend that
//! wrote to the change outbox sets the worker's latch after its commit is visible (the
//! transaction's commit callback), so the worker's next pass sees the rows. Without
//! `shared_preload_libraries` there is no worker and no slot: nothing to wake.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use pgrx::{
    pg_guard, pg_shmem_init, pg_sys, register_xact_callback, PgAtomic, PgXactCallbackEvent,
};

/// The worker's `pgprocno` + 1; 0 when no worker runs.
static WORKER: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"cte_ctel_worker_procno") };

/// Whether the shared slot exists (the library was preloaded): set in the postmaster before it
/// starts any backend, which inherit it.
static PRELOADED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this backend's current transaction already asked for a wake-up at commit; reset
    /// by the callback at commit or abort. Only this backend knows it.
    static ASKED: Cell<bool> = const { Cell::new(false) };
}

/// Asks for the shared slot; only while the library is being preloaded.
pub fn init() {
    pg_shmem_init!(WORKER);
    PRELOADED.store(true, Ordering::SeqCst);
}

fn preloaded() -> bool {
    PRELOADED.load(Ordering::SeqCst)
}

/// The worker announces itself (`true`) or leaves (`false`).
pub fn register_worker(present: bool) {
    if !preloaded() {
        return;
    }
    // A process's number is its PGPROC's place in ProcGlobal's array (PostgreSQL 17 dropped the
    // `pgprocno` field for exactly this: GetNumberFromPGProc), on every major.
    // SAFETY: MyProc is this process's own PGPROC, an element of ProcGlobal->allProcs, valid for
    // its whole life.
    let procno = unsafe { pg_sys::MyProc.offset_from((*pg_sys::ProcGlobal).allProcs) };
    let slot = if present { i32::try_from(procno + 1).unwrap_or(0) } else { 0 };
    WORKER.get().store(slot, Ordering::SeqCst);
}

/// Whether a live feed worker serves `database`: the library was preloaded, the worker has
/// announced itself, it is enabled and `cte_ctel.database` names this database.
pub fn worker_serves(database: &str) -> bool {
    preloaded()
        && WORKER.get().load(Ordering::SeqCst) > 0
        && crate::gucs::worker_enabled()
        && crate::gucs::worker_database() == database
}

/// Wakes the worker when the current transaction commits (once, however often it is asked).
pub fn at_commit() {
    if !preloaded() || ASKED.get() {
        return;
    }
    ASKED.set(true);
    register_xact_callback(PgXactCallbackEvent::Commit, || {
        ASKED.set(false);
        wake_worker();
    });
    register_xact_callback(PgXactCallbackEvent::Abort, || ASKED.set(false));
}

fn wake_worker() {
    let slot = WORKER.get().load(Ordering::SeqCst);
    if slot <= 0 {
        return;
    }
    // SAFETY: ProcGlobal's array holds every PGPROC for the server's life; a latch may be set
    // by any backend, and setting a stale one (the worker restarted) wakes nobody harmfully.
    unsafe {
        let procs = (*pg_sys::ProcGlobal).allProcs;
        let proc = procs.add(usize::try_from(slot - 1).unwrap_or(0));
        pg_sys::SetLatch(&mut (*proc).procLatch);
    }
}
