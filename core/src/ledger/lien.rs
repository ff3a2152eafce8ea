//! Liens: funds reserved on a wallet. A lien lives `pending` (made for an event that has not
//! started), `active` (its amount counted in the balance's `reserved`), then ends `captured`
//! (moved to a destination, any remainder given back), `released` or `expired`.

use rust_decimal::Decimal;

use crate::error::CteError;
use crate::money::{Amount, Currency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LienStatus {
    Pending,
    Active,
    Captured,
    Released,
    Expired,
}

/// What happens to a lien.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LienInput {
    Activate,
    Capture,
    Release,
    Expire,
}

impl LienStatus {
    pub const ALL: [LienStatus; 5] = [
        LienStatus::Pending,
        LienStatus::Active,
        LienStatus::Captured,
        LienStatus::Released,
        LienStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LienStatus::Pending => "pending",
            LienStatus::Active => "active",
            LienStatus::Captured => "captured",
            LienStatus::Released => "released",
            LienStatus::Expired => "expired",
        }
    }

    /// The status named `text`; `None` for a name that is not one (a table CHECK prevents it).
    pub fn parse(text: &str) -> Option<LienStatus> {
        let status = LienStatus::ALL.into_iter().find(|status| status.as_str() == text);
        assert!(status.is_none_or(|status| status.as_str() == text), "a status reads back");
        status
    }

    /// Whether the lien's amount is counted in its balance's `reserved`.
    pub fn reserves(self) -> bool {
        let reserves = self == LienStatus::Active;
        // An ended lien holds nothing: its funds were moved or given back as it ended.
        assert!(!reserves || !self.is_final());
        reserves
    }

    /// Whether the lien has ended (captured, released or expired).
    pub fn is_final(self) -> bool {
        matches!(self, LienStatus::Captured | LienStatus::Released | LienStatus::Expired)
    }
}

impl LienInput {
    pub const ALL: [LienInput; 4] =
        [LienInput::Activate, LienInput::Capture, LienInput::Release, LienInput::Expire];

    fn name(self) -> &'static str {
        match self {
            LienInput::Activate => "activate",
            LienInput::Capture => "capture",
            LienInput::Release => "release",
            LienInput::Expire => "expire",
        }
    }
}

/// Every allowed lien transition; any other pair is refused.
pub fn lien_transition(from: LienStatus, input: LienInput) -> Result<LienStatus, CteError> {
    use LienInput as I;
    use LienStatus as S;
    let to = match (from, input) {
        (S::Pending, I::Activate) => Ok(S::Active),
        (S::Pending, I::Release) => Ok(S::Released),
        (S::Pending, I::Expire) => Ok(S::Expired),
        (S::Active, I::Capture) => Ok(S::Captured),
        (S::Active, I::Release) => Ok(S::Released),
        (S::Active, I::Expire) => Ok(S::Expired),
        (from, input) => Err(CteError::TransitionNotAllowed {
            what: "lien",
            from: from.as_str(),
            input: input.name(),
        }),
    };
    // Every move goes forward (a final lien moves no more) and lands where it reserves or ends.
    if let Ok(to) = to {
        assert!(!from.is_final());
        assert!(to > from);
        assert!(to.reserves() || to.is_final());
    }
    to
}

/// How a capture splits what a lien still holds: what moves to the destination, and what it
/// holds after. `requested` of `None` captures everything; a requested amount is already in the
/// lien's currency and scale (the caller parsed it so).
pub fn capture_split(
    held: Decimal,
    requested: Option<Decimal>,
) -> Result<(Decimal, Decimal), CteError> {
    assert!(held.is_sign_positive() && !held.is_zero(), "an active lien holds something");
    let captured = requested.unwrap_or(held);
    // A non-positive request is refused when its amount is parsed (`amount_invalid`).
    assert!(captured.is_sign_positive() && !captured.is_zero());
    if captured > held {
        return Err(CteError::CaptureExceedsLien {
            amount: captured.to_string(),
            held: held.to_string(),
        });
    }
    let remainder = held.checked_sub(captured);
    assert!(remainder.is_some_and(|r| !r.is_sign_negative()));
    let remainder = remainder.unwrap_or_default();
    // Nothing made or lost: what moves and what stays add up to what was held.
    assert_eq!(captured.checked_add(remainder), Some(held));
    Ok((captured, remainder))
}

