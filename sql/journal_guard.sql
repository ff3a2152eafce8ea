-- The journal is append-only for everyone, the table owner and superusers included: correcting
-- a posting means posting its reversal. (A superuser can still disable triggers; nothing stops
-- that, and cte_verify_ledger() is there to notice what follows.)
CREATE TRIGGER cte_entries_append_only
    BEFORE UPDATE OR DELETE ON cte_ctel.cte_entries
    FOR EACH ROW EXECUTE FUNCTION cte_ctel.cte_journal_append_only();
CREATE TRIGGER cte_entries_no_truncate
    BEFORE TRUNCATE ON cte_ctel.cte_entries
    FOR EACH STATEMENT EXECUTE FUNCTION cte_ctel.cte_journal_append_only();

-- The links the upgrade computed for the entries written before 0.2.0 are journal too.
CREATE TRIGGER cte_entry_links_append_only
    BEFORE UPDATE OR DELETE ON cte_ctel.cte_entry_links
    FOR EACH ROW EXECUTE FUNCTION cte_ctel.cte_journal_append_only();
CREATE TRIGGER cte_entry_links_no_truncate
    BEFORE TRUNCATE ON cte_ctel.cte_entry_links
    FOR EACH STATEMENT EXECUTE FUNCTION cte_ctel.cte_journal_append_only();

-- #[pg_trigger] has no search_path attribute; every function of the extension gets one.
ALTER FUNCTION cte_ctel.cte_journal_append_only() SET search_path = pg_catalog, pg_temp;
