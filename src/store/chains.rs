//! The journal's hash chains in SQL: checking every link in pages, and the digest over every
//! chain's head as of an entry id. The link itself is computed in Rust when an entry is written
//! (`postings::write`, `cte_ctel_core::ledger::chain`) and in SQL from stored rows here
//! (`sql/chains.sql`): the same bytes.

use pgrx::prelude::*;

use super::{run_cached, spi};

/// A page of the chains checked.
pub struct ChainsChecked {
    pub entries_checked: i64,
    pub last_entry_id: Option<i64>,
    pub broken_entry_id: Option<i64>,
}

// Wallet entries after $1, in id order, $2 of them: each one's stored link against the one
// computed from the link before it on its wallet.
const CHECK_PAGE: &str = "
    WITH page AS (
        SELECT j.id, j.account_id, j.posting_id, j.balance_after,
               COALESCE(j.link, m.link) AS link,
               COALESCE((SELECT COALESCE(p.link, pm.link)
                           FROM cte_ctel.cte_entries p
                           LEFT JOIN cte_ctel.cte_entry_links pm ON pm.entry_id = p.id
                          WHERE p.account_id = j.account_id AND p.currency = j.currency
                            AND (p.created_at, p.id) < (j.created_at, j.id)
                          ORDER BY p.created_at DESC, p.id DESC LIMIT 1),
                        pg_catalog.decode(repeat('00', 32), 'hex')) AS previous
          FROM cte_ctel.cte_entries j
          LEFT JOIN cte_ctel.cte_entry_links m ON m.entry_id = j.id
         WHERE j.id > $1 AND j.balance_after IS NOT NULL
         ORDER BY j.id LIMIT $2)
    SELECT count(*),
           max(id),
           min(id) FILTER (WHERE link IS DISTINCT FROM
                           cte_ctel.cte_entry_link(previous, posting_id, account_id, balance_after))
      FROM page";

/// Checks the links of up to `limit` wallet entries after entry `after`.
pub fn check(after: i64, limit: i64) -> ChainsChecked {
    Spi::connect_mut(|client| {
        let table = run_cached(client, CHECK_PAGE, &[after.into(), limit.into()], false);
        let row = table.first();
        ChainsChecked {
            entries_checked: spi(row.get::<i64>(1), CHECK_PAGE).unwrap_or(0),
            last_entry_id: spi(row.get::<i64>(2), CHECK_PAGE),
            broken_entry_id: spi(row.get::<i64>(3), CHECK_PAGE),
        }
    })
}

// Every wallet's last link among the entries up to $1, in the order of wallets, hashed.
const DIGEST_AT: &str = "
    SELECT pg_catalog.encode(pg_catalog.sha256(COALESCE(string_agg(
               pg_catalog.convert_to(h.account_id || E'\\t' || h.currency || E'\\n', 'UTF8')
               || h.link, ''::bytea ORDER BY h.account_id COLLATE \"C\", h.currency COLLATE \"C\"),
               ''::bytea)), 'hex')
      FROM (SELECT b.account_id, b.currency,
                   (SELECT COALESCE(j.link, m.link)
                      FROM cte_ctel.cte_entries j
                      LEFT JOIN cte_ctel.cte_entry_links m ON m.entry_id = j.id
                     WHERE j.account_id = b.account_id AND j.currency = b.currency AND j.id <= $1
                     ORDER BY j.created_at DESC, j.id DESC LIMIT 1) AS link
              FROM cte_ctel.cte_balances b) h
     WHERE h.link IS NOT NULL";

/// The digest of every wallet chain's head as of entry `upto`.
pub fn digest_at(upto: i64) -> String {
    Spi::connect_mut(|client| {
        let table = run_cached(client, DIGEST_AT, &[upto.into()], false);
        spi(table.first().get::<String>(1), DIGEST_AT).unwrap_or_default()
    })
}

// A cut no later commit can fall behind: SHARE mode waits for every transaction writing the
// journal to end and holds new ones off until this transaction ends, so every entry up to the
// newest id is committed and none below it will come.
const JOURNAL_CUT: &str = "LOCK TABLE cte_ctel.cte_entries IN SHARE MODE";
const NEWEST_ENTRY: &str = "SELECT COALESCE(max(id), 0) FROM cte_ctel.cte_entries";

/// The newest entry id at a cut of the journal (postings wait until the caller's transaction
/// ends).
pub fn cut() -> i64 {
    Spi::connect_mut(|client| {
        run_cached(client, JOURNAL_CUT, &[], true);
        let table = run_cached(client, NEWEST_ENTRY, &[], false);
        spi(table.first().get::<i64>(1), NEWEST_ENTRY).unwrap_or(0)
    })
}