/// A lien as its machine sees it, read under its row lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Lien {
    pub status: LienStatus,
    /// The amount first held.
    pub amount: Decimal,
    /// What captures have taken of it so far.
    pub captured: Decimal,
    /// When it expires, in microseconds since the Unix epoch (the unit of `now`); `None`: never.
    pub expires_at: Option<i64>,
    /// Held for a step of an event: its event's drive moves it, the API may not.
    pub of_step: bool,
}

impl Lien {
    /// What it still holds: the amount first held less what captures took.
    pub fn outstanding(&self) -> Decimal {
        // The table's CHECK and every capture (`capture_split`) keep captures within the lien.
        let left = self.amount.checked_sub(self.captured);
        assert!(left.is_some_and(|left| !left.is_sign_negative()), "captures within the lien");
        let left = left.unwrap_or_default();
        assert!(left <= self.amount, "what is left is part of what was held");
        left
    }

    /// Whether, at `now`, it counts as expired although not marked so yet: its `expires_at`
    /// has passed and it has not ended. Every function treats it as expired from then on.
    pub fn overdue(&self, now: i64) -> bool {
        let overdue = !self.status.is_final() && self.expires_at.is_some_and(|at| at <= now);
        assert!(!overdue || self.expires_at.is_some(), "only a lien that expires is overdue");
        overdue
    }

    /// What it reserves on its wallet now.
    fn reserved(&self) -> Decimal {
        let reserved = if self.status.reserves() { self.outstanding() } else { Decimal::ZERO };
        assert!(!reserved.is_sign_negative() && reserved <= self.amount);
        reserved
    }
}

/// What is asked of a lien, and by whom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LienAsk<'a> {
    /// Its event starts: a pending lien takes its funds, or expires if it is overdue.
    EventStarts,
    /// `ctel_release_lien`: the API gives its funds back (`reason`: the caller's words).
    Release { reason: Option<&'a str> },
    /// `ctel_capture_lien`: moves `requested` (the caller's text, an amount of the lien's
    /// `currency`, parsed only once the lien may be captured; `None`: all it holds); `last`
    /// ends the lien and gives back the rest.
    Capture { requested: Option<&'a str>, currency: &'a Currency, last: bool },
    /// Its event or its step ended without it: given back, whatever its expiry.
    Ended { reason: &'a str },
    /// Its step's event completes: the step's postings take all it holds.
    StepCompletes,
    /// The maintenance pass, or a posting short of funds that overdue liens hold.
    ExpireIfDue,
}

/// What a wallet's `reserved` does as a lien moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    Unchanged,
    /// Reserves this much more (a pending lien's funds, as its event starts).
    Hold(Decimal),
    /// Gives this much back.
    GiveBack(Decimal),
}

/// What the shell does for a lien's move: write its status, change its wallet's reserve, and
/// for a capture post `moved` to the destination.
#[derive(Debug, Clone, PartialEq)]
pub struct LienEffects {
    pub from: LienStatus,
    pub to: LienStatus,
    pub reserve: Reserve,
    /// A capture's amount, to post from the lien's wallet to its destination.
    pub moved: Option<Decimal>,
    /// What captures have taken of it after this move.
    pub captured: Decimal,
    /// Written on the lien (`None`: none, as for an activation).
    pub reason: Option<String>,
}

/// The lien machine: what `ask` does to `lien` at `now` (PostgreSQL's statement time, in the
/// unit of `expires_at`). `Ok(None)`: nothing to do (a release sent again; an expiry of a lien
/// no longer due). Refusals change nothing.
pub fn handle(lien: &Lien, ask: LienAsk, now: i64) -> Result<Option<LienEffects>, CteError> {
    assert!(lien.captured <= lien.amount && !lien.captured.is_sign_negative());
    let overdue = lien.overdue(now);
    let effects = match ask {
        LienAsk::EventStarts if overdue => Some(moved(lien, LienInput::Expire, Some("expired"))?),
        LienAsk::EventStarts => Some(moved(lien, LienInput::Activate, None)?),
        // A release sent again (SPEC §9): the lien is already where it asked.
        LienAsk::Release { .. } if lien.status == LienStatus::Released && !lien.of_step => None,
        LienAsk::Release { reason } => {
            refuse_by_api(lien, overdue, "release")?;
            Some(moved(lien, LienInput::Release, Some(reason.unwrap_or("released")))?)
        }
        LienAsk::Capture { requested, currency, last } => {
            refuse_by_api(lien, overdue, "capture")?;
            Some(captured(lien, requested, currency, last)?)
        }
        LienAsk::Ended { reason } => Some(moved(lien, LienInput::Release, Some(reason))?),
        LienAsk::StepCompletes => Some(step_captured(lien)),
        LienAsk::ExpireIfDue if !overdue => None,
        LienAsk::ExpireIfDue => Some(moved(lien, LienInput::Expire, Some("expired"))?),
    };
    match &effects {
        Some(effects) => assert_effects(lien, effects),
        // Only a release sent again, or an expiry of a lien no longer due, does nothing.
        None => assert!(matches!(ask, LienAsk::Release { .. } | LienAsk::ExpireIfDue)),
    }
    Ok(effects)
}

