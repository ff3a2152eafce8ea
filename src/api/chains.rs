//! The journal's hash chains (SPEC v2): checking every link, and a digest of every chain's head
//! to publish elsewhere and check later.

use cte_ctel_core::CteError;
use pgrx::prelude::*;

use super::{refused, required};
use crate::store::chains;

/// Most entries one `cte_verify_chains` page checks.
const CHAIN_ENTRIES_PER_PAGE_MAX: i64 = 100_000;

// pgrx reads the row's column names from this signature, so it is spelled out here.
#[allow(clippy::type_complexity)]
/// Recomputes the links of up to `limit` wallet entries after entry `after` (0: from the
/// start), each from the link before it on its wallet, and reports the first that does not
/// match: a rewritten, removed or inserted entry. Page on with the returned `last_entry_id`.
#[pg_extern(security_definer, stable, parallel_unsafe)]
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
        let limit = i64::from(required(limit, "limit")?);
        if !(1..=CHAIN_ENTRIES_PER_PAGE_MAX).contains(&limit) {
            return Err(CteError::ArgumentOutOfRange {
                argument: "limit",
                value: limit,
                min: 1,
                max: CHAIN_ENTRIES_PER_PAGE_MAX,
            });
        }
        Ok(chains::check(after, limit))
    });
    TableIterator::once((checked.entries_checked, checked.last_entry_id, checked.broken_entry_id))
}

/// One digest over every wallet chain's head, as `<entry id>:<sha-256 hex>`, to publish or
/// store outside the database: `cte_verify_digest` later says whether the ledger still extends
/// it. It takes the journal's share lock for a consistent cut, so postings wait until the
/// caller's transaction ends: call it in a transaction of its own.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_ledger_digest() -> String {
    let upto = chains::cut();
    format!("{upto}:{}", chains::digest_at(upto))
}

/// Whether the ledger still extends a digest `cte_ledger_digest` gave: every chain's head as of
/// the digest's entry id hashes to it again. False means an entry up to that id was rewritten,
/// removed or added, even if every link since was recomputed.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_verify_digest(digest: Option<String>) -> bool {
    refused("cte_verify_digest", move || {
        let digest = required(digest, "digest")?;
        let invalid = || CteError::IdentifierInvalid {
            what: "digest",
            value: digest.chars().take(100).collect(),
            why: "a digest is <entry id>:<64 hex digits>, as cte_ledger_digest gives it",
        };
        let (upto, hash) = digest.split_once(':').ok_or_else(invalid)?;
        let upto: i64 = upto.parse().map_err(|_| invalid())?;
        let well_formed = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if upto < 0 || !well_formed {
            return Err(invalid());
        }
        Ok(chains::digest_at(upto) == hash.to_ascii_lowercase())
    })
}
