//! Liens: funds reserved on a wallet. A lien lives `pending` (made for an event that has not
//! started), `active` (its amount counted in the balance's `reserved`), then ends `captured`
//! (moved to a destination, any remainder given back), `released` or `expired`.

use rust_decimal::Decimal;

use crate::error::CteError;
use crate::money::Amount;

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
        LienStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the lien's amount is counted in its balance's `reserved`.
    pub fn reserves(self) -> bool {
        self == LienStatus::Active
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
/// holds after. `requested` of `None` captures everything.
pub fn capture_split(
    held: &Amount,
    requested: Option<&Amount>,
) -> Result<(Decimal, Decimal), CteError> {
    let captured = requested.map_or(held.value(), Amount::value);
    if captured > held.value() {
        return Err(CteError::CaptureExceedsLien {
            amount: captured.to_string(),
            held: held.value().to_string(),
        });
    }
    let remainder = held.value().checked_sub(captured);
    assert!(remainder.is_some_and(|r| !r.is_sign_negative()));
    let remainder = remainder.unwrap_or_default();
    // Nothing made or lost: what moves and what stays add up to what was held.
    assert_eq!(captured.checked_add(remainder), Some(held.value()));
    assert!(captured.is_sign_positive());
    assert!(!captured.is_zero());
    Ok((captured, remainder))
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
    use crate::money::Currency;

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
        let held = Amount::parse("100.00", &usd).unwrap();
        let part = Amount::parse("30.25", &usd).unwrap();
        let (captured, remainder) = capture_split(&held, Some(&part)).unwrap();
        assert_eq!((captured.to_string(), remainder.to_string()), ("30.25".into(), "69.75".into()));
        let (captured, remainder) = capture_split(&held, None).unwrap();
        assert_eq!((captured.to_string(), remainder.to_string()), ("100.00".into(), "0.00".into()));
        let too_much = Amount::parse("100.01", &usd).unwrap();
        assert_eq!(
            capture_split(&held, Some(&too_much)).unwrap_err().reason(),
            "capture_exceeds_lien"
        );
    }
}