/// The API moves neither a step's lien (its event's drive does) nor one that counts as
/// expired although the worker has not marked it yet.
fn refuse_by_api(lien: &Lien, overdue: bool, input: &'static str) -> Result<(), CteError> {
    if lien.of_step {
        return Err(CteError::TransitionNotAllowed {
            what: "lien",
            from: "held by a transaction",
            input,
        });
    }
    if overdue {
        return Err(CteError::TransitionNotAllowed { what: "lien", from: "expired", input });
    }
    Ok(())
}

/// A move by `input` alone: its funds reserved or given back as its new status asks.
fn moved(lien: &Lien, input: LienInput, reason: Option<&str>) -> Result<LienEffects, CteError> {
    // Captures take money and go through `captured` or `step_captured`.
    assert_ne!(input, LienInput::Capture);
    let to = lien_transition(lien.status, input)?;
    let reserve = match (lien.status.reserves(), to.reserves()) {
        (false, true) => Reserve::Hold(lien.outstanding()),
        (true, false) => Reserve::GiveBack(lien.outstanding()),
        _ => Reserve::Unchanged,
    };
    let reason = reason.map(str::to_string);
    Ok(LienEffects { from: lien.status, to, reserve, moved: None, captured: lien.captured, reason })
}

/// A capture by the API: part or all of what it holds moves; it ends the lien when `last` or
/// when nothing is left, and the rest is given back; otherwise the lien stays active.
fn captured(
    lien: &Lien,
    requested: Option<&str>,
    currency: &Currency,
    last: bool,
) -> Result<LienEffects, CteError> {
    lien_transition(lien.status, LienInput::Capture)?;
    let requested = requested.map(|text| Amount::parse(text, currency)).transpose()?;
    let requested = requested.map(|amount| amount.value());
    let outstanding = lien.outstanding();
    let (taken, remainder) = capture_split(outstanding, requested)?;
    assert!(taken <= outstanding && remainder < outstanding);
    let ends = last || remainder.is_zero();
    // The moved part leaves the reserve with the posting; an ending capture gives back the rest.
    let given_back = if ends { outstanding } else { taken };
    let total = lien.captured.checked_add(taken);
    // `taken` is at most what is left of `amount`, so the sum is at most `amount`.
    assert!(total.is_some_and(|total| total <= lien.amount));
    let (to, reason) = if ends {
        (LienStatus::Captured, format!("captured {taken}, released {remainder}"))
    } else {
        (LienStatus::Active, format!("captured {taken}, {remainder} still held"))
    };
    Ok(LienEffects {
        from: lien.status,
        to,
        reserve: Reserve::GiveBack(given_back),
        moved: Some(taken),
        captured: total.unwrap_or(lien.amount),
        reason: Some(reason),
    })
}

/// A step's lien as its event completes: the step's own postings spend all it holds (the
/// lien moves nothing itself), and it ends captured.
fn step_captured(lien: &Lien) -> LienEffects {
    // A step's liens are made active and stay so, locked, until their event ends.
    assert!(lien.of_step, "only a step's lien is captured by its event");
    assert_eq!(lien.status, LienStatus::Active, "a held step's liens are active until captured");
    assert!(lien.captured.is_zero(), "nothing captures a step's lien before its event ends");
    LienEffects {
        from: lien.status,
        to: LienStatus::Captured,
        reserve: Reserve::GiveBack(lien.outstanding()),
        moved: None,
        captured: lien.amount,
        reason: Some("captured as its event completed".to_string()),
    }
}

