//! The model-based checker's parts: a reference model of the ledger (`ledger`), a seeded
//! generator of calls (`generate`, `random`), the calls as sent to the server (`calls`), the
//! comparisons (`check`), races (`race`), the server's life (`server`) and the run (`run`).

pub mod calls;
pub mod check;
pub mod generate;
pub mod ledger;
pub mod race;
pub mod random;
pub mod run;
pub mod server;
