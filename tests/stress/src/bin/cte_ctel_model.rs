//! Model-based checker of `cte_ctel` (STYLE.md "A model that checks every answer"): a small
//! reference model of the ledger in plain Rust runs beside the real extension on the same
//! seeded random sequence of calls, biased towards trouble (replays, conflicting reuses of
//! keys, captures, releases, escrow checkouts and their refunds, partial and over-refunds,
//! insufficient funds), with races of several sessions on one key and optional crashes
//! (kill -9 of the postmaster, then the call sent again). After every call the answer (the id,
//! the very first id for a replay, or the refusal's SQLSTATE) and the balances are compared;
//! at the end every balance, lien and event, and the extension's verifiers.
//!
//! It shares no code with the extension: a model that reused its logic would agree with its
//! bugs.
//!
//! Usage: cte_ctel_model --host DIR --port N [--database NAME] [--seed N] [--calls N]
//!        [--threads N] [--crashes N --pgdata DIR] [--verbose 1]
//! Prints the seed first and `model: N calls, R replays, C conflicts, X crashes, 0
//! disagreements` last; exits 1 at the first disagreement, with the calls that led to it.

mod model;

use std::time::{SystemTime, UNIX_EPOCH};

use model::run::{Config, Run};
use model::server::Server;

/// Harness: the command line, or a panic naming what is wrong with it.
fn config() -> Config {
    let clock = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(1);
    let mut config = Config {
        server: Server {
            host: "/tmp".into(),
            port: 5432,
            database: "cte_model".into(),
            pgdata: None,
        },
        seed: u64::try_from(clock % u128::from(u64::MAX)).unwrap_or(1),
        calls: 400,
        threads: 3,
        crashes: 0,
        verbose: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let number =
            || value.parse::<u64>().unwrap_or_else(|_| panic!("{} wants a number", pair[0]));
        let count = || usize::try_from(number()).unwrap_or(usize::MAX);
        match pair[0].as_str() {
            "--host" => config.server.host = value.clone(),
            "--port" => config.server.port = u16::try_from(number()).unwrap_or(0),
            "--database" => config.server.database = value.clone(),
            "--seed" => config.seed = number(),
            "--calls" => config.calls = count(),
            "--threads" => config.threads = count(),
            "--crashes" => config.crashes = count(),
            "--pgdata" => config.server.pgdata = Some(value.clone()),
            "--verbose" => config.verbose = number() != 0,
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(config.crashes == 0 || config.server.pgdata.is_some(), "--crashes needs --pgdata");
    // Every order of a race's calls is tried: 4! = 24 at most.
    assert!((1..=4).contains(&config.threads), "--threads is 1 to 4");
    config
}

fn main() {
    let config = config();
    println!(
        "model: seed {} calls {} threads {} crashes {}",
        config.seed, config.calls, config.threads, config.crashes
    );
    Run::new(config).run();
}
