-- What pg_dump keeps (SPEC §1 v2): every table and sequence that holds state is an extension
-- configuration table, so its rows are dumped although the tables themselves are made by
-- CREATE EXTENSION. Rows CREATE EXTENSION seeds itself (the pre-registered currencies, the
-- system accounts, the sequencer's lock row) are left out by a filter, so a restore neither
-- loses nor duplicates them; none of them ever changes, and nothing seeded that changes
-- exists (system balances get their rows at their first fold, as data).
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_currencies', 'WHERE NOT seeded');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_accounts', 'WHERE NOT is_system');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_balances', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_system_balances', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_system_deltas', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_system_deltas_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_entries', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_entries_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_entry_links', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_events', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_transactions', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_references', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_executors', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_change_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_change_outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_change_log', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_worker_state', '');
SELECT pg_catalog.pg_extension_config_dump('cte_ctel.cte_liens', '');
