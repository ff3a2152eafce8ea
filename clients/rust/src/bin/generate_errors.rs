//! Writes `src/reason.rs`, the table of refusal reasons, from a live server's error catalog
//! (`cte_ctel.cte_error_catalog()`); `tests/errors.rs` fails until it is run again after the
//! extension gains a reason.
//!
//! Usage: generate_errors DSN [OUTPUT]   (OUTPUT defaults to the crate's src/reason.rs; "-"
//! prints it)

use std::process::ExitCode;

use cte_ctel_client::catalog;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().collect();
    if !(2..=3).contains(&arguments.len()) {
        eprintln!("usage: generate_errors DSN [OUTPUT|-]");
        return ExitCode::from(2);
    }
    let text = match read(&arguments[1]).await {
        Ok(catalog) => catalog::render(&catalog),
        Err(error) => {
            eprintln!("generate_errors: {error}");
            return ExitCode::FAILURE;
        }
    };
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/src/reason.rs").to_owned();
    let output = arguments.get(2).cloned().unwrap_or(default);
    if output == "-" {
        print!("{text}");
    } else if let Err(error) = std::fs::write(&output, text) {
        eprintln!("generate_errors: {output}: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn read(dsn: &str) -> cte_ctel_client::Result<Vec<catalog::CatalogRow>> {
    let client = cte_ctel_client::connect(&dsn.parse()?).await?;
    catalog::read(&client).await
}
