//! The worker's duties, one bounded pass at a time: give committed changes their place in the
//! feed and wake its consumers, time out events (past their deadline, never started, or with a
//! compensation unreported too long), run due retries, expire liens, fold system-account
//! deltas. `cte_run_maintenance()` runs one pass in its caller's transaction; the worker runs
//! passes of a few items each, committing after each.
//!
//! Every item is read first without a lock (a candidate), then handled on its own in a
//! subtransaction that locks it and re-reads it: what the candidate query saw may be stale (the
//! event ended, the lien was released) and is never acted on. A row another session holds is
//! skipped, never waited for (the item comes back on a later pass), and an item that fails for
//! any reason, a broken invariant included, is rolled back, logged with its id, and counted;
//! the pass goes on.

use cte_ctel_core::limits::CHANGE_ROWS_PER_SEQUENCE_MAX;
use pgrx::Uuid;
use serde_json::{json, Value};

use super::{drive, Command, Context};
use crate::store::changes;
use crate::store::maintenance::{self as store_maintenance, Candidates};
use crate::store::subtransaction::{self, Failure};
use crate::store::{ledger, liens};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub changes_sequenced: i64,
    pub notifications_sent: i64,
    pub events_started: i64,
    pub events_timed_out: i64,
    pub compensations_timed_out: i64,
    pub events_retried: i64,
    pub liens_expired: i64,
    /// Leases on steps that ran out (SPEC §10): an execution's is a try-again failure.
    pub leases_expired: i64,
    pub items_skipped_locked: i64,
    pub items_failed: i64,
    pub system_deltas_folded: i64,
    /// The last item that failed, for `cte_worker_state.last_failure` (not in the JSON).
    pub last_failure: Option<String>,
    /// The newest position a feed worker's pass gave, announced after the pass commits, in a
    /// transaction of its own (not in the JSON).
    pub to_announce: Option<i64>,
}

impl Report {
    pub fn add(&mut self, other: &Report) {
        self.changes_sequenced += other.changes_sequenced;
        self.notifications_sent += other.notifications_sent;
        self.events_started += other.events_started;
        self.events_timed_out += other.events_timed_out;
        self.compensations_timed_out += other.compensations_timed_out;
        self.events_retried += other.events_retried;
        self.liens_expired += other.liens_expired;
        self.leases_expired += other.leases_expired;
        self.items_skipped_locked += other.items_skipped_locked;
        self.items_failed += other.items_failed;
        self.system_deltas_folded += other.system_deltas_folded;
        if other.last_failure.is_some() {
            self.last_failure.clone_from(&other.last_failure);
        }
        if other.to_announce.is_some() {
            self.to_announce = other.to_announce;
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "changes_sequenced": self.changes_sequenced,
            "notifications_sent": self.notifications_sent,
            "events_started": self.events_started,
            "events_timed_out": self.events_timed_out,
            "compensations_timed_out": self.compensations_timed_out,
            "events_retried": self.events_retried,
            "liens_expired": self.liens_expired,
            "leases_expired": self.leases_expired,
            "items_skipped_locked": self.items_skipped_locked,
            "items_failed": self.items_failed,
            "system_deltas_folded": self.system_deltas_folded,
        })
    }
}

/// How one item ended.
enum Handled {
    Done,
    Skipped,
    /// What failed, as logged.
    Failed(String),
}

/// Handles one item in a subtransaction of its own; a row held elsewhere (55P03, or skipped
/// by SKIP LOCKED) is left for a later pass, and any failure is logged and counted.
fn handle(what: &str, id: Uuid, work: impl FnOnce() -> Result<bool, Failure>) -> Handled {
    match subtransaction::run_isolated(work) {
        Ok(true) => Handled::Done,
        Ok(false) => Handled::Skipped,
        Err(failure) if failure.sqlstate == "55P03" => Handled::Skipped,
        Err(failure) => {
            let text = format!("{what} {id}: {} (SQLSTATE {})", failure.message, failure.sqlstate);
            pgrx::warning!("cte_ctel maintenance: {text}");
            Handled::Failed(text)
        }
    }
}

fn count(report: &mut Report, handled: Handled, done: impl FnOnce(&mut Report)) {
    match handled {
        Handled::Done => done(report),
        Handled::Skipped => report.items_skipped_locked += 1,
        Handled::Failed(text) => {
            report.items_failed += 1;
            report.last_failure = Some(text);
        }
    }
}

/// Drives each event with the command `make` gives, counting what happened.
fn drive_each(
    ids: &[Uuid],
    make: fn() -> Command,
    ctx: &Context,
    report: &mut Report,
    done: fn(&mut Report),
) {
    for id in ids {
        let handled =
            handle("event", *id, || Ok(drive(*id, make(), ctx).map_err(Failure::from)?.is_some()));
        count(report, handled, done);
    }
}

/// Who runs a pass, and so which duties it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duties {
    /// `cte_run_maintenance()`: everything, in the caller's transaction; the feed is
    /// sequenced only when no worker serves this database (else the worker does it, and a
    /// caller's open transaction must not hold the sequencer's lock: SPEC §12).
    Everything { sequence: bool },
    /// The feed worker: sequence and announce changes, expire liens, fold system deltas. It
    /// never runs an executor, so nothing a step does can hold the feed or an expiry.
    Feed,
    /// The events worker: scheduled starts, deadlines, compensation timeouts, retries (where
    /// executors run).
    Events,
}

