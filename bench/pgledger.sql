-- pgledger beside the engine (issue 25), loaded by bench/run after pgledger's own SQL, which is
-- never part of this repository: bench/run reads it from a copy in $PGLEDGER_DIR (default
-- $CTE_CTEL_HOME/pgledger: pgledger.sql and vendor/scoville-pgsql-ulid/) and skips these
-- workloads with a message when there is none. pgledger's accounts get the bench's names (a1 ..
-- aN) and a billion USD each, refusing a negative balance as the engine's wallets do; written
-- directly, as bench/setup.sql writes the plain baseline's.
INSERT INTO pgledger_accounts (id, name, currency, balance, allow_negative_balance,
                               allow_positive_balance, created_at, updated_at)
SELECT 'a' || i, 'a' || i, 'USD', 1000000000, false, true, now(), now()
  FROM generate_series(1, :naccounts) i;

-- The batch workloads' 1,000 transfers (ten accounts in a ring) as one pgledger_create_transfers.
CREATE FUNCTION bench.pgledger_transfers(first int) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM pgledger_create_transfers(transfer_requests => (
        SELECT array_agg(ROW('a' || (first + i % 10), 'a' || (first + (i + 1) % 10), 0.01)::transfer_request
                         ORDER BY i)
          FROM generate_series(0, 999) i))
$$;
