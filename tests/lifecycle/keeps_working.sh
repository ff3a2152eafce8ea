# Sourced by the lifecycle tests (dump and restore, pg_upgrade across majors): the checks that a
# database brought back from tests/lifecycle/fill.sql goes on working. The caller defines
# q DB ARGS... (psql on the copy), check DB WHAT SQL (ok when SQL returns t) and source_digest
# (cte_ledger_digest() of the original).
keeps_working() { # keeps_working DB: the copy goes on working
    local db=$1
    check "$db" "$db: verifies clean" "SELECT count(*) = 0 FROM cte_ctel.cte_verify_ledger()"
    check "$db" "$db: every journal link checks, and the source's digest holds" \
        "SELECT c.broken_entry_id IS NULL AND c.entries_checked > 0 AND cte_ctel.cte_verify_digest('$source_digest')
           FROM cte_ctel.cte_verify_chains(0, 100000) c"
    check "$db" "$db: a new transfer posts (its sequences came back)" \
        "SELECT cte_ctel.cte_transfer('l-alice', 'l-bob', 1, 'USD') IS NOT NULL"
    check "$db" "$db: the waiting payout completes on its callback" \
        "SELECT cte_ctel.cte_complete_transaction(t.id, '{\"paid\": true}') = 'completed'
           FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id
          WHERE e.idempotency_key = 'payout-1' AND t.type = 'external'"
    check "$db" "$db: the in-doubt step's compensation, reported, compensates its event" \
        "SELECT cte_ctel.cte_complete_compensation(t.id) = 'compensated'
           FROM cte_ctel.cte_transactions t JOIN cte_ctel.cte_events e ON e.id = t.event_id
          WHERE e.idempotency_key = 'doubt-1' AND t.type = 'external'"
    # Time moved on by hand: the retry falls due, the short lien expires.
    q "$db" -c "UPDATE cte_ctel.cte_transactions SET next_attempt_at = now() WHERE next_attempt_at IS NOT NULL" \
        -c "UPDATE cte_ctel.cte_liens SET expires_at = now() WHERE expires_at IS NOT NULL AND status = 'active'" >/dev/null
    check "$db" "$db: maintenance expires the due lien and runs the due retry" \
        "SELECT (r->>'liens_expired')::int >= 1 AND (r->>'events_retried')::int = 1 FROM cte_ctel.cte_run_maintenance() r"
    check "$db" "$db: a reference used before the dump is still taken" \
        "SELECT NOT EXISTS (SELECT 1 FROM cte_ctel.cte_references WHERE reference = 'psp-1') = false"
    check "$db" "$db: still verifies clean" "SELECT count(*) = 0 FROM cte_ctel.cte_verify_ledger()"
}
