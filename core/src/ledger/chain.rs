//! The journal's hash chains: each wallet balance's entries form a chain whose every link is
//! the SHA-256 of the link before it and of the whole posting the entry belongs to (all its
//! entries, system-account legs included) and the balance the entry left. A rewritten, removed
//! or inserted entry breaks every link after it on each wallet the posting touched; the links
//! are written with the entries (at insert only) under the wallet's lock, so they add no
//! contention. The bytes hashed are spelled out here once, and `sql/chains.sql` builds the same
//! bytes from stored rows (the upgrade and the checks): the two must agree, and
//! `pg_test/sql/26_chains.sql` proves they do.

use sha2::{Digest, Sha256};

/// A link of a chain.
pub type Link = [u8; 32];

/// The link before a wallet's first entry.
pub const GENESIS: Link = [0; 32];

/// The first line of every posting's canonical text: the version of the bytes hashed.
const CANONICAL_VERSION: &str = "cte_ctel/2\n";

/// The fewest bytes one entry adds to a canonical text: eight fields of at least one byte
/// each (`~`), and its newline.
const CANONICAL_ENTRY_BYTES_MIN: usize = 9;

/// One journal entry as its posting's canonical text covers it.
#[derive(Debug, Clone, Copy)]
pub struct EntryText<'a> {
    pub account_id: &'a str,
    pub kind: &'a str,
    pub currency: &'a str,
    /// Decimal text at the currency's scale, as PostgreSQL prints the stored `numeric`.
    pub amount: &'a str,
    pub reference: Option<&'a str>,
    /// The step that made the posting (a compensation or refund reverses by it).
    pub transaction_id: Option<&'a str>,
    /// The lien whose capture made it.
    pub lien_id: Option<&'a str>,
    /// When it was written: microseconds since the Unix epoch.
    pub created_at_us: i64,
}

/// Appends one field, unambiguously: its length in bytes, a colon and the bytes; `~` for none.
/// No value can end a field early or forge the next, whatever bytes it holds.
fn field(text: &mut String, value: Option<&str>) {
    let length_before = text.len();
    match value {
        Some(value) => {
            text.push_str(&value.len().to_string());
            text.push(':');
            text.push_str(value);
            // The length prefix, the colon and the value, nothing else: the field is readable.
            assert!(text.len() > length_before + value.len());
            assert!(text.ends_with(value));
        }
        None => {
            text.push('~');
            assert_eq!(text.len(), length_before + 1);
        }
    }
}