/// One pass over at most `items_max` items; returns what it did and whether it used them all
/// (so more may be waiting).
/// Runs in the caller's transaction: each item in a subtransaction of its own.
pub fn pass(ctx: &Context, items_max: usize, duties: Duties) -> (Report, bool) {
    let mut report = Report::default();
    let sequence = matches!(duties, Duties::Feed | Duties::Everything { sequence: true });
    if sequence {
        // The feed worker announces after its pass commits, in a transaction of its own: a
        // NOTIFY that fails at commit (PostgreSQL's queue full, a listener that never reads)
        // must not roll back the sequencing and the expiries (SPEC §12).
        sequence_feed(&mut report, duties != Duties::Feed);
    }
    let mut left = items_max;
    if duties != Duties::Feed {
        left = pass_events(ctx, left, &mut report);
    }
    if duties != Duties::Events {
        left = expire_liens(ctx, left, &mut report);
        // The feed worker does not wait for another's fold (SPEC §12); a caller does.
        report.system_deltas_folded = ledger::fold_system_balances(duties != Duties::Feed);
    }
    (report, left == 0)
}

fn sequence_feed(report: &mut Report, announce_now: bool) {
    if let Some((moved, newest)) = changes::sequence(CHANGE_ROWS_PER_SEQUENCE_MAX) {
        report.changes_sequenced = moved;
        if moved > 0 && announce_now {
            report.notifications_sent = i64::from(announce(newest));
        } else if moved > 0 {
            report.to_announce = Some(newest);
        }
    }
}

/// Announces `newest` to the feed's listeners (`NOTIFY cte_events`), in the caller's
/// transaction, if the server's NOTIFY queue has room; whether it did.
pub fn announce(newest: i64) -> bool {
    let room = changes::notify_queue_has_room();
    if room {
        changes::notify(newest);
    }
    room
}

/// The events' duties; returns how many items are left of `left`.
fn pass_events(ctx: &Context, mut left: usize, report: &mut Report) -> usize {
    let scheduled = store_maintenance::candidates(Candidates::Scheduled, left);
    left -= scheduled.len();
    for id in &scheduled {
        let handled = handle("event", *id, || Ok(super::schedule::start_due(*id, ctx)?.is_some()));
        count(report, handled, |r| r.events_started += 1);
    }
    let overdue = store_maintenance::candidates(Candidates::OverdueEvents, left);
    left -= overdue.len();
    drive_each(&overdue, || Command::Deadline, ctx, report, |r| r.events_timed_out += 1);
    let timeout_ms = ctx.config.compensation_timeout_ms;
    let compensations =
        store_maintenance::candidates(Candidates::OverdueCompensations { timeout_ms }, left);
    left -= compensations.len();
    drive_each(
        &compensations,
        || Command::CompensationOverdue,
        ctx,
        report,
        |r| r.compensations_timed_out += 1,
    );
    left = expire_leases(ctx, left, report);
    let mut retries = store_maintenance::candidates(Candidates::DueRetries, left);
    retries.retain(|id| !overdue.contains(id)); // timed out first: nothing left to retry
    left -= retries.len();
    drive_each(&retries, || Command::RetryDue, ctx, report, |r| r.events_retried += 1);
    left
}

/// Ends the leases that ran out (SPEC §10): an execution's lease that ran out is a try-again
/// failure of that attempt (retried while attempts remain, else the step fails for good and its
/// event compensates); a compensation's is just ended, the step claimable again. Returns how
/// many items are left of `left`.
fn expire_leases(ctx: &Context, mut left: usize, report: &mut Report) -> usize {
    let expired = crate::store::leases::expired(i64::try_from(left).unwrap_or(0));
    left -= expired.len();
    for lease in &expired {
        let handled = handle("lease of transaction", lease.step_id, || {
            if lease.executing {
                let command = Command::Report {
                    step_id: lease.step_id,
                    report: cte_ctel_core::engine::StepReport::Failed { retryable: true },
                    result: None,
                    error: Some(format!("the lease of {:?} expired", lease.worker)),
                };
                // Its event held elsewhere: left for a later pass, lease and all.
                if drive(lease.event_id, command, ctx).map_err(Failure::from)?.is_none() {
                    return Ok(false);
                }
            }
            crate::store::leases::clear(lease.step_id);
            Ok(true)
        });
        count(report, handled, |r| r.leases_expired += 1);
    }
    left
}

/// Expires the liens whose time has come; returns how many items are left of `left`.
fn expire_liens(ctx: &Context, mut left: usize, report: &mut Report) -> usize {
    let due_liens = liens::due(i64::try_from(left).unwrap_or(0));
    left -= due_liens.len();
    for lien_id in &due_liens {
        let handled =
            handle("lien", *lien_id, || Ok(liens::expire_if_due(*lien_id, ctx.actor.clone())?));
        count(report, handled, |r| r.liens_expired += 1);
    }
    left
}

/// Records a finished pass (or a worker's tick of several) for monitoring.
pub fn record_pass(duration_ms: i64, report: &Report) {
    store_maintenance::record_pass(duration_ms, report.to_json(), report.last_failure.as_deref());
}
