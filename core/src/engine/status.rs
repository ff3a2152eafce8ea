//! Event and step statuses, with the text each has in SQL.

use crate::error::CteError;
use crate::ledger::LienStatus;

/// Where an event is in its life. At rest (between transactions) an event is never `Running`:
/// a run ends in the same transaction as `Waiting`, `Completed`, `Compensating` (waiting on an
/// external compensation), `Compensated` or `Failed` (a compensation was refused: an operator
/// retries it or resolves the event, which ends it `Resolved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventStatus {
    Created,
    Running,
    Waiting,
    Completed,
    Compensating,
    Compensated,
    Failed,
    Resolved,
}

/// Where a step (SPEC's "transaction") is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepStatus {
    Pending,
    Running,
    Waiting,
    Completed,
    Failed,
    Compensating,
    Compensated,
}

impl EventStatus {
    pub const ALL: [EventStatus; 8] = [
        EventStatus::Created,
        EventStatus::Running,
        EventStatus::Waiting,
        EventStatus::Completed,
        EventStatus::Compensating,
        EventStatus::Compensated,
        EventStatus::Failed,
        EventStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Created => "created",
            EventStatus::Running => "running",
            EventStatus::Waiting => "waiting",
            EventStatus::Completed => "completed",
            EventStatus::Compensating => "compensating",
            EventStatus::Compensated => "compensated",
            EventStatus::Failed => "failed",
            EventStatus::Resolved => "resolved",
        }
    }

    /// How a lien made for an event in this status begins: `pending` until a created event
    /// starts, `active` at once for one under way; refused for an event that has ended (or is
    /// compensating), which holds no new funds.
    pub fn new_lien(self) -> Result<LienStatus, CteError> {
        let status = match self {
            EventStatus::Created => LienStatus::Pending,
            EventStatus::Running | EventStatus::Waiting => LienStatus::Active,
            EventStatus::Completed
            | EventStatus::Compensating
            | EventStatus::Compensated
            | EventStatus::Failed
            | EventStatus::Resolved => {
                return Err(CteError::TransitionNotAllowed {
                    what: "event",
                    from: self.as_str(),
                    input: "hold funds for",
                })
            }
        };
        // A lien begins before it holds anything final: it can still be released or expire.
        assert!(!status.is_final());
        assert_eq!(status.reserves(), !matches!(self, EventStatus::Created));
        Ok(status)
    }

    /// The status named `text`; `None` for a name that is not one (a table CHECK prevents it).
    pub fn parse(text: &str) -> Option<EventStatus> {
        let status = EventStatus::ALL.into_iter().find(|status| status.as_str() == text);
        assert!(status.is_none_or(|status| status.as_str() == text), "a status reads back");
        status
    }

    /// Completed, compensated and resolved events never change again.
    pub fn is_final(self) -> bool {
        matches!(self, EventStatus::Completed | EventStatus::Compensated | EventStatus::Resolved)
    }

    /// Whether the event has a `finished_at`: it ended, or it failed and awaits an operator.
    pub fn is_finished(self) -> bool {
        let finished = self.is_final() || self == EventStatus::Failed;
        // The ones still moving: the saga leaves none of them with a `finished_at`.
        let moving = matches!(self, EventStatus::Created | EventStatus::Running)
            || matches!(self, EventStatus::Waiting | EventStatus::Compensating);
        assert_ne!(finished, moving, "an event is finished or still moving, never both");
        finished
    }
}

impl StepStatus {
    pub const ALL: [StepStatus; 7] = [
        StepStatus::Pending,
        StepStatus::Running,
        StepStatus::Waiting,
        StepStatus::Completed,
        StepStatus::Failed,
        StepStatus::Compensating,
        StepStatus::Compensated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Compensating => "compensating",
            StepStatus::Compensated => "compensated",
        }
    }

    /// The status named `text`; `None` for a name that is not one (a table CHECK prevents it).
    pub fn parse(text: &str) -> Option<StepStatus> {
        let status = StepStatus::ALL.into_iter().find(|status| status.as_str() == text);
        assert!(status.is_none_or(|status| status.as_str() == text), "a status reads back");
        status
    }
}

impl std::fmt::Display for EventStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lien_for_an_event_is_pending_before_its_start_active_during_refused_after() {
        let begins = |status: EventStatus| status.new_lien().map_err(|e| e.reason());
        assert_eq!(begins(EventStatus::Created), Ok(LienStatus::Pending));
        assert_eq!(begins(EventStatus::Running), Ok(LienStatus::Active));
        assert_eq!(begins(EventStatus::Waiting), Ok(LienStatus::Active));
        for ended in &EventStatus::ALL[3..] {
            assert_eq!(begins(*ended), Err("transition_not_allowed"));
        }
    }

    #[test]
    fn statuses_round_trip_through_their_sql_text() {
        for status in EventStatus::ALL {
            assert_eq!(EventStatus::parse(status.as_str()), Some(status));
        }
        for status in StepStatus::ALL {
            assert_eq!(StepStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(EventStatus::parse("done"), None);
        assert_eq!(StepStatus::parse(""), None);
    }
}
