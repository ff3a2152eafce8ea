//! The journal's hash chains in SQL: checking every link in pages, and the digest over every
//! chain's head as of an entry id. The link itself is computed in Rust when an entry is written
//! (`postings::write`, `cte_ctel_core::ledger::chain`) and in SQL from stored rows here
//! (`sql/chains.sql`): the same bytes.

use pgrx::prelude::*;

use super::{run_cached, select_one, spi, Row};

/// A page of the chains checked.
pub struct ChainsChecked {
    pub entries_checked: i64,
    pub last_entry_id: Option<i64>,
    pub broken_entry_id: Option<i64>,
}

// Wallet entries after $1 up to $3, in id order, $2 of them: each one's stored link against
// the one computed from the link before it on its wallet.
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
         WHERE j.id > $1 AND j.id <= $3 AND j.balance_after IS NOT NULL
         ORDER BY j.id LIMIT $2)
    SELECT count(*),
           max(id),
           min(id) FILTER (WHERE link IS DISTINCT FROM
                           cte_ctel.cte_entry_link(previous, posting_id, account_id, balance_after))
      FROM page";

/// Checks the links of up to `limit` wallet entries after entry `after`, among those up to a
/// cut of the journal: an entry not committed yet is never passed over, whatever its id.
pub fn check(after: i64, limit: i64) -> ChainsChecked {
    let upto = cut();
    with_fresh_snapshot(|| {
        Spi::connect_mut(|client| {
            let args = [after.into(), limit.into(), upto.into()];
            let table = run_cached(client, CHECK_PAGE, &args, false);
            let row = table.first();
            ChainsChecked {
                entries_checked: spi(row.get::<i64>(1), CHECK_PAGE).unwrap_or(0),
                last_entry_id: spi(row.get::<i64>(2), CHECK_PAGE),
                broken_entry_id: spi(row.get::<i64>(3), CHECK_PAGE),
            }
        })
    })
}

/// Runs `read` (read-only statements) with a snapshot taken now, so that it sees what a cut
/// waited for; no transaction id is assigned (a standby can run it).
fn with_fresh_snapshot<T>(read: impl FnOnce() -> T) -> T {
    // SAFETY: pushes a new snapshot (READ COMMITTED gives a fresh one) as the active one for
    // the read-only statements below, and pops it after; an error in between aborts the
    // (sub)transaction, whose cleanup pops it.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let value = read();
    // SAFETY: pops the snapshot pushed above.
    unsafe { pg_sys::PopActiveSnapshot() };
    value
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

/// The digest of every wallet chain's head as of entry `upto`; `after_cut`: with a snapshot
/// taken now, which sees everything a cut just waited for.
pub fn digest_at(upto: i64, after_cut: bool) -> String {
    let read = || {
        Spi::connect_mut(|client| {
            let table = run_cached(client, DIGEST_AT, &[upto.into()], false);
            // An aggregate's one row; its digest of no chains at all is the digest of none.
            Row::first_of(table, DIGEST_AT, |row| row.required::<String>(1, "the digest"))
        })
    };
    if after_cut {
        with_fresh_snapshot(read)
    } else {
        read()
    }
}

// The newest entry id handed out so far (committed or not).
const NEWEST_ID: &str = "
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
      FROM cte_ctel.cte_entries_id_seq";

/// The newest entry id handed out so far (0 before the first).
pub fn newest_id() -> i64 {
    select_one::<i64>(NEWEST_ID, &[]).unwrap_or(0)
}

/// A cut of the journal: an entry id such that every entry up to it is committed or never will
/// be. It reads the newest id handed out, then waits for every transaction writing the journal
/// at that moment to end, as `CREATE INDEX CONCURRENTLY` waits for older writers: new postings
/// go on meanwhile, and the caller's own writes are not waited for. (Every id up to the newest
/// one was taken by a transaction holding the journal's lock for writing by then.)
pub fn cut() -> i64 {
    let newest = newest_id();
    // SAFETY: a relation lock tag for cte_ctel.cte_entries in this database, built as
    // SET_LOCKTAG_RELATION does; WaitForLockers only reads the lock table and sleeps on each
    // conflicting transaction's virtual xid lock (lock_timeout applies).
    unsafe {
        let namespace = pg_sys::get_namespace_oid(c"cte_ctel".as_ptr(), false);
        let relation = pg_sys::get_relname_relid(c"cte_entries".as_ptr(), namespace);
        let tag = pg_sys::LOCKTAG {
            locktag_field1: pg_sys::MyDatabaseId.to_u32(),
            locktag_field2: relation.to_u32(),
            locktag_field3: 0,
            locktag_field4: 0,
            locktag_type: pg_sys::LockTagType::LOCKTAG_RELATION as u8,
            locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
        };
        pg_sys::WaitForLockers(tag, pg_sys::ShareLock as pg_sys::LOCKMODE, false);
    }
    newest
}

/// Whether the current transaction can take a cut: it reads with a fresh snapshot per
/// statement (READ COMMITTED; READ UNCOMMITTED runs as it), since a snapshot taken before the
/// wait would miss what the waited-for wrote; and, with `untouched`, it has written nothing
/// (no transaction id): a digest must not cover its own uncommitted entries, and locks it
/// holds could turn the wait into a deadlock.
pub fn can_cut(untouched: bool) -> bool {
    // SAFETY: reads the backend's isolation level and its top transaction id, if any.
    unsafe {
        pg_sys::XactIsoLevel <= pg_sys::XACT_READ_COMMITTED as i32
            && (!untouched || pg_sys::GetTopTransactionIdIfAny() == pg_sys::InvalidTransactionId)
    }
}
