-- cte_ctel 0.1.0 -> 0.2.0, in place, with data in it. Run by ALTER EXTENSION cte_ctel UPDATE.
-- The result equals a fresh install of 0.2.0 (tests/upgrade.sh compares the two through the
-- catalogs). Released scripts are frozen; later changes go into the next version's script.
\echo Use "ALTER EXTENSION cte_ctel UPDATE" to load this file. \quit