/// Every move's promises: forward (or active to active for a partial capture), its reserve
/// moving by what the lien held, money neither made nor lost.
fn assert_effects(lien: &Lien, effects: &LienEffects) {
    assert_eq!(effects.from, lien.status);
    assert!(
        effects.to > lien.status || effects.to == LienStatus::Active && effects.moved.is_some()
    );
    assert!(effects.captured >= lien.captured && effects.captured <= lien.amount);
    let held_after = match effects.to.reserves() {
        true => lien.amount - effects.captured,
        false => Decimal::ZERO,
    };
    // Reserved before, less what it gives back, plus what it holds anew, is reserved after.
    let after = match effects.reserve {
        Reserve::Unchanged => lien.reserved(),
        Reserve::Hold(amount) => lien.reserved() + amount,
        Reserve::GiveBack(amount) => lien.reserved() - amount,
    };
    assert_eq!(after, held_after, "a lien's reserve follows what it holds");
    if let Some(moved) = effects.moved {
        assert_eq!(lien.captured + moved, effects.captured, "a capture counts what it moved");
    }
}

/// A capture as recorded under its reference (unique per lien, SPEC §9).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRecorded {
    pub destination: String,
    pub amount: Decimal,
    /// It ended the lien (the lien is `captured` and this was its last capture).
    pub ended_lien: bool,
    /// It ended the lien and gave back a remainder (a `final` capture of less than it held).
    pub released_rest: bool,
}

