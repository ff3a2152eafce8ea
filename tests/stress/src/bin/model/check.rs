//! Comparing the server's ledger with the model's: the balances after every call, and at the
//! end every balance, lien and event, and the extension's own verifiers.
//!
//! Each check returns the disagreements it found as sentences; an empty list is agreement.

use postgres::Client;
use rust_decimal::Decimal;

use super::ledger::Model;

const BALANCES: &str = "
    SELECT a, cte_ctel.cte_balance(a, 'USD')::text, cte_ctel.cte_available_balance(a, 'USD')::text
      FROM unnest($1::text[]) AS a ORDER BY a";

fn decimal(text: &str) -> Option<Decimal> {
    Decimal::from_str_exact(text).ok()
}

/// Posted and available balance of every account of the model (five, one query: the accounts
/// a call touched and those it must not have).
pub fn balances(client: &mut Client, model: &Model) -> Vec<String> {
    let accounts = model.accounts();
    let rows = match client.query(BALANCES, &[&accounts]) {
        Ok(rows) => rows,
        Err(error) => return vec![format!("reading the balances failed: {error}")],
    };
    let mut found = Vec::new();
    for row in rows {
        let (account, balance, available): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let (want_balance, want_available) = (model.balance(&account), model.available(&account));
        if decimal(&balance) != Some(want_balance) || decimal(&available) != Some(want_available) {
            found.push(format!(
                "{account}: balance {balance} available {available}, \
                 the model has {want_balance} and {want_available}"
            ));
        }
    }
    found
}

/// Every lien's status and captured amount, and no lien the model does not know.
pub fn liens(client: &mut Client, model: &Model) -> Vec<String> {
    let query = "SELECT id::text, status::text, coalesce(captured_amount, 0)::text
                   FROM cte_ctel.cte_liens ORDER BY 1";
    let rows = match client.query(query, &[]) {
        Ok(rows) => rows,
        Err(error) => return vec![format!("reading the liens failed: {error}")],
    };
    let mut found = Vec::new();
    if rows.len() != model.liens.len() {
        found.push(format!("{} liens, the model has {}", rows.len(), model.liens.len()));
    }
    for row in rows {
        let (id, status, captured): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        match model.liens.get(&id) {
            None => found.push(format!("lien {id} ({status}) that the model never made")),
            Some(lien) => {
                if status != lien.status.as_str() || decimal(&captured) != Some(lien.captured) {
                    found.push(format!(
                        "lien {id}: {status} captured {captured}, the model has {} captured {}",
                        lien.status.as_str(),
                        lien.captured
                    ));
                }
            }
        }
    }
    found
}

/// Every event's status, and no event the model does not know (a replay that made a second
/// event, even one that moved nothing, shows here).
pub fn events(client: &mut Client, model: &Model) -> Vec<String> {
    let query = "SELECT id::text, status::text FROM cte_ctel.cte_events ORDER BY 1";
    let rows = match client.query(query, &[]) {
        Ok(rows) => rows,
        Err(error) => return vec![format!("reading the events failed: {error}")],
    };
    let mut found = Vec::new();
    if rows.len() != model.events.len() {
        found.push(format!("{} events, the model has {}", rows.len(), model.events.len()));
    }
    for row in rows {
        let (id, status): (String, String) = (row.get(0), row.get(1));
        match model.events.get(&id) {
            None => found.push(format!("event {id} ({status}) that the model never made")),
            Some(event) if event.status() != status => {
                found.push(format!("event {id}: {status}, the model has {}", event.status()))
            }
            Some(_) => {}
        }
    }
    found
}

/// `cte_verify_ledger()` has no row, and every link of the journal's chains checks
/// (`cte_verify_chains(after bigint, limit int)`, page by page).
pub fn verifiers(client: &mut Client) -> Vec<String> {
    let mut found = Vec::new();
    let query = "SELECT check_name || ': ' || detail FROM cte_ctel.cte_verify_ledger()";
    match client.query(query, &[]) {
        Ok(rows) => found.extend(
            rows.iter().map(|row| format!("cte_verify_ledger: {}", row.get::<_, String>(0))),
        ),
        Err(error) => found.push(format!("cte_verify_ledger() failed: {error}")),
    }
    let page = "SELECT entries_checked, last_entry_id, broken_entry_id
                  FROM cte_ctel.cte_verify_chains($1, 10000)";
    let mut after = 0i64;
    loop {
        let row = match client.query_one(page, &[&after]) {
            Ok(row) => row,
            Err(error) => {
                found.push(format!("cte_verify_chains failed: {error}"));
                break;
            }
        };
        if let Some(broken) = row.get::<_, Option<i64>>(2) {
            found.push(format!("cte_verify_chains: the chain breaks at entry {broken}"));
        }
        match (row.get::<_, i64>(0), row.get::<_, Option<i64>>(1)) {
            (checked, Some(last)) if checked > 0 && last > after => after = last,
            _ => break,
        }
    }
    found
}
