//! The journal's hash chains (SPEC v2): checking every link, and a digest of every chain's head
//! to publish elsewhere and check later.

use cte_ctel_core::CteError;
use pgrx::prelude::*;

use super::{page_limit, refused, required};
use crate::store::chains;

/// Most entries one `cte_verify_chains` page checks.
const CHAIN_ENTRIES_PER_PAGE_MAX: i64 = 100_000;

// pgrx reads the row's column names from this signature, so it is spelled out here.
#[allow(clippy::type_complexity)]
/// Recomputes the links of up to `limit` wallet entries after entry `after` (0: from the
/// start), each from the link before it on its wallet, and reports the first that does not
/// match: a rewritten, removed or inserted entry. Page on with the returned `last_entry_id`:
/// it never passes an entry still being written (the page waits for the journal's writers).
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_verify_chains(
    after: default!(Option<i64>, 0),
    limit: default!(Option<i32>, 10000),
) -> TableIterator<
    'static,
    (
        name!(entries_checked, i64),
        name!(last_entry_id, Option<i64>),
        name!(broken_entry_id, Option<i64>),
    ),
> {
    let checked = refused("cte_verify_chains", move || {
        let after = required(after, "after")?;
        super::security::refuse_partial_reader("cte_verify_chains", "the whole ledger");
        can_cut("cte_verify_chains", false)?;
        let limit = page_limit(limit, CHAIN_ENTRIES_PER_PAGE_MAX)?;
        Ok(chains::check(after, limit))
    });
    TableIterator::once((checked.entries_checked, checked.last_entry_id, checked.broken_entry_id))
}

/// One digest over every wallet chain's head, as `<entry id>:<sha-256 hex>`, to publish or
/// store outside the database: `cte_verify_digest` later says whether the ledger still extends
/// it. It waits for the transactions writing the journal when it is called (new postings go on),
/// so that every entry up to its id is final.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_ledger_digest() -> String {
    // A standby cannot wait for the primary's writers: PostgreSQL's own refusal (25006).
    // SAFETY: raises an ERROR during recovery, returns otherwise.
    unsafe { pg_sys::PreventCommandDuringRecovery(c"cte_ledger_digest".as_ptr()) };
    refused("cte_ledger_digest", || {
        can_cut("cte_ledger_digest", true)?;
        let upto = chains::cut();
        Ok(format!("{upto}:{}", chains::digest_at(upto, true)))
    })
}

/// Refuses a transaction that cannot take a cut of the journal (`untouched`: nor one that has
/// written anything).
fn can_cut(function: &'static str, untouched: bool) -> Result<(), CteError> {
    if chains::can_cut(untouched) {
        return Ok(());
    }
    let needs = match untouched {
        true => "a READ COMMITTED transaction that has written nothing",
        false => "a READ COMMITTED transaction",
    };
    Err(CteError::IsolationUnsupported {
        function,
        needs,
        why: "it waits for the journal's writers, then reads what they committed",
    })
}

/// Whether the ledger still extends a digest `cte_ledger_digest` gave: every chain's head as of
/// the digest's entry id hashes to it again. False means an entry up to that id was rewritten,
/// removed or added, even if every link since was recomputed.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_verify_digest(digest: Option<String>) -> bool {
    refused("cte_verify_digest", move || {
        let digest = required(digest, "digest")?;
        super::security::refuse_partial_reader("cte_verify_digest", "the whole ledger");
        let invalid = || CteError::IdentifierInvalid {
            what: "digest",
            value: digest.chars().take(100).collect(),
            why: "a digest is <entry id>:<64 lowercase hex digits>, as cte_ledger_digest gives it",
        };
        let (upto, hash) = digest.split_once(':').ok_or_else(invalid)?;
        // Exactly as cte_ledger_digest writes it: the id in plain digits (no sign, no leading
        // zero), and no id the journal has not reached (no digest could name one).
        let plain = !upto.is_empty()
            && upto.bytes().all(|b| b.is_ascii_digit())
            && (upto == "0" || !upto.starts_with('0'));
        let upto: i64 = upto.parse().ok().filter(|_| plain).ok_or_else(invalid)?;
        let well_formed =
            hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(invalid());
        }
        // A digest of entries this journal does not have (restored to a point before it, or
        // made up) does not hold.
        if upto > chains::newest_id() {
            return Ok(false);
        }
        Ok(chains::digest_at(upto, false) == hash)
    })
}
