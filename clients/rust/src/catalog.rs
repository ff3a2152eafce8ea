//! Writing `reason.rs`, the table of refusal reasons, from a live server's error catalog.
//!
//! The catalog (`cte_ctel.cte_error_catalog()`) is the source of truth for reasons and their
//! SQLSTATEs; [`render`] turns it into Rust text so the table is committed, reviewed in diffs and
//! compiled without a server. `tests/errors.rs` fails when the committed file and the live
//! catalog disagree: run `cargo run -p cte_ctel_client --bin generate_errors -- DSN` after the
//! extension gains a reason. Nothing here knows a reason by name.

use tokio_postgres::GenericClient;

use crate::error::Result;

/// One row of `cte_error_catalog()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogRow {
    /// The reason's name, e.g. `insufficient_funds`.
    pub reason: String,
    /// Its SQLSTATE, e.g. `L0020`.
    pub sqlstate: String,
    /// A message the reason raises, as the catalog shows it.
    pub example_message: String,
}

/// The catalog's rows, ordered by SQLSTATE.
pub async fn read<C: GenericClient + Sync>(client: &C) -> Result<Vec<CatalogRow>> {
    let rows = client
        .query(
            "SELECT reason, sqlstate, example_message FROM cte_ctel.cte_error_catalog() \
             ORDER BY sqlstate",
            &[],
        )
        .await?;
    let mut catalog = Vec::with_capacity(rows.len());
    for row in rows {
        catalog.push(CatalogRow {
            reason: row.try_get(0)?,
            sqlstate: row.try_get(1)?,
            example_message: row.try_get(2)?,
        });
    }
    Ok(catalog)
}

/// `insufficient_funds` -> `InsufficientFunds`.
pub fn variant_name(reason: &str) -> String {
    let mut name = String::with_capacity(reason.len());
    for word in reason.split('_') {
        let mut letters = word.chars();
        if let Some(first) = letters.next() {
            name.extend(first.to_uppercase());
            name.push_str(letters.as_str());
        }
    }
    name
}

const HEADER: &str = "\
//! Refusal reasons, one per row of cte_ctel's error catalog. GENERATED: do not edit.
//!
//! Made by `cargo run -p cte_ctel_client --bin generate_errors -- DSN` from
//! `cte_ctel.cte_error_catalog()`; `tests/errors.rs` checks it against the live catalog.

/// Why the ledger refused a call: a variant per reason of the catalog, then `PermissionDenied`
/// (42501, outside the catalog) and `Unknown` (a reason this client does not know yet).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
";

const TAIL_OF_ENUM: &str = "    /// 42501: the role may not do this (outside the catalog).
    PermissionDenied,
    /// A refusal this client does not know (a newer server): the reason its DETAIL names.
    Unknown(String),
}

/// The catalog: (reason, SQLSTATE, the reason's name), in SQLSTATE order.
pub static CATALOG: &[(Reason, &str, &str)] = &[
";

/// The text of `reason.rs` for a catalog: the enum, the table, and the reason's name and
/// SQLSTATE as exhaustive matches.
pub fn render(catalog: &[CatalogRow]) -> String {
    assert!(!catalog.is_empty(), "the catalog is never empty");
    let mut text = String::from(HEADER);
    for row in catalog {
        render_doc(
            &mut text,
            &format!("{} {}, e.g. {}", row.sqlstate, row.reason, row.example_message),
        );
        text.push_str(&format!("    {},\n", variant_name(&row.reason)));
    }
    text.push_str(TAIL_OF_ENUM);
    for row in catalog {
        let variant = variant_name(&row.reason);
        text.push_str(&format!("    (Reason::{variant}, {:?}, {:?}),\n", row.sqlstate, row.reason));
    }
    text.push_str("];\n\nimpl Reason {\n");
    text.push_str("    /// The reason's name as the catalog and the DETAIL spell it.\n");
    text.push_str("    pub fn name(&self) -> &str {\n        match self {\n");
    for row in catalog {
        let variant = variant_name(&row.reason);
        text.push_str(&format!("            Reason::{variant} => {:?},\n", row.reason));
    }
    text.push_str("            Reason::PermissionDenied => \"permission_denied\",\n");
    text.push_str("            Reason::Unknown(name) => name,\n        }\n    }\n\n");
    text.push_str("    /// Its SQLSTATE; None for a reason this client does not know.\n");
    text.push_str("    pub fn sqlstate(&self) -> Option<&'static str> {\n        match self {\n");
    for row in catalog {
        let variant = variant_name(&row.reason);
        text.push_str(&format!("            Reason::{variant} => Some({:?}),\n", row.sqlstate));
    }
    text.push_str("            Reason::PermissionDenied => Some(\"42501\"),\n");
    text.push_str("            Reason::Unknown(_) => None,\n        }\n    }\n}\n");
    text
}

/// A `///` comment of `text` wrapped within 100 columns, indented for an enum variant.
fn render_doc(text: &mut String, doc: &str) {
    let mut line = String::new();
    for word in doc.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 92 {
            text.push_str(&format!("    /// {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    text.push_str(&format!("    /// {line}\n"));
}
