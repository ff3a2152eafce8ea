//! A worker process for `tests/worker.rs` to kill with SIGKILL: it claims one step of the hosted
//! type under a 1 second lease (heartbeats on), writes the step's transaction_id to the file
//! named, as if the charge were made, and then hangs until it is killed.
//!
//! Usage: worker_process DSN TYPE STARTED_FILE

use std::time::Duration;

use cte_ctel_client::{Executor, Step, StepResult, Worker};

struct Hang {
    started_file: String,
}

impl Executor for Hang {
    async fn execute(&self, step: &Step) -> StepResult {
        std::fs::write(&self.started_file, step.transaction_id.to_string())?;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> cte_ctel_client::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    assert_eq!(arguments.len(), 4, "usage: worker_process DSN TYPE STARTED_FILE");
    let executor = Hang { started_file: arguments[3].clone() };
    let mut worker = Worker::new(&arguments[1], "rs-doomed")?
        .host(&arguments[2], executor)
        .lease(Duration::from_secs(1));
    while worker.run_once().await? == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