/// A posting's canonical text: a version tag and its id, then every one of its entries in the
/// posting's order, each with every column that says what it moved and why (account, kind,
/// currency, amount, reference, step, lien, time). Rebuilt from stored rows, any entry added to
/// the posting, removed from it or changed in any of those columns changes the text.
pub fn canonical(posting_id: &str, entries: &[EntryText<'_>]) -> String {
    // A whole posting, never a half one: `Posting::assert_balanced` holds every posting to two
    // entries at least before it is written.
    assert!(entries.len() >= 2, "a posting's canonical text covers all its entries");
    let mut text = format!("{CANONICAL_VERSION}{posting_id}\n");
    let header_bytes = text.len();
    for entry in entries {
        field(&mut text, Some(entry.account_id));
        field(&mut text, Some(entry.kind));
        field(&mut text, Some(entry.currency));
        field(&mut text, Some(entry.amount));
        field(&mut text, entry.reference);
        field(&mut text, entry.transaction_id);
        field(&mut text, entry.lien_id);
        field(&mut text, Some(&entry.created_at_us.to_string()));
        text.push('\n');
    }
    // Every entry added its fields (`link` checks the version again where it hashes the text).
    assert!(text.starts_with(CANONICAL_VERSION));
    assert!(text.len() >= header_bytes + entries.len() * CANONICAL_ENTRY_BYTES_MIN);
    text
}

/// A decimal's text as PostgreSQL prints the same `numeric`: never a negative zero.
pub fn decimal_text(value: &rust_decimal::Decimal) -> String {
    let text = if value.is_zero() {
        let mut zero = *value;
        zero.set_sign_positive(true);
        zero.to_string()
    } else {
        value.to_string()
    };
    // No negative zero, and every decimal of the value's scale printed (`1.50`, not `1.5`):
    // `sql/chains.sql` rebuilds the same text from the stored `numeric`.
    assert!(!(value.is_zero() && text.starts_with('-')));
    assert_eq!(
        text.split_once('.').map_or(0, |(_, fraction)| fraction.len()),
        value.scale() as usize
    );
    text
}

/// The link of one wallet entry: the wallet's previous link, the posting's canonical text, and
/// the entry's account and the balance after it (as fields).
pub fn link(previous: &Link, canonical: &str, account: &str, balance_after: &str) -> Link {
    // The text `canonical` built (it checks the version where it writes it).
    assert!(canonical.starts_with(CANONICAL_VERSION));
    let mut tail = String::new();
    field(&mut tail, Some(account));
    field(&mut tail, Some(balance_after));
    let mut hash = Sha256::new();
    hash.update(previous);
    hash.update(canonical.as_bytes());
    hash.update(tail.as_bytes());
    let link: Link = hash.finalize().into();
    // A link is never the genesis value, so no entry's link can pass for "no entry before".
    assert_ne!(link, GENESIS);
    // Nor its predecessor: each entry moves the chain on.
    assert_ne!(link, *previous);
    link
}

/// A link as a stored `bytea` may hold it: exactly 32 bytes, or none.
pub fn from_bytes(bytes: &[u8]) -> Option<Link> {
    let link: Option<Link> = bytes.try_into().ok();
    assert_eq!(link.is_some(), bytes.len() == GENESIS.len());
    link
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn entry<'a>(account_id: &'a str, amount: &'a str) -> EntryText<'a> {
        EntryText {
            account_id,
            kind: "transfer",
            currency: "USD",
            amount,
            reference: Some("r"),
            transaction_id: Some("t"),
            lien_id: None,
            created_at_us: 1_700_000_000_000_000,
        }
    }

    #[test]
    fn a_link_covers_the_previous_link_the_whole_posting_and_the_balance() {
        let posting = canonical("p1", &[entry("a", "-1.00"), entry("b", "1.00")]);
        assert_eq!(
            posting,
            "cte_ctel/2\np1\n1:a8:transfer3:USD5:-1.001:r1:t~16:1700000000000000\n\
             1:b8:transfer3:USD4:1.001:r1:t~16:1700000000000000\n"
        );
        let first = link(&GENESIS, &posting, "a", "9.00");
        assert_ne!(first, GENESIS);
        // Any change to what is covered changes the link.
        let changed = |change: &dyn Fn(&mut EntryText<'static>)| {
            let mut other = entry("b", "1.00");
            change(&mut other);
            link(&GENESIS, &canonical("p1", &[entry("a", "-1.00"), other]), "a", "9.00")
        };
        assert_ne!(changed(&|e| e.amount = "2.00"), first, "the other leg's amount");
        assert_ne!(changed(&|e| e.account_id = "c"), first, "the other leg's account");
        assert_ne!(changed(&|e| e.kind = "zz"), first, "a kind");
        assert_ne!(changed(&|e| e.reference = None), first, "a reference");
        assert_ne!(changed(&|e| e.reference = Some("")), changed(&|e| e.reference = None));
        assert_ne!(changed(&|e| e.transaction_id = Some("u")), first, "the step");
        assert_ne!(changed(&|e| e.lien_id = Some("l")), first, "the lien");
        assert_ne!(changed(&|e| e.created_at_us += 1), first, "the time");
        let extra = canonical("p1", &[entry("a", "-1.00"), entry("b", "1.00"), entry("c", "0")]);
        assert_ne!(link(&GENESIS, &extra, "a", "9.00"), first, "an entry added");
        assert_ne!(link(&GENESIS, &posting, "a", "9.01"), first);
        assert_ne!(link(&first, &posting, "a", "9.00"), first, "the previous link is covered");
        // The same inputs, the same link: a check can compute it again.
        assert_eq!(link(&GENESIS, &posting, "a", "9.00"), first);
        assert_eq!(from_bytes(&first), Some(first));
        assert_eq!(from_bytes(&first[..31]), None);
    }

    #[test]
    fn a_field_cannot_forge_the_next() {
        // A reference holding what would be the next fields gives another text, not the same.
        let mut forged = entry("a", "1.00");
        forged.reference = Some("r1:t");
        forged.transaction_id = None;
        let other = entry("b", "-1.00");
        assert_ne!(canonical("p", &[forged, other]), canonical("p", &[entry("a", "1.00"), other]));
    }

    #[test]
    fn zero_prints_as_postgresql_prints_it() {
        let mut negative_zero = Decimal::new(0, 2);
        negative_zero.set_sign_negative(true);
        assert_eq!(decimal_text(&negative_zero), "0.00");
        assert_eq!(decimal_text(&Decimal::new(-150, 2)), "-1.50");
    }
}
