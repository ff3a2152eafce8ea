//! The server under test: connecting, a fresh database for the run, and crashes (kill -9 of
//! the postmaster, then a restart with pg_ctl, as the stress test does).
//!
//! This is test-harness setup: where the server cannot be reached or set up, the run cannot
//! start, and it stops with a panic that says so.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::calls::ESCROW;
use super::ledger::WALLETS;

/// Longest wait for the server to accept connections again after a restart.
const WAIT_MAX: Duration = Duration::from_secs(90);

/// The chosen major's pg_ctl: bin/common.sh exports PG_BIN; Debian's 15 otherwise.
fn pg_ctl_path() -> String {
    let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    format!("{bin}/pg_ctl")
}

/// Where the server is.
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub pgdata: Option<String>,
}

impl Server {
    /// A connection to `database`, waiting while the server starts or recovers; `None` when
    /// it does not come back within `WAIT_MAX`.
    pub fn try_connect(&self, database: &str) -> Option<Client> {
        let started = Instant::now();
        let params =
            format!("host={} port={} user=postgres dbname={database}", self.host, self.port);
        loop {
            match Client::connect(&params, NoTls) {
                Ok(mut client) => {
                    // A call that hangs is a finding, not a stuck run.
                    let limited = client.batch_execute("SET statement_timeout = '60s'");
                    if limited.is_ok() {
                        return Some(client);
                    }
                }
                Err(error) if started.elapsed() > WAIT_MAX => {
                    eprintln!("model: cannot connect to {database}: {error}");
                    return None;
                }
                Err(_) => {}
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Harness: a connection to the run's database, or the run stops.
    pub fn connect(&self) -> Client {
        let client = self.try_connect(&self.database);
        client.unwrap_or_else(|| panic!("harness: the server at {} does not answer", self.host))
    }

    /// Harness: the run's database, dropped and created again with the extension and the
    /// model's accounts (all empty).
    pub fn setup(&self) {
        let admin = self.try_connect("postgres");
        let mut admin = admin.unwrap_or_else(|| panic!("harness: no server at {}", self.host));
        let database = &self.database;
        let fresh = format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE); CREATE DATABASE \"{database}\""
        );
        for statement in fresh.split("; ") {
            admin.batch_execute(statement).expect("harness: the run's database is made anew");
        }
        let mut client = self.connect();
        client.batch_execute("CREATE EXTENSION cte_ctel").expect("harness: CREATE EXTENSION");
        for account in WALLETS.iter().chain([ESCROW].iter()) {
            client
                .execute("SELECT cte_ctel.cte_create_account($1, ARRAY['USD'])", &[account])
                .expect("harness: the model's accounts are created");
        }
    }

    /// Kills the postmaster with SIGKILL and waits until it is gone; the connections die with
    /// it. Harness: a run asked to crash the server must be able to.
    pub fn kill(&self) {
        let pgdata = self.pgdata.clone().expect("harness: --crashes needs --pgdata");
        let pid_file = std::fs::read_to_string(format!("{pgdata}/postmaster.pid"));
        let pid_file = pid_file.expect("harness: the postmaster's pid file is readable");
        let pid = pid_file.lines().next().unwrap_or_default().trim().to_string();
        assert!(!pid.is_empty(), "harness: the postmaster runs");
        let killed = Command::new("kill").args(["-9", &pid]).status();
        assert!(killed.is_ok_and(|status| status.success()), "harness: kill -9 {pid} worked");
        let started = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() && started.elapsed() < WAIT_MAX {
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again after `kill`. A backend still busy when the postmaster died
    /// keeps the old shared memory until it notices; pg_ctl refuses to start until then.
    pub fn restart(&self) {
        let pgdata = self.pgdata.clone().expect("harness: --crashes needs --pgdata");
        thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        while !pg_ctl(&pgdata, "start") {
            assert!(started.elapsed() < WAIT_MAX, "harness: the server starts after a crash");
            thread::sleep(Duration::from_millis(500));
        }
    }
}

fn pg_ctl(pgdata: &str, action: &str) -> bool {
    let log = format!("{pgdata}/server.log");
    let args = ["-D", pgdata, "-w", "-t", "90", "-l", &log, action];
    // PostgreSQL refuses to run as root: as root, run pg_ctl as the cluster's owner.
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", &pg_ctl_path()]).args(args);
        command
    } else {
        let mut command = Command::new(pg_ctl_path());
        command.args(args);
        command
    };
    command.stdout(std::process::Stdio::null());
    command.status().is_ok_and(|status| status.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.starts_with(b"0\n"))
}
