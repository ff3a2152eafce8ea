//! Scheduled starts (`cte_start_event(event_id, not_before)`): an event still `created` is given
//! the time to start at, and its start-by deadline is counted from that time. Until then it
//! stays `created` (its liens pending, cancellable); the worker starts it when the time comes.
//! A start the worker cannot make (a pending lien its wallet cannot cover now) cancels it, the
//! refusal its error: a scheduled payment either runs at its time or ends.

use cte_ctel_core::engine::{event_allows, EventAsk, EventStatus};
use cte_ctel_core::CteError;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::Uuid;

use super::{drive, reentry, Command, Context};
use crate::store::changes::{self, Batch, Change, Kind};
use crate::store::events;
use crate::store::subtransaction::{self, Failure};

/// Schedules a `created` event to start at `not_before` (in the future); returns its status.
pub fn schedule(
    event_id: Uuid,
    not_before: TimestampWithTimeZone,
    ctx: &Context,
) -> Result<EventStatus, CteError> {
    let _driving = reentry::enter(event_id, "schedule")?;
    let status = events::lock_event(event_id)?.status;
    event_allows(status, EventAsk::Schedule)?;
    events::schedule(event_id, not_before);
    changes::record(&Batch {
        event_id: Some(event_id),
        actor: ctx.actor.clone(),
        reason: Some(format!("scheduled to start at {not_before}")),
        changes: vec![Change {
            kind: Kind::Event,
            transaction_id: None,
            lien_id: None,
            old_status: Some(EventStatus::Created.as_str()),
            new_status: EventStatus::Created.as_str(),
        }],
        ..Batch::default()
    });
    Ok(status)
}

/// The worker's start of a scheduled event whose time has come. A start refused (the drive's
/// writes rolled back) cancels the event instead, with the refusal as its reason. `Ok(None)`:
/// another session holds the event, or it is no longer due: the worker listed it without its
/// lock, and meanwhile the application started, cancelled or rescheduled it (SPEC §9). That
/// race is no failure, and the event is left alone.
pub fn start_due(event_id: Uuid, ctx: &Context) -> Result<Option<EventStatus>, Failure> {
    if !events::lock_if_due(event_id, ctx.now_ms, ctx.wait) {
        return Ok(None);
    }
    let started = subtransaction::run(|| {
        drive(event_id, Command::Start, ctx).map_err(|error| Failure::from_refusal(&error))
    });
    match started {
        Err(failure) if failure.sqlstate.starts_with(cte_ctel_core::error::SQLSTATE_CLASS) => {
            let reason = Some(format!("could not start at its time: {}", failure.message));
            drive(event_id, Command::Cancel { reason }, ctx).map_err(Failure::from)
        }
        other => other,
    }
}
