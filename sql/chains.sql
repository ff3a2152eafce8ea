-- The journal's hash chains (core/src/ledger/chain.rs says what a link covers; these build the
-- same bytes from stored rows). Each wallet balance's entries, in their order on it (time, then
-- id: under the balance's lock both grow), are chained: a link is the SHA-256 of the previous
-- link (32 zero bytes before the first), the whole posting's canonical text and the entry's
-- account and balance after it. The links are written with the entries, never after.

-- Links of the entries written before 0.2.0, computed by the upgrade (the journal refuses
-- UPDATE, so they are kept beside it); empty on a fresh install.
CREATE TABLE cte_ctel.cte_entry_links (
    entry_id bigint PRIMARY KEY,
    link     bytea NOT NULL CHECK (octet_length(link) = 32)
);
COMMENT ON TABLE cte_ctel.cte_entry_links IS
    'Hash-chain links of the entries written before 0.2.0 (later entries carry their own).';

CREATE FUNCTION cte_ctel.cte_posting_canonical(posting uuid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'cte_ctel/1' || E'\n' || posting::text || E'\n' || kind || E'\n' || currency || E'\n'
           || coalesce(reference, '') || E'\n'
           || string_agg(account_id || E'\t' || amount::text || E'\n', '' ORDER BY id)
      FROM cte_ctel.cte_entries WHERE posting_id = posting
     GROUP BY kind, currency, reference
$$;
COMMENT ON FUNCTION cte_ctel.cte_posting_canonical(uuid) IS
    'The canonical text of a posting that its entries'' hash-chain links cover.';

CREATE FUNCTION cte_ctel.cte_entry_link(previous bytea, posting uuid, account text,
                                        balance_after numeric) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(previous || pg_catalog.convert_to(
               cte_ctel.cte_posting_canonical(posting) || account || E'\t' || balance_after::text,
               'UTF8'))
$$;
COMMENT ON FUNCTION cte_ctel.cte_entry_link(bytea, uuid, text, numeric) IS
    'The hash-chain link of a wallet entry, from the link before it.';
