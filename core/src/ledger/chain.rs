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

/// A posting's canonical text: a version tag, its id, kind, currency and reference, then each
/// entry's account and amount (as decimal text at the currency's scale) in the posting's order.
pub fn canonical(
    posting_id: &str,
    kind: &str,
    currency: &str,
    reference: Option<&str>,
    entries: &[(&str, &str)],
) -> String {
    let mut text = format!(
        "cte_ctel/1\n{posting_id}\n{kind}\n{currency}\n{}\n",
        reference.unwrap_or_default()
    );
    for (account, amount) in entries {
        text.push_str(account);
        text.push('\t');
        text.push_str(amount);
        text.push('\n');
    }
    text
}

/// The link of one wallet entry: the wallet's previous link, the posting's canonical text, and
/// the entry's account and balance after it.
pub fn link(previous: &Link, canonical: &str, account: &str, balance_after: &str) -> Link {
    let mut hash = Sha256::new();
    hash.update(previous);
    hash.update(canonical.as_bytes());
    hash.update(account.as_bytes());
    hash.update(b"\t");
    hash.update(balance_after.as_bytes());
    hash.finalize().into()
}

/// A link as a stored `bytea` may hold it: exactly 32 bytes, or none.
pub fn from_bytes(bytes: &[u8]) -> Option<Link> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_covers_the_previous_link_the_whole_posting_and_the_balance() {
        let posting =
            canonical("p1", "transfer", "USD", Some("r"), &[("a", "-1.00"), ("b", "1.00")]);
        assert_eq!(posting, "cte_ctel/1\np1\ntransfer\nUSD\nr\na\t-1.00\nb\t1.00\n");
        let first = link(&GENESIS, &posting, "a", "9.00");
        assert_ne!(first, GENESIS);
        // Any change to what is covered changes the link.
        let other_amount =
            canonical("p1", "transfer", "USD", Some("r"), &[("a", "-2.00"), ("b", "2.00")]);
        let other_leg =
            canonical("p1", "transfer", "USD", Some("r"), &[("a", "-1.00"), ("c", "1.00")]);
        assert_ne!(link(&GENESIS, &other_amount, "a", "9.00"), first);
        assert_ne!(link(&GENESIS, &other_leg, "a", "9.00"), first, "the other leg is covered");
        assert_ne!(link(&GENESIS, &posting, "a", "9.01"), first);
        assert_ne!(link(&first, &posting, "a", "9.00"), first, "the previous link is covered");
        // The same inputs, the same link: a check can compute it again.
        assert_eq!(link(&GENESIS, &posting, "a", "9.00"), first);
        assert_eq!(from_bytes(&first), Some(first));
        assert_eq!(from_bytes(&first[..31]), None);
    }
}