/// A capture asked again under an earlier capture's reference: whether it is the same request
/// (a replay, which returns the first capture and moves nothing) rather than a conflict. The
/// request is its destination, its amount (none: all the lien held, which the first took
/// only if it ended the lien without a remainder) and `final` (a final capture ends the lien;
/// one that is not gives nothing back).
pub fn capture_is_replay(
    first: &CaptureRecorded,
    destination: &str,
    amount: Option<Decimal>,
    last: bool,
) -> bool {
    assert!(!first.released_rest || first.ended_lien, "only a capture that ended it released");
    // A recorded capture moved something (`capture_split` refuses nothing; entries are non-zero).
    assert!(first.amount.is_sign_positive() && !first.amount.is_zero());
    let same_amount = match amount {
        Some(amount) => amount == first.amount,
        None => first.ended_lien && !first.released_rest,
    };
    let same_final = if last { first.ended_lien } else { !first.released_rest };
    first.destination == destination && same_amount && same_final
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_listed_lien_transitions_are_allowed() {
        use LienInput as I;
        use LienStatus as S;
        let allowed = [
            (S::Pending, I::Activate, S::Active),
            (S::Pending, I::Release, S::Released),
            (S::Pending, I::Expire, S::Expired),
            (S::Active, I::Capture, S::Captured),
            (S::Active, I::Release, S::Released),
            (S::Active, I::Expire, S::Expired),
        ];
        for from in LienStatus::ALL {
            for input in LienInput::ALL {
                let expected = allowed.iter().find(|(f, i, _)| *f == from && *i == input);
                match (lien_transition(from, input), expected) {
                    (Ok(to), Some((_, _, want))) => assert_eq!(to, *want),
                    (Err(error), None) => assert_eq!(error.reason(), "transition_not_allowed"),
                    (got, want) => panic!("{from:?} + {input:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn only_active_liens_reserve() {
        let reserving: Vec<LienStatus> =
            LienStatus::ALL.into_iter().filter(|s| s.reserves()).collect();
        assert_eq!(reserving, vec![LienStatus::Active]);
        for status in LienStatus::ALL {
            assert_eq!(LienStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn a_capture_replays_only_the_same_request() {
        let partial = CaptureRecorded {
            destination: "seller".into(),
            amount: Decimal::new(2000, 2),
            ended_lien: false,
            released_rest: false,
        };
        let twenty = Some(Decimal::new(20, 0));
        assert!(capture_is_replay(&partial, "seller", twenty, false));
        assert!(!capture_is_replay(&partial, "market", twenty, false), "another destination");
        assert!(!capture_is_replay(&partial, "seller", Some(Decimal::new(21, 0)), false));
        assert!(!capture_is_replay(&partial, "seller", None, false), "all is not 20");
        assert!(!capture_is_replay(&partial, "seller", twenty, true), "it did not end the lien");
        let last_with_rest = CaptureRecorded { ended_lien: true, released_rest: true, ..partial };
        assert!(capture_is_replay(&last_with_rest, "seller", twenty, true));
        assert!(!capture_is_replay(&last_with_rest, "seller", twenty, false), "it gave back");
        assert!(!capture_is_replay(&last_with_rest, "seller", None, true), "it took a part");
        let all = CaptureRecorded { released_rest: false, ..last_with_rest };
        assert!(capture_is_replay(&all, "seller", None, true));
        assert!(capture_is_replay(&all, "seller", None, false), "all of it either way");
        assert!(capture_is_replay(&all, "seller", twenty, false));
    }

    #[test]
    fn a_capture_takes_up_to_the_held_amount_and_gives_back_the_rest() {
        let usd = Currency::new("USD", 2).unwrap();
        let amount = |text| Amount::parse(text, &usd).unwrap().value();
        let (captured, remainder) = capture_split(amount("100.00"), Some(amount("30.25"))).unwrap();
        assert_eq!((captured.to_string(), remainder.to_string()), ("30.25".into(), "69.75".into()));
        let (captured, remainder) = capture_split(amount("100.00"), None).unwrap();
        assert_eq!((captured.to_string(), remainder.to_string()), ("100.00".into(), "0.00".into()));
        let too_much = capture_split(amount("100.00"), Some(amount("100.01")));
        assert_eq!(too_much.unwrap_err().reason(), "capture_exceeds_lien");
    }

    fn lien(status: LienStatus, amount: i64, captured: i64) -> Lien {
        Lien {
            status,
            amount: Decimal::new(amount, 2),
            captured: Decimal::new(captured, 2),
            expires_at: Some(1_000),
            of_step: false,
        }
    }

    fn reason_of(result: Result<Option<LienEffects>, CteError>) -> String {
        result.map_or_else(|error| error.reason().to_string(), |_| "ok".to_string())
    }

    #[test]
    fn an_event_start_activates_a_pending_lien_or_expires_an_overdue_one() {
        let pending = lien(LienStatus::Pending, 5000, 0);
        let started = handle(&pending, LienAsk::EventStarts, 999).unwrap().unwrap();
        assert_eq!(
            (started.to, started.reserve),
            (LienStatus::Active, Reserve::Hold(pending.amount))
        );
        assert_eq!(started.reason, None);
        let late = handle(&pending, LienAsk::EventStarts, 1_000).unwrap().unwrap();
        assert_eq!((late.to, late.reserve), (LienStatus::Expired, Reserve::Unchanged));
        let active = lien(LienStatus::Active, 5000, 0);
        assert_eq!(reason_of(handle(&active, LienAsk::EventStarts, 0)), "transition_not_allowed");
    }

    #[test]
    fn the_api_moves_neither_an_overdue_lien_nor_a_steps() {
        let active = lien(LienStatus::Active, 5000, 0);
        let release = LienAsk::Release { reason: None };
        let usd = Currency::new("USD", 2).unwrap();
        let capture = LienAsk::Capture { requested: None, currency: &usd, last: true };
        for ask in [release, capture] {
            assert_eq!(reason_of(handle(&active, ask, 1_000)), "transition_not_allowed");
            assert_eq!(reason_of(handle(&active, ask, 999)), "ok");
            let of_step = Lien { of_step: true, expires_at: None, ..active.clone() };
            assert_eq!(reason_of(handle(&of_step, ask, 0)), "transition_not_allowed");
        }
        // Its event's end gives it back whatever its expiry.
        let ended = handle(&active, LienAsk::Ended { reason: "its event failed" }, 5_000);
        let ended = ended.unwrap().unwrap();
        assert_eq!(
            (ended.to, ended.reserve),
            (LienStatus::Released, Reserve::GiveBack(active.amount))
        );
    }

    #[test]
    fn a_capture_of_a_lien_that_may_not_be_captured_is_refused_before_its_amount_is_read() {
        let usd = Currency::new("USD", 2).unwrap();
        for status in [LienStatus::Pending, LienStatus::Released, LienStatus::Expired] {
            for amount in ["0", "-1", "1.001", "ten"] {
                let ask = LienAsk::Capture { requested: Some(amount), currency: &usd, last: true };
                let refused = handle(&lien(status, 5000, 0), ask, 0);
                assert_eq!(reason_of(refused), "transition_not_allowed", "{status:?} {amount}");
            }
        }
        let active = lien(LienStatus::Active, 5000, 0);
        let ask = LienAsk::Capture { requested: Some("1.001"), currency: &usd, last: true };
        assert_eq!(reason_of(handle(&active, ask, 0)), "amount_scale_exceeded");
    }

    #[test]
    fn a_release_sent_again_changes_nothing() {
        let released = lien(LienStatus::Released, 5000, 0);
        assert_eq!(handle(&released, LienAsk::Release { reason: Some("again") }, 0).unwrap(), None);
        let captured = lien(LienStatus::Captured, 5000, 5000);
        let release = handle(&captured, LienAsk::Release { reason: None }, 0);
        assert_eq!(reason_of(release), "transition_not_allowed");
    }

    #[test]
    fn partial_captures_keep_the_rest_reserved_until_the_last() {
        let usd = Currency::new("USD", 2).unwrap();
        let mut state = lien(LienStatus::Active, 10_000, 0);
        let part = LienAsk::Capture { requested: Some("30.00"), currency: &usd, last: false };
        let first = handle(&state, part, 0).unwrap().unwrap();
        assert_eq!((first.to, first.moved), (LienStatus::Active, Some(Decimal::new(3_000, 2))));
        assert_eq!(first.reserve, Reserve::GiveBack(Decimal::new(3_000, 2)));
        state.captured = first.captured;
        let last = LienAsk::Capture { requested: Some("10.00"), currency: &usd, last: true };
        let second = handle(&state, last, 0).unwrap().unwrap();
        assert_eq!(second.to, LienStatus::Captured);
        // The last capture gives back all it still held: 70.00, of which 10.00 moved.
        assert_eq!(second.reserve, Reserve::GiveBack(Decimal::new(7_000, 2)));
        assert_eq!(second.captured, Decimal::new(4_000, 2));
        assert_eq!(second.reason.as_deref(), Some("captured 10.00, released 60.00"));
        let greedy = LienAsk::Capture { requested: Some("70.01"), currency: &usd, last: false };
        assert_eq!(reason_of(handle(&state, greedy, 0)), "capture_exceeds_lien");
    }

    #[test]
    fn only_a_due_lien_expires() {
        let active = lien(LienStatus::Active, 5000, 1000);
        assert_eq!(handle(&active, LienAsk::ExpireIfDue, 999).unwrap(), None);
        let expired = handle(&active, LienAsk::ExpireIfDue, 1_000).unwrap().unwrap();
        assert_eq!(expired.reserve, Reserve::GiveBack(Decimal::new(4000, 2)));
        let never = Lien { expires_at: None, ..active.clone() };
        assert_eq!(handle(&never, LienAsk::ExpireIfDue, i64::MAX).unwrap(), None);
        let ended = Lien { status: LienStatus::Released, ..active };
        assert_eq!(handle(&ended, LienAsk::ExpireIfDue, i64::MAX).unwrap(), None);
    }

    #[test]
    fn a_completing_step_captures_its_lien_whole() {
        let held = Lien { of_step: true, expires_at: None, ..lien(LienStatus::Active, 5000, 0) };
        let done = handle(&held, LienAsk::StepCompletes, 0).unwrap().unwrap();
        assert_eq!((done.to, done.captured, done.moved), (LienStatus::Captured, held.amount, None));
        assert_eq!(done.reserve, Reserve::GiveBack(held.amount));
    }

    /// Any sequence of asks keeps the reserve equal to what the lien holds while active, and
    /// the captured total within the amount (`assert_effects` checks each move).
    #[test]
    fn random_asks_keep_the_reserve_equal_to_what_is_held() {
        let usd = Currency::new("USD", 2).unwrap();
        let mut seed: u64 = 0x5eed;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..2_000 {
            let mut state = lien(LienStatus::Pending, 10_000, 0);
            let mut reserved = Decimal::ZERO;
            for _ in 0..6 {
                let requested = Decimal::new(i64::try_from(next(12_000)).unwrap(), 2);
                let text = requested.to_string();
                let ask = match next(6) {
                    0 => LienAsk::EventStarts,
                    1 => LienAsk::Release { reason: None },
                    2 => LienAsk::Capture {
                        requested: Some(&text),
                        currency: &usd,
                        last: next(2) == 0,
                    },
                    3 => LienAsk::Capture { requested: None, currency: &usd, last: false },
                    4 => LienAsk::Ended { reason: "ended" },
                    _ => LienAsk::ExpireIfDue,
                };
                let now = i64::try_from(next(1_200)).unwrap();
                if requested.is_zero() {
                    continue;
                }
                if let Ok(Some(effects)) = handle(&state, ask, now) {
                    reserved = match effects.reserve {
                        Reserve::Unchanged => reserved,
                        Reserve::Hold(amount) => reserved + amount,
                        Reserve::GiveBack(amount) => reserved - amount,
                    };
                    state.status = effects.to;
                    state.captured = effects.captured;
                }
                let held =
                    if state.status.reserves() { state.outstanding() } else { Decimal::ZERO };
                assert_eq!(reserved, held);
            }
        }
    }
}
