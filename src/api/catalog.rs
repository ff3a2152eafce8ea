//! The error catalog as a table, from the same enum that raises the errors.

use cte_ctel_core::CteError;
use pgrx::prelude::*;

/// Every reason a call can be refused for, with its SQLSTATE and an example message.
#[pg_extern(security_definer, immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn cte_error_catalog() -> TableIterator<
    'static,
    (name!(reason, String), name!(sqlstate, String), name!(example_message, String)),
> {
    TableIterator::new(
        CteError::examples().into_iter().map(|error| {
            (error.reason().to_string(), error.sqlstate().to_string(), error.to_string())
        }),
    )
}
