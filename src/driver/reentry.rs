//! The events this backend is driving right now. A step runs inside its event's drive, and a
//! step's code (a custom executor, a trigger it fires) can call back into the engine: starting
//! the same event again there would run its steps twice (a transfer posted twice), and
//! cancelling it, adding to it or holding funds for it would change it under its own drive.
//! The event's row lock cannot stop that: this backend holds it. So each drive marks its event
//! here, and every path into an event asks first.
//!
//! This is backend-local state that the database cannot hold (which drives are on this
//! backend's stack), in one place: marked by a guard that unmarks on every way out, panics
//! included, and cleared at the end of every transaction that marked anything.

use std::cell::RefCell;
use std::collections::BTreeSet;

use cte_ctel_core::CteError;
use pgrx::{register_xact_callback, PgXactCallbackEvent, Uuid};

thread_local! {
    static DRIVING: RefCell<BTreeSet<[u8; 16]>> = const { RefCell::new(BTreeSet::new()) };
}

/// The refusal for a call that would re-enter an event being driven.
pub fn refusal(input: &'static str) -> CteError {
    CteError::TransitionNotAllowed { what: "event", from: "being run by this session", input }
}

/// Whether this backend is driving `event_id` now.
pub fn is_driving(event_id: Uuid) -> bool {
    DRIVING.with(|driving| driving.borrow().contains(event_id.as_bytes()))
}

/// Whether this backend is driving any event now (maintenance must not run inside a step).
pub fn is_driving_any() -> bool {
    DRIVING.with(|driving| !driving.borrow().is_empty())
}

/// Refuses `input` on an event being driven here.
pub fn refuse_if_driving(event_id: Uuid, input: &'static str) -> Result<(), CteError> {
    if is_driving(event_id) {
        return Err(refusal(input));
    }
    Ok(())
}

/// Marks `event_id` as driven until the guard is dropped; refused if it already is.
pub fn enter(event_id: Uuid, input: &'static str) -> Result<Driving, CteError> {
    let first = DRIVING.with(|driving| {
        let mut driving = driving.borrow_mut();
        let first = driving.is_empty();
        driving.insert(*event_id.as_bytes()).then_some(first)
    });
    match first {
        None => Err(refusal(input)),
        Some(first) => {
            if first {
                // Belt and braces: a drive abandoned by a longjmp past its guard is forgotten
                // when its transaction ends.
                register_xact_callback(PgXactCallbackEvent::Abort, clear);
                register_xact_callback(PgXactCallbackEvent::Commit, clear);
            }
            Ok(Driving(event_id))
        }
    }
}

fn clear() {
    DRIVING.with(|driving| driving.borrow_mut().clear());
}

/// An event marked as driven by this backend; unmarked when dropped.
pub struct Driving(Uuid);

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.with(|driving| driving.borrow_mut().remove(self.0.as_bytes()));
    }
}
