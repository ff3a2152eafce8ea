-- The journal's hash chains (core/src/ledger/chain.rs says what a link covers; these build the
-- same bytes from stored rows). Each wallet balance's entries, in their order on it (time, then
-- id: under the balance's lock both grow), are chained: a link is the SHA-256 of the previous
-- link (32 zero bytes before the first), the whole posting's canonical text and the entry's
-- account and balance after it. On a wallet, time grows with id: an entry is never stamped
-- earlier than the wallet's last (cte_balances.last_entry_at), whatever the clock does. The
-- links are written with the entries, never after.

-- Links of the entries written before 0.2.0, computed by the upgrade (the journal refuses
-- UPDATE, so they are kept beside it); empty on a fresh install.
CREATE TABLE cte_ctel.cte_entry_links (
    entry_id bigint PRIMARY KEY,
    link     bytea NOT NULL CHECK (octet_length(link) = 32)
);
COMMENT ON TABLE cte_ctel.cte_entry_links IS
    'Hash-chain links of the entries written before 0.2.0 (later entries carry their own).';

-- One field of the canonical text, unambiguously: its length in bytes, a colon and the bytes;
-- '~' for NULL (so NULL and '' differ, and no value can forge the next field).
CREATE FUNCTION cte_ctel.cte_chain_field(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN value IS NULL THEN '~' ELSE octet_length(value)::text || ':' || value END
$$;
COMMENT ON FUNCTION cte_ctel.cte_chain_field(text) IS
    'One length-prefixed field of a posting''s canonical text (''~'' for NULL).';

-- Every entry of the posting, in id order, with every column that says what it moved and why:
-- an entry added to a posting, removed from it or changed in any of these changes the text.
CREATE FUNCTION cte_ctel.cte_posting_canonical(posting uuid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'cte_ctel/2' || E'\n' || posting::text || E'\n'
           || string_agg(cte_ctel.cte_chain_field(account_id) || cte_ctel.cte_chain_field(kind)
                         || cte_ctel.cte_chain_field(currency)
                         || cte_ctel.cte_chain_field(amount::text)
                         || cte_ctel.cte_chain_field(reference::text)
                         || cte_ctel.cte_chain_field(transaction_id::text)
                         || cte_ctel.cte_chain_field(lien_id::text)
                         || cte_ctel.cte_chain_field(
                                ((extract(epoch FROM created_at) * 1000000)::bigint)::text)
                         || E'\n', '' ORDER BY id)
      FROM cte_ctel.cte_entries WHERE posting_id = posting
$$;
COMMENT ON FUNCTION cte_ctel.cte_posting_canonical(uuid) IS
    'The canonical text of a posting that its entries'' hash-chain links cover.';

CREATE FUNCTION cte_ctel.cte_entry_link(previous bytea, posting uuid, account text,
                                        balance_after numeric) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(previous || pg_catalog.convert_to(
               cte_ctel.cte_posting_canonical(posting) || cte_ctel.cte_chain_field(account)
               || cte_ctel.cte_chain_field(balance_after::text), 'UTF8'))
$$;
COMMENT ON FUNCTION cte_ctel.cte_entry_link(bytea, uuid, text, numeric) IS
    'The hash-chain link of a wallet entry, from the link before it.';
