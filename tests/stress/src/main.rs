//! Seeded, randomized, concurrent stress test of `cte_ctel` against a live server, with optional
//! crashes (kill -9 of the postmaster at random moments, then a restart).
//!
//! Several sessions issue a random mix of operations: transfers, deposits, three-step events
//! whose last step may be impossible, withdrawals held until an external payout is reported
//! done or failed, exchanges with fees, batches, liens captured, released or left to expire,
//! custom steps that fail, cancels, and events left for the worker to time out. Every event
//! carries an idempotency key and every lien its key in its metadata, so that after a crash the
//! outcome of an operation in flight is read from the database rather than guessed.
//!
//! Beside them, SPEC §12 under load: a slow custom executor (a step sleeping 1–3 s) keeps the
//! events worker busy for most of the run, an administrator who is not a superuser leaves
//! `cte_run_maintenance()` open in an idle transaction for 1–3 s at a time, and a probe on
//! wallets of its own times, every 0.5–1 s, a lien falling due until it is expired and a
//! committed transfer until it has a position in the feed.
//!
//! Checks: `cte_verify_ledger()` during the run (from a monitor session) and after it; each
//! completed event's postings against what the client asked for, each compensated event's
//! against nothing; every balance against the client's own model; no event left unfinished,
//! no lien left active past its expiry; no probe waited over `LATENCY_MS_MAX` for the worker
//! (a probe a crash overlapped, or whose lien an admin's pass may have expired, is not
//! counted). Prints the seed, the counts, the slowest probes and every violation; exits 1 if
//! there is any.
//!
//! Usage: cte_ctel_stress --host DIR --port N [--database NAME] [--seed N] [--sessions N]
//!        [--operations N] [--crashes N --pgdata DIR]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use rust_decimal::{Decimal, RoundingStrategy};

/// The refusal codes this client expects (docs/errors.md).
const TRANSITION_NOT_ALLOWED: &str = "L0023";
const INSUFFICIENT_FUNDS: &str = "L0020";

const ACCOUNTS: usize = 12;
const FUNDS_USD: i64 = 1_000;
const FUNDS_EUR: i64 = 500;
const EXCHANGE_RATE: &str = "0.85";
/// Longest wait for the server to come back, the worker to settle, a connection to open.
const WAIT_MAX: Duration = Duration::from_secs(90);

/// The idle administrator's role: a member of `cte_admin` that logs in and is not a superuser.
const ADMIN_ROLE: &str = "stress_admin";
/// The latency probe's own wallets, outside the sessions' choices: its transfers go from the
/// first to the second (each a cent, keyed like the sessions' events and so in the model), and
/// its liens hold a cent of the first.
const PROBE_FROM: &str = "probe-from";
const PROBE_TO: &str = "probe-to";
/// How long after it is made a probe's lien falls due.
const PROBE_LIEN_DUE_MS: u64 = 300;
/// How often a probe looks whether its lien is expired and its transfer in the feed.
const PROBE_POLL: Duration = Duration::from_millis(20);
/// SPEC §12 allows about one worker interval (200 ms in these runs) between a lien falling due,
/// or a change committing, and the worker expiring or sequencing it, whatever an executor or
/// an idle transaction does. The rest is slack for a loaded 2-core machine (an unhindered
/// worker takes at most about 250 ms here).
const LATENCY_MS_MAX: u64 = 1_500;
/// A probe stops looking after this long; what it waited for is then counted as late.
const PROBE_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long the slow step sleeps, and the idle admin sits in its open transaction: both range
/// well past the bound, so that a worker held for the whole of either shows as a late probe
/// (a hold no longer than the bound never could).
const HOLD_MS_MIN: u64 = 1_000;
const HOLD_MS_MAX: u64 = 3_000;
const _: () = assert!(HOLD_MS_MIN < HOLD_MS_MAX);
const _: () = assert!(LATENCY_MS_MAX + 1_000 <= HOLD_MS_MAX);
const _: () = assert!(LATENCY_MS_MAX < PROBE_WAIT_MAX.as_millis() as u64);
/// The actor the workers record on the changes they make.
const WORKER_ACTOR: &str = "cte_ctel worker";

struct Config {
    host: String,
    port: u16,
    database: String,
    seed: u64,
    sessions: usize,
    operations: usize,
    crashes: usize,
    pgdata: Option<String>,
}

fn config() -> Config {
    let mut config = Config {
        host: "/tmp".into(),
        port: 5432,
        database: "cte_stress".into(),
        seed: 1,
        sessions: 4,
        operations: 100,
        crashes: 0,
        pgdata: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let number =
            || value.parse::<u64>().unwrap_or_else(|_| panic!("{} wants a number", pair[0]));
        match pair[0].as_str() {
            "--host" => config.host = value.clone(),
            "--port" => config.port = number() as u16,
            "--database" => config.database = value.clone(),
            "--seed" => config.seed = number(),
            "--sessions" => config.sessions = number() as usize,
            "--operations" => config.operations = number() as usize,
            "--crashes" => config.crashes = number() as usize,
            "--pgdata" => config.pgdata = Some(value.clone()),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(config.crashes == 0 || config.pgdata.is_some(), "--crashes needs --pgdata");
    config
}

/// xorshift64: deterministic per seed, so a run's choices replay from its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn account(&mut self) -> String {
        format!("s{:02}", self.below(ACCOUNTS as u64))
    }
    fn two_accounts(&mut self) -> (String, String) {
        let first = self.account();
        loop {
            let second = self.account();
            if second != first {
                return (first, second);
            }
        }
    }
    /// An amount of 0.01 to 60.00 with two decimals (now and then an impossible one).
    fn amount(&mut self) -> Decimal {
        if self.chance(3) {
            return Decimal::new(1_000_000, 0);
        }
        Decimal::new(1 + self.below(6_000) as i64, 2)
    }
}

/// What an operation must have done to wallets if its event completed: (account, currency, Δ).
type Deltas = Vec<(String, &'static str, Decimal)>;

#[derive(Default)]
struct Shared {
    expected: Mutex<BTreeMap<String, Deltas>>,
    liens: Mutex<Vec<(String, String, String)>>,
    violations: Mutex<Vec<String>>,
    operations: AtomicUsize,
    interrupted: AtomicUsize,
    failed: AtomicUsize,
    crashes: AtomicUsize,
    /// Set once every requested crash has happened: sessions work on until then.
    crashes_done: AtomicBool,
    stop: AtomicBool,
    /// Stops the bank (`bank`) once every event has settled.
    bank_stop: AtomicBool,
    /// Late reports the bank sent (a "paid" after the event stopped waiting on it).
    late_reports: AtomicUsize,
    /// Worker passes after which the monitor verified the ledger.
    passes_verified: AtomicUsize,
    /// Crashes begun (the kill sent); with `crashes` (the server back) it tells a probe that a
    /// crash overlapped it.
    crashes_started: AtomicUsize,
    /// Slow steps that ended (`slow_executor`).
    slow_steps: AtomicUsize,
    /// The idle admin's `cte_run_maintenance()` calls begun, when the one under way was sent,
    /// and whether its transaction sits idle now (`idle_admin`).
    admin_passes: AtomicUsize,
    admin_pass_sent_at: Mutex<Option<Instant>>,
    admin_idle: AtomicBool,
    /// What the probes measured (`prober`).
    expiry: Latency,
    feed: Latency,
    /// Liens an admin's pass may have expired (one began while the lien waited): not counted.
    expiry_left_to_admin: AtomicUsize,
    /// Probes a crash overlapped: not counted.
    probes_crashed: AtomicUsize,
    /// Probes begun while the events worker sat in a slow step, or the admin idled.
    probes_during_slow_step: AtomicUsize,
    probes_during_admin_idle: AtomicUsize,
    /// Every probe over `LATENCY_MS_MAX`, or whose lien someone else than the worker expired:
    /// the violations of the latency check, raised with its verdict after the run.
    probes_late: Mutex<Vec<String>>,
}

/// One kind of latency the probes measure: how many counted, and the slowest.
#[derive(Default)]
struct Latency {
    probes: AtomicUsize,
    ms_max: AtomicU64,
}

impl Latency {
    fn record(&self, ms: u64) {
        self.probes.fetch_add(1, Ordering::Relaxed);
        self.ms_max.fetch_max(ms, Ordering::Relaxed);
    }
    fn describe(&self) -> String {
        let probes = self.probes.load(Ordering::Relaxed);
        format!("max {} ms over {probes} probes", self.ms_max.load(Ordering::Relaxed))
    }
}

impl Shared {
    fn violation(&self, text: String) {
        eprintln!("VIOLATION: {text}");
        self.violations.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    }
}

fn connect(config: &Config, database: &str) -> Client {
    connect_as(config, database, "postgres")
}

fn connect_as(config: &Config, database: &str, user: &str) -> Client {
    let started = Instant::now();
    loop {
        let params =
            format!("host={} port={} user={user} dbname={database}", config.host, config.port);
        match Client::connect(&params, NoTls) {
            Ok(client) => return client,
            Err(error) if started.elapsed() < WAIT_MAX => {
                let _ = error;
                thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("cannot connect to {database}: {error}"),
        }
    }
}

fn setup(config: &Config) {
    let mut admin = connect(config, "postgres");
    let database = &config.database;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {database}")).unwrap();
    let mut client = connect(config, database);
    client
        .batch_execute(
            "CREATE EXTENSION cte_ctel;
             CREATE FUNCTION public.maybe_fail(transaction_id uuid, payload jsonb) RETURNS jsonb
             LANGUAGE plpgsql AS $$
             BEGIN
                 IF (payload ->> 'fail')::boolean THEN
                     RAISE EXCEPTION 'asked to fail' USING ERRCODE = 'P0001';
                 END IF;
                 RETURN '{}';
             END $$;
             -- Misbehaving executors: one that starts its own event again from inside its step
             -- (refused: money must move once), one that fails retryably every other call (run
             -- again by the worker, at once in sessions without backoff), one that returns a
             -- result too large to keep.
             CREATE FUNCTION public.reenter(transaction_id uuid, payload jsonb) RETURNS jsonb
             LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM cte_ctel.cte_start_event(
                     (SELECT event_id FROM cte_ctel.cte_transactions WHERE id = transaction_id));
                 RETURN '{}';
             END $$;
             CREATE SEQUENCE public.flaky_calls;
             CREATE FUNCTION public.flaky(transaction_id uuid, payload jsonb) RETURNS jsonb
             LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('public.flaky_calls') % 2 = 1 THEN
                     RAISE EXCEPTION 'busy, try again' USING ERRCODE = '40001';
                 END IF;
                 RETURN '{}';
             END $$;
             CREATE FUNCTION public.bloated(transaction_id uuid, payload jsonb) RETURNS jsonb
             LANGUAGE sql AS $$ SELECT jsonb_build_object('blob', repeat('x', 2 * 1024 * 1024)) $$;
             -- Registered as SPEC §12 asks: by a role that is not a superuser, owning the
             -- functions, each pinned to its schema and pg_temp.
             DO $do$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'script_registrar') THEN
                     CREATE ROLE script_registrar NOLOGIN IN ROLE cte_admin;
                 END IF;
             END $do$;
             GRANT USAGE ON SEQUENCE public.flaky_calls TO script_registrar;
             ALTER FUNCTION public.maybe_fail(uuid, jsonb) OWNER TO script_registrar;
             ALTER FUNCTION public.maybe_fail(uuid, jsonb) SET search_path = public, pg_temp;
             ALTER FUNCTION public.reenter(uuid, jsonb) OWNER TO script_registrar;
             ALTER FUNCTION public.reenter(uuid, jsonb) SET search_path = public, pg_temp;
             ALTER FUNCTION public.flaky(uuid, jsonb) OWNER TO script_registrar;
             ALTER FUNCTION public.flaky(uuid, jsonb) SET search_path = public, pg_temp;
             ALTER FUNCTION public.bloated(uuid, jsonb) OWNER TO script_registrar;
             ALTER FUNCTION public.bloated(uuid, jsonb) SET search_path = public, pg_temp;
             SET ROLE script_registrar;
             SELECT cte_ctel.cte_register_executor('stress.maybe_fail', 'public.maybe_fail(uuid, jsonb)');
             SELECT cte_ctel.cte_register_executor('stress.reenter', 'public.reenter(uuid, jsonb)');
             SELECT cte_ctel.cte_register_executor('stress.flaky', 'public.flaky(uuid, jsonb)');
             SELECT cte_ctel.cte_register_executor('stress.bloated', 'public.bloated(uuid, jsonb)');
             RESET ROLE;
             SELECT cte_ctel.cte_create_account('fees', ARRAY['USD']);",
        )
        .unwrap();
    setup_latency(&mut client);
    for index in 0..ACCOUNTS {
        let account = format!("s{index:02}");
        client
            .execute("SELECT cte_ctel.cte_create_account($1, ARRAY['USD', 'EUR'])", &[&account])
            .unwrap();
        let usd = FUNDS_USD.to_string();
        let eur = FUNDS_EUR.to_string();
        client
            .execute("SELECT cte_ctel.cte_deposit($1, $2::text::numeric, 'USD')", &[&account, &usd])
            .unwrap();
        client
            .execute("SELECT cte_ctel.cte_deposit($1, $2::text::numeric, 'EUR')", &[&account, &eur])
            .unwrap();
    }
    // The run is a test of the worker too: wait until it serves the new database (dropping the
    // old one stopped it, and the postmaster starts it again 5 s later) and has made a pass.
    let started = Instant::now();
    while started.elapsed() < WAIT_MAX {
        let served = client.query_one("SELECT count(*) FROM cte_ctel.cte_worker_state", &[]);
        if served.map(|row| row.get::<_, i64>(0)).unwrap_or(0) > 0 {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("the worker made no pass in {database} within {WAIT_MAX:?}");
}

/// What the run's part of SPEC §12 needs: the slow executor (registered as the others are),
/// the idle admin's role, and the probe's wallets.
fn setup_latency(client: &mut Client) {
    client
        .batch_execute(
            "-- It sleeps as long as its payload says and moves nothing; undoing it is nothing.
             CREATE FUNCTION public.slow(transaction_id uuid, payload jsonb) RETURNS jsonb
             LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM pg_sleep((payload ->> 'ms')::int / 1000.0);
                 RETURN '{}';
             END $$;
             CREATE FUNCTION public.slow_undo(transaction_id uuid, payload jsonb, result jsonb)
             RETURNS void LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
             ALTER FUNCTION public.slow(uuid, jsonb) OWNER TO script_registrar;
             ALTER FUNCTION public.slow(uuid, jsonb) SET search_path = public, pg_temp;
             ALTER FUNCTION public.slow_undo(uuid, jsonb, jsonb) OWNER TO script_registrar;
             ALTER FUNCTION public.slow_undo(uuid, jsonb, jsonb) SET search_path = public, pg_temp;
             SET ROLE script_registrar;
             SELECT cte_ctel.cte_register_executor('stress.slow', 'public.slow(uuid, jsonb)',
                                                   'public.slow_undo(uuid, jsonb, jsonb)');
             RESET ROLE;
             -- The idle admin (ADMIN_ROLE): an administrator that is not a superuser.
             DO $do$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stress_admin') THEN
                     CREATE ROLE stress_admin LOGIN IN ROLE cte_admin;
                 END IF;
             END $do$;",
        )
        .unwrap();
    for account in [PROBE_FROM, PROBE_TO] {
        client
            .execute("SELECT cte_ctel.cte_create_account($1, ARRAY['USD'])", &[&account])
            .unwrap();
    }
    client
        .execute(
            "SELECT cte_ctel.cte_deposit($1, $2::text::numeric, 'USD')",
            &[&PROBE_FROM, &FUNDS_USD.to_string()],
        )
        .unwrap();
}

fn transfer(source: &str, destination: &str, amount: Decimal) -> (String, Deltas) {
    let payload = format!(
        r#"{{"source_account_id": "{source}", "destination_account_id": "{destination}", "amount": "{amount}", "currency": "USD"}}"#
    );
    let deltas =
        vec![(source.to_string(), "USD", -amount), (destination.to_string(), "USD", amount)];
    (payload, deltas)
}

/// Creates, fills and starts an event in one database transaction; returns its status.
fn run_event(
    client: &mut Client,
    key: &str,
    steps: &[(&str, String)],
    timeout_seconds: f64,
) -> Result<String, postgres::Error> {
    run_event_with(client, key, steps, timeout_seconds, None)
}

/// As `run_event`, with a lien held for the event (pending until it starts) that expires when
/// its timeout is up, the moment its deadline passes.
fn run_event_with(
    client: &mut Client,
    key: &str,
    steps: &[(&str, String)],
    timeout_seconds: f64,
    event_lien: Option<(&str, Decimal)>,
) -> Result<String, postgres::Error> {
    let mut transaction = client.transaction()?;
    let row = transaction.query_one(
        "SELECT cte_ctel.cte_create_event('stress', timeout => make_interval(secs => $1),
                                          idempotency_key => $2)::text",
        &[&timeout_seconds, &key],
    )?;
    let event: String = row.get(0);
    for (step_type, payload) in steps {
        transaction.execute(
            "SELECT cte_ctel.cte_add_transaction($1::text::uuid, 'step', $2, $3::text::jsonb)",
            &[&event, step_type, payload],
        )?;
    }
    if let Some((account, amount)) = event_lien {
        let hold = "SELECT cte_ctel.ctel_create_lien($1::text::uuid, $2, $3::text::numeric, 'USD',
                           statement_timestamp() + make_interval(secs => $4))";
        transaction.execute(hold, &[&event, &account, &amount.to_string(), &timeout_seconds])?;
    }
    let started =
        transaction.query_one("SELECT cte_ctel.cte_start_event($1::text::uuid)", &[&event]);
    let status: String = match started {
        Ok(row) => row.get(0),
        // The event's hold cannot be covered: the start is refused, and nothing of it stays.
        Err(error) if error.code().map(|c| c.code()) == Some(INSUFFICIENT_FUNDS) => {
            return Ok("refused".into())
        }
        Err(error) => return Err(error),
    };
    transaction.commit()?;
    Ok(status)
}

fn report(client: &mut Client, key: &str, complete: bool) -> Result<(), postgres::Error> {
    let step = "SELECT t.id::text FROM cte_ctel.cte_transactions t
                  JOIN cte_ctel.cte_events e ON e.id = t.event_id
                 WHERE e.idempotency_key = $1 AND t.type = 'external'";
    let Some(row) = client.query_opt(step, &[&key])? else { return Ok(()) };
    let step_id: String = row.get(0);
    let call = if complete {
        "SELECT cte_ctel.cte_complete_transaction($1::text::uuid, '{\"paid\": true}')"
    } else {
        "SELECT cte_ctel.cte_fail_transaction($1::text::uuid, 'payout refused', false)"
    };
    match client.execute(call, &[&step_id]) {
        // The worker may have timed the event out, or it was cancelled: refused, as it must be.
        Err(error) if error.code().map(|c| c.code()) == Some(TRANSITION_NOT_ALLOWED) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// One session's run: `operations` random operations, then its pending payouts reported.
/// A session's connection: every other session retries at once (no backoff), so immediate
/// retries meet everything else the run does.
fn session_client(config: &Config, index: usize) -> Client {
    let mut client = connect(config, &config.database);
    if index.is_multiple_of(2) {
        if let Err(error) = client.batch_execute("SET cte_ctel.retry_backoff_ms = 0") {
            eprintln!("session {index}: could not turn the retry backoff off: {error}");
        }
    }
    client
}

fn session(config: &Config, shared: &Shared, index: usize) {
    let mut random = Random(config.seed.wrapping_mul(1_000_003).wrapping_add(index as u64 + 1) | 1);
    let mut client = session_client(config, index);
    let mut pending: Vec<String> = Vec::new();
    let mut number = 0;
    while number < config.operations || !shared.crashes_done.load(Ordering::Relaxed) {
        number += 1;
        let roll = random.below(100);
        let key = format!("stress-{}-{index}-{number}-{}", config.seed, kind(roll));
        if let Err(error) = operation(&mut client, &mut random, shared, &key, roll, &mut pending) {
            if connection_lost(&error) && config.crashes > 0 {
                shared.interrupted.fetch_add(1, Ordering::Relaxed);
                client = session_client(config, index);
            } else if connection_lost(&error) {
                // Nothing kills the server in this run: a lost connection is a crash of ours.
                shared.violation(format!("{key}: connection lost {}", describe(&error)));
                client = session_client(config, index);
            } else {
                shared.violation(format!("{key}: unexpected error {}", describe(&error)));
            }
        }
        shared.operations.fetch_add(1, Ordering::Relaxed);
    }
    for key in pending {
        let complete = random.chance(70);
        while let Err(error) = report(&mut client, &key, complete) {
            if !connection_lost(&error) {
                shared.violation(format!("{key}: report failed: {}", describe(&error)));
                break;
            }
            client = connect(config, &config.database);
        }
    }
}

fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}

/// Whether an error is the server going away (a crash) rather than an answer: no SQLSTATE, a
/// closed connection, an admin shutdown / crash / starting-up (57P0x) or a connection class 08.
fn connection_lost(error: &postgres::Error) -> bool {
    match error.code() {
        None => true,
        Some(code) => {
            code.code().starts_with("57P0") || code.code().starts_with("08") || error.is_closed()
        }
    }
}

/// The operation a roll of 0–99 picks, by name (it goes into the key, for reading violations).
fn kind(roll: u64) -> &'static str {
    match roll {
        0..=29 => "transfer",
        30..=39 => "deposit",
        40..=49 => "three-steps",
        50..=59 => "withdrawal",
        60..=69 => "exchange",
        70..=79 => "batch",
        80..=89 => "lien",
        90..=94 => "custom",
        95..=97 => "cancel",
        _ => "timeout",
    }
}

fn expect(shared: &Shared, key: &str, deltas: Deltas) {
    shared.expected.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_string(), deltas);
}

fn operation(
    client: &mut Client,
    random: &mut Random,
    shared: &Shared,
    key: &str,
    roll: u64,
    pending: &mut Vec<String>,
) -> Result<(), postgres::Error> {
    let (a, b) = random.two_accounts();
    let amount = random.amount();
    let (one, mut deltas) = transfer(&a, &b, amount);
    let steps: Vec<(&str, String)> = match roll {
        0..=29 => vec![("wallet.transfer", one)],
        30..=39 => {
            let payload =
                format!(r#"{{"account_id": "{a}", "amount": "{amount}", "currency": "USD"}}"#);
            deltas = vec![(a.clone(), "USD", amount)];
            vec![("wallet.deposit", payload)]
        }
        40..=49 => {
            let (c, d) = random.two_accounts();
            let (two, more) = transfer(&c, &d, random.amount());
            deltas.extend(more);
            let small = Decimal::new(1 + random.below(500) as i64, 2);
            deltas.push((b.clone(), "EUR", small));
            let deposit =
                format!(r#"{{"account_id": "{b}", "amount": "{small}", "currency": "EUR"}}"#);
            vec![("wallet.transfer", one), ("wallet.deposit", deposit), ("wallet.transfer", two)]
        }
        50..=59 => {
            let payload =
                format!(r#"{{"account_id": "{a}", "amount": "{amount}", "currency": "USD"}}"#);
            deltas = vec![(a.clone(), "USD", -amount)];
            pending.push(key.to_string());
            vec![("wallet.withdrawal", payload), ("external", "{}".into())]
        }
        60..=69 => {
            let fee = Decimal::new(1 + random.below(200) as i64, 2);
            let rate = Decimal::from_str_exact(EXCHANGE_RATE).unwrap_or_default();
            let bought =
                (amount * rate).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
            deltas = vec![
                (a.clone(), "USD", -amount - fee),
                (b.clone(), "EUR", bought),
                ("fees".into(), "USD", fee),
            ];
            let payload = format!(
                r#"{{"source_account_id": "{a}", "source_currency": "USD", "source_amount": "{amount}",
                    "destination_account_id": "{b}", "destination_currency": "EUR",
                    "exchange_rate": "{EXCHANGE_RATE}", "fee_account_id": "fees", "fee_amount": "{fee}"}}"#
            );
            vec![("wallet.exchange", payload)]
        }
        70..=79 => {
            let mut items = Vec::new();
            for item in 0..3 {
                let (c, d) = random.two_accounts();
                let (payload, more) = transfer(&c, &d, random.amount());
                deltas = if item == 0 { more } else { [deltas, more].concat() };
                items.push(format!(
                    r#"{{"id": "i{item}", "type": "wallet.transfer", "payload": {payload}}}"#
                ));
            }
            vec![("batch.operation", format!(r#"{{"transactions": [{}]}}"#, items.join(", ")))]
        }
        80..=89 => return lien(client, random, shared, key, &a, &b, amount),
        90..=94 => {
            let fail = random.chance(50);
            let custom = match random.below(5) {
                0 => "stress.reenter",
                1 => "stress.flaky",
                2 => "stress.bloated",
                _ => "stress.maybe_fail",
            };
            vec![("wallet.transfer", one), (custom, format!(r#"{{"fail": {fail}}}"#))]
        }
        95..=97 => {
            expect(shared, key, deltas);
            let status = run_event(
                client,
                key,
                &[("wallet.transfer", one), ("external", "{}".into())],
                60.0,
            )?;
            // A refused transfer has compensated the event already; only a waiting one is cancelled.
            if status == "waiting" {
                let cancel =
                    "SELECT cte_ctel.cte_cancel_event(id, 'stress') FROM cte_ctel.cte_events
                               WHERE idempotency_key = $1";
                client.execute(cancel, &[&key])?;
            }
            return Ok(());
        }
        _ => {
            // Left waiting: the worker times it out when its two seconds are up, and the lien
            // held for it expires at that very moment too.
            expect(shared, key, deltas);
            let steps = [("wallet.transfer", one), ("external", "{}".into())];
            run_event_with(client, key, &steps, 2.0, Some((&b, random.amount())))?;
            return Ok(());
        }
    };
    expect(shared, key, deltas);
    run_event(client, key, &steps, 60.0).map(|_| ())
}

fn lien(
    client: &mut Client,
    random: &mut Random,
    shared: &Shared,
    key: &str,
    account: &str,
    destination: &str,
    amount: Decimal,
) -> Result<(), postgres::Error> {
    shared.liens.lock().unwrap_or_else(|e| e.into_inner()).push((
        key.into(),
        account.into(),
        destination.into(),
    ));
    let expires = if random.chance(30) { 1.0 } else { 600.0 };
    let amount = amount.to_string();
    let create = "SELECT cte_ctel.ctel_create_lien(NULL, $1, $2::text::numeric, 'USD',
                         now() + make_interval(secs => $3), jsonb_build_object('op', $4::text))::text";
    let lien: String = match client.query_one(create, &[&account, &amount, &expires, &key]) {
        Ok(row) => row.get(0),
        Err(error) if error.code().map(|c| c.code()) == Some(INSUFFICIENT_FUNDS) => return Ok(()),
        Err(error) => return Err(error),
    };
    let settled = match random.below(3) {
        0 => {
            let part = Decimal::from_str_exact(&amount).unwrap_or_default() / Decimal::from(2);
            let part = part
                .round_dp_with_strategy(2, RoundingStrategy::ToZero)
                .max(Decimal::new(1, 2))
                .to_string();
            client.execute(
                "SELECT cte_ctel.ctel_capture_lien($1::text::uuid, $2, $3::text::numeric)",
                &[&lien, &destination, &part],
            )
        }
        1 => client.execute("SELECT cte_ctel.ctel_release_lien($1::text::uuid)", &[&lien]),
        _ => Ok(0),
    };
    match settled {
        // A one-second lien may expire before it is captured or released (a crash, a slow
        // machine): refused as expired, which is right only if its time has passed.
        Err(error) if error.code().map(|c| c.code()) == Some(TRANSITION_NOT_ALLOWED) => {
            let expired: bool = client
                .query_one(
                    "SELECT status = 'expired' OR expires_at <= now()
                       FROM cte_ctel.cte_liens WHERE id = $1::text::uuid",
                    &[&lien],
                )?
                .get(0);
            if !expired {
                return Err(error);
            }
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// Verifies the ledger after every worker pass it sees (the pass's time in `cte_worker_state`
/// moved), and at least every 300 ms whatever the worker does.
fn monitor(config: &Config, shared: &Shared) {
    const LAST_PASS: &str = "SELECT last_pass_at::text FROM cte_ctel.cte_worker_state";
    const VERIFY: &str = "SELECT check_name || ': ' || detail FROM cte_ctel.cte_verify_ledger()";
    let mut client = connect(config, &config.database);
    let mut last_pass: Option<String> = None;
    let mut verified_at = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let pass = match client.query_opt(LAST_PASS, &[]) {
            Ok(row) => row.map(|row| row.get::<_, String>(0)),
            Err(_) => {
                client = connect(config, &config.database);
                continue;
            }
        };
        let new_pass = pass.is_some() && pass != last_pass;
        if new_pass || verified_at.elapsed() >= Duration::from_millis(300) {
            match client.query(VERIFY, &[]) {
                Ok(rows) => {
                    for row in rows {
                        shared.violation(format!("during the run: {}", row.get::<_, String>(0)));
                    }
                    if new_pass {
                        shared.passes_verified.fetch_add(1, Ordering::Relaxed);
                    }
                    last_pass = pass;
                    verified_at = Instant::now();
                }
                Err(_) => client = connect(config, &config.database),
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A client that holds a wallet and does nothing: it opens a transaction, holds funds on a
/// random wallet (locking its row), sits idle for up to 1.5 s, and rolls back. Sessions wait for
/// it; the worker must not (it skips what is locked and comes back).
fn idler(config: &Config, shared: &Shared) {
    let mut client = connect(config, &config.database);
    let mut random = Random(config.seed.wrapping_mul(104_729) | 1);
    while !shared.stop.load(Ordering::Relaxed) {
        let account = random.account();
        let idle = Duration::from_millis(300 + random.below(1_200));
        let held = (|| -> Result<(), postgres::Error> {
            let mut transaction = client.transaction()?;
            transaction
                .execute("SELECT cte_ctel.ctel_create_lien(NULL, $1, 0.01, 'USD')", &[&account])?;
            thread::sleep(idle);
            transaction.rollback()
        })();
        if held.is_err() {
            thread::sleep(Duration::from_millis(200));
            client = connect(config, &config.database);
        }
        thread::sleep(Duration::from_millis(200 + random.below(800)));
    }
}

/// The application's side of external steps asked to compensate (their event was cancelled or
/// timed out while they waited, or a later step failed): it reports each compensation done, and
/// now and then first sends a late "it was paid" that must change nothing (SPEC v2).
fn bank(config: &Config, shared: &Shared) {
    let mut client = connect(config, &config.database);
    let mut random = Random(config.seed.wrapping_mul(7_919) | 1);
    let asked = "SELECT t.id::text FROM cte_ctel.cte_transactions t
                   JOIN cte_ctel.cte_events e ON e.id = t.event_id
                  WHERE t.type = 'external' AND t.status = 'compensating'
                    AND e.status = 'compensating' AND e.idempotency_key LIKE 'stress-%'";
    while !shared.bank_stop.load(Ordering::Relaxed) {
        let steps: Vec<String> = match client.query(asked, &[]) {
            Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
            Err(_) => {
                thread::sleep(Duration::from_millis(200));
                client = connect(config, &config.database);
                continue;
            }
        };
        for step in steps {
            if random.chance(20) {
                let late =
                    "SELECT cte_ctel.cte_complete_transaction($1::text::uuid, '{\"late\": true}')";
                if client.execute(late, &[&step]).is_ok() {
                    shared.late_reports.fetch_add(1, Ordering::Relaxed);
                }
            }
            let done = "SELECT cte_ctel.cte_complete_compensation($1::text::uuid)";
            if let Err(error) = client.execute(done, &[&step]) {
                if connection_lost(&error) {
                    break;
                }
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Keeps the events worker inside a slow custom step for most of the run (SPEC §12: no executor
/// can hold the worker): one event at a time, whose one step sleeps 1–3 s and moves nothing,
/// scheduled a moment ahead so that the worker starts it and runs the step, not this session.
fn slow_executor(config: &Config, shared: &Shared) {
    let mut client = connect(config, &config.database);
    let mut random = Random(config.seed.wrapping_mul(15_485_863) | 1);
    let mut number = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        number += 1;
        let key = format!("stress-{}-slow-{number}", config.seed);
        let sleep_ms = HOLD_MS_MIN + random.below(HOLD_MS_MAX - HOLD_MS_MIN);
        // Completed or compensated, it must have posted nothing.
        expect(shared, &key, Deltas::new());
        let ran = slow_executor_schedule(&mut client, &key, sleep_ms)
            .and_then(|()| slow_executor_wait(&mut client, shared, &key));
        match ran {
            Ok(()) => {}
            Err(error) if connection_lost(&error) && config.crashes > 0 => {
                client = connect(config, &config.database);
            }
            Err(error) => {
                shared.violation(format!("{key}: unexpected error {}", describe(&error)));
                if connection_lost(&error) {
                    client = connect(config, &config.database);
                }
            }
        }
        nap(shared, Duration::from_millis(100 + random.below(200)));
    }
}

/// Creates the slow event and schedules its start 100 ms ahead, in one database transaction.
fn slow_executor_schedule(
    client: &mut Client,
    key: &str,
    sleep_ms: u64,
) -> Result<(), postgres::Error> {
    let sleep_ms = i32::try_from(sleep_ms).unwrap_or(i32::MAX);
    let mut transaction = client.transaction()?;
    let row = transaction.query_one(
        "SELECT cte_ctel.cte_create_event('stress', timeout => interval '60 seconds',
                                          idempotency_key => $1)::text",
        &[&key],
    )?;
    let event: String = row.get(0);
    transaction.execute(
        "SELECT cte_ctel.cte_add_transaction($1::text::uuid, 'sleep', 'stress.slow',
                                             jsonb_build_object('ms', $2::int))",
        &[&event, &sleep_ms],
    )?;
    transaction.execute(
        "SELECT cte_ctel.cte_start_event($1::text::uuid,
                                         clock_timestamp() + interval '100 milliseconds')",
        &[&event],
    )?;
    transaction.commit()
}

/// Waits for the slow event to end (or the run to); one still running then is left to the
/// final check that every event finished.
fn slow_executor_wait(
    client: &mut Client,
    shared: &Shared,
    key: &str,
) -> Result<(), postgres::Error> {
    let ended = "SELECT status IN ('completed', 'compensated', 'failed', 'resolved')
                   FROM cte_ctel.cte_events WHERE idempotency_key = $1";
    let started = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) && started.elapsed() < WAIT_MAX {
        if client.query_one(ended, &[&key])?.get::<_, bool>(0) {
            shared.slow_steps.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// An administrator (not a superuser) who runs maintenance by hand and leaves the transaction
/// open: `BEGIN; SELECT cte_run_maintenance();`, 1–3 s idle, then `COMMIT` (now and then
/// `ROLLBACK`). SPEC §12: no role's open transaction delays sequencing by more than about one
/// worker interval; the probes measure it.
fn idle_admin(config: &Config, shared: &Shared) {
    let mut client = connect_as(config, &config.database, ADMIN_ROLE);
    let mut random = Random(config.seed.wrapping_mul(6_700_417) | 1);
    while !shared.stop.load(Ordering::Relaxed) {
        let idle = Duration::from_millis(HOLD_MS_MIN + random.below(HOLD_MS_MAX - HOLD_MS_MIN));
        let commit = random.chance(80);
        let held = (|| -> Result<(), postgres::Error> {
            let mut transaction = client.transaction()?;
            *shared.admin_pass_sent_at.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now());
            shared.admin_passes.fetch_add(1, Ordering::Relaxed);
            let pass = transaction.execute("SELECT cte_ctel.cte_run_maintenance()", &[]);
            *shared.admin_pass_sent_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
            pass?;
            shared.admin_idle.store(true, Ordering::Relaxed);
            nap(shared, idle);
            shared.admin_idle.store(false, Ordering::Relaxed);
            if commit {
                transaction.commit()
            } else {
                transaction.rollback()
            }
        })();
        match held {
            Ok(()) => {}
            Err(error) if connection_lost(&error) && config.crashes > 0 => {
                client = connect_as(config, &config.database, ADMIN_ROLE);
            }
            Err(error) => {
                shared.violation(format!("the idle admin's pass failed: {}", describe(&error)));
                if connection_lost(&error) {
                    client = connect_as(config, &config.database, ADMIN_ROLE);
                }
            }
        }
        nap(shared, Duration::from_millis(500 + random.below(1_000)));
    }
}

/// What one latency probe saw.
struct Probe {
    /// The events worker sat in a slow step, or the admin idled, when the probe began.
    slow_step: bool,
    admin_idle: bool,
    /// From the lien falling due (or committing, if later) to its being seen expired; `None`
    /// when an admin's pass began meanwhile: it may have expired the lien instead of the worker.
    expiry_ms: Option<u64>,
    /// Who expired the lien, as the change records it.
    expired_by: String,
    /// From the transfer's commit to its change being seen with a position in the feed.
    feed_ms: u64,
}

const SLOW_STEP_RUNNING: &str = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                  WHERE backend_type = 'cte_ctel maintenance'
                                    AND wait_event = 'PgSleep')";

/// SPEC §12 measured, while the events worker sits in a slow step and an admin idles in an open
/// transaction: every 0.5–1 s, on wallets of its own, a lien that falls due 300 ms after it is
/// made is timed until it is expired, and a committed transfer until its change has a position
/// in `cte_change_log`. Probes a crash overlapped are not counted.
fn prober(config: &Config, shared: &Shared) {
    let mut client = connect(config, &config.database);
    let mut random = Random(config.seed.wrapping_mul(2_750_159) | 1);
    let mut number = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        number += 1;
        let key = format!("stress-{}-probe-{number}", config.seed);
        let crashes = prober_crash_mark(shared);
        let probed = probe(&mut client, shared, &key);
        let crashed = prober_crash_mark(shared) != crashes;
        match probed {
            Ok(_) if crashed => {
                shared.probes_crashed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(probe) => prober_record(shared, &key, &probe),
            Err(error) if connection_lost(&error) && config.crashes > 0 => {
                shared.probes_crashed.fetch_add(1, Ordering::Relaxed);
                client = connect(config, &config.database);
            }
            Err(error) => {
                shared.violation(format!("{key}: unexpected error {}", describe(&error)));
                if connection_lost(&error) {
                    client = connect(config, &config.database);
                }
            }
        }
        nap(shared, Duration::from_millis(500 + random.below(500)));
    }
}

/// Counts what a probe saw; a late one is kept for the check after the run.
fn prober_record(shared: &Shared, key: &str, probe: &Probe) {
    if probe.slow_step {
        shared.probes_during_slow_step.fetch_add(1, Ordering::Relaxed);
    }
    if probe.admin_idle {
        shared.probes_during_admin_idle.fetch_add(1, Ordering::Relaxed);
    }
    let during =
        format!("(slow step running: {}, admin idle: {})", probe.slow_step, probe.admin_idle);
    let mut late = Vec::new();
    match probe.expiry_ms {
        None => {
            shared.expiry_left_to_admin.fetch_add(1, Ordering::Relaxed);
        }
        Some(ms) => {
            shared.expiry.record(ms);
            if ms > LATENCY_MS_MAX {
                late.push(format!("{key}: a lien was expired {ms} ms after it fell due {during}"));
            }
            if probe.expired_by != WORKER_ACTOR {
                late.push(format!(
                    "{key}: a lien was expired by {:?}, not the worker {during}",
                    probe.expired_by
                ));
            }
        }
    }
    shared.feed.record(probe.feed_ms);
    if probe.feed_ms > LATENCY_MS_MAX {
        late.push(format!(
            "{key}: a committed transfer waited {} ms for its place in the feed {during}",
            probe.feed_ms
        ));
    }
    for text in late {
        eprintln!("late probe: {text}");
        shared.probes_late.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    }
}

/// Crashes begun and crashes over: a probe during which either moved spans a crash.
fn prober_crash_mark(shared: &Shared) -> (usize, usize) {
    (shared.crashes_started.load(Ordering::Relaxed), shared.crashes.load(Ordering::Relaxed))
}

/// One probe: a lien due in 300 ms and a committed transfer, then both watched together.
fn probe(client: &mut Client, shared: &Shared, key: &str) -> Result<Probe, postgres::Error> {
    let slow_step: bool = client.query_one(SLOW_STEP_RUNNING, &[])?.get(0);
    let admin_idle = shared.admin_idle.load(Ordering::Relaxed);
    let admin_passes = shared.admin_passes.load(Ordering::Relaxed);
    let admin_pass_sent_at = *shared.admin_pass_sent_at.lock().unwrap_or_else(|e| e.into_inner());
    let sent = Instant::now();
    let due_ms = i32::try_from(PROBE_LIEN_DUE_MS).unwrap_or(i32::MAX);
    let lien: String = client
        .query_one(
            "SELECT cte_ctel.ctel_create_lien(NULL, $1, 0.01, 'USD',
                    clock_timestamp() + $2::int * interval '1 millisecond')::text",
            &[&PROBE_FROM, &due_ms],
        )?
        .get(0);
    // Due no earlier than this (the server read its clock after the call was sent), and not
    // expirable before it committed.
    let due = (sent + Duration::from_millis(PROBE_LIEN_DUE_MS)).max(Instant::now());
    let (_, deltas) = transfer(PROBE_FROM, PROBE_TO, Decimal::new(1, 2));
    expect(shared, key, deltas);
    let event: String = client
        .query_one(
            "SELECT cte_ctel.cte_transfer($1, $2, 0.01, 'USD', $3)::text",
            &[&PROBE_FROM, &PROBE_TO, &key],
        )?
        .get(0);
    let committed = Instant::now();
    let (expired_at, sequenced_at) = probe_watch(client, &lien, &event)?;
    // A pass begun since the lien was made may have expired it in the admin's transaction: then
    // the admin, not the worker, decided when it showed. One begun before cannot have: a pass
    // takes the liens due at its statement's start. (The one under way may have been sent just
    // now, its count not yet up: within 100 ms it counts as begun since.)
    let admin_passed = shared.admin_passes.load(Ordering::Relaxed) != admin_passes
        || admin_pass_sent_at.is_some_and(|at| at + Duration::from_millis(100) >= sent);
    let expired_by: Option<String> = client
        .query_opt(
            "SELECT actor FROM cte_ctel.cte_event_history
              WHERE lien_id = $1::text::uuid AND new_status = 'expired'",
            &[&lien],
        )?
        .map(|row| row.get(0));
    let millis = |from: Instant, to: Instant| to.saturating_duration_since(from).as_millis() as u64;
    Ok(Probe {
        slow_step,
        admin_idle,
        expiry_ms: if admin_passed { None } else { Some(millis(due, expired_at)) },
        expired_by: expired_by.unwrap_or_else(|| "nobody".into()),
        feed_ms: millis(committed, sequenced_at),
    })
}

/// Looks every 20 ms until the lien is expired and the event has a position in the feed;
/// returns when each was first seen (or when the probe gave up on it).
fn probe_watch(
    client: &mut Client,
    lien: &str,
    event: &str,
) -> Result<(Instant, Instant), postgres::Error> {
    let seen = "SELECT (SELECT status = 'expired' FROM cte_ctel.cte_liens
                         WHERE id = $1::text::uuid),
                       EXISTS (SELECT 1 FROM cte_ctel.cte_change_log
                                WHERE event_id = $2::text::uuid)";
    let started = Instant::now();
    let (mut expired_at, mut sequenced_at) = (None, None);
    while expired_at.is_none() || sequenced_at.is_none() {
        let row = client.query_one(seen, &[&lien, &event])?;
        let now = Instant::now();
        if expired_at.is_none() && row.get::<_, Option<bool>>(0) == Some(true) {
            expired_at = Some(now);
        }
        if sequenced_at.is_none() && row.get::<_, bool>(1) {
            sequenced_at = Some(now);
        }
        if started.elapsed() > PROBE_WAIT_MAX {
            break;
        }
        thread::sleep(PROBE_POLL);
    }
    let now = Instant::now();
    Ok((expired_at.unwrap_or(now), sequenced_at.unwrap_or(now)))
}

fn server_command(pgdata: &str, action: &str) -> bool {
    // bin/common.sh exports the chosen major's PG_BIN; Debian's 15 otherwise.
    let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_owned());
    let pg_ctl = format!("{bin}/pg_ctl");
    let pg_ctl = pg_ctl.as_str();
    let log = format!("{pgdata}/server.log");
    let args = ["-D", pgdata, "-w", "-t", "90", "-l", &log, action];
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "env", "RUST_BACKTRACE=1", pg_ctl]).args(args);
        command
    } else {
        let mut command = Command::new(pg_ctl);
        command.env("RUST_BACKTRACE", "1").args(args);
        command
    };
    let status = command.status().expect("pg_ctl runs");
    status.success()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// Kills the postmaster with SIGKILL `crashes` times at random moments, each time waiting for
/// it to vanish (PG15's pg_ctl cannot be told to) and starting it again.
fn crasher(config: &Config, shared: &Shared) {
    let pgdata = config.pgdata.clone().unwrap_or_default();
    let mut random = Random(config.seed | 1);
    for _ in 0..config.crashes {
        crash_once(&pgdata, &mut random, shared);
    }
    shared.crashes_done.store(true, Ordering::Relaxed);
}

fn crash_once(pgdata: &str, random: &mut Random, shared: &Shared) {
    thread::sleep(Duration::from_millis(800 + random.below(2_500)));
    let pid_file = std::fs::read_to_string(format!("{pgdata}/postmaster.pid")).unwrap_or_default();
    let pid = pid_file.lines().next().unwrap_or_default().trim().to_string();
    assert!(!pid.is_empty(), "the postmaster runs");
    shared.crashes_started.fetch_add(1, Ordering::Relaxed);
    let killed = Command::new("kill").args(["-9", &pid]).status();
    assert!(killed.is_ok_and(|status| status.success()), "kill -9 {pid} worked");
    let started = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && started.elapsed() < WAIT_MAX {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    // A backend busy in a long statement notices the postmaster's death late and keeps the old
    // shared memory attached meanwhile; the new postmaster refuses to start until it is gone.
    let started = Instant::now();
    while !server_command(pgdata, "start") {
        assert!(started.elapsed() < WAIT_MAX, "the server starts again after a crash");
        thread::sleep(Duration::from_millis(500));
    }
    shared.crashes.fetch_add(1, Ordering::Relaxed);
    eprintln!("crash {} done, server restarted", shared.crashes.load(Ordering::Relaxed));
}

/// Sleeps for `duration`, or until the run stops if that is sooner: the threads that hold
/// things for seconds (the idle admin, the prober) must not keep the run waiting at its end.
fn nap(shared: &Shared, duration: Duration) {
    let started = Instant::now();
    while started.elapsed() < duration && !shared.stop.load(Ordering::Relaxed) {
        thread::sleep(duration.saturating_sub(started.elapsed()).min(Duration::from_millis(50)));
    }
}

fn wait_until(client: &mut Client, what: &str, sql: &str, shared: &Shared) {
    let started = Instant::now();
    loop {
        let done: bool = client.query_one(sql, &[]).map(|row| row.get(0)).unwrap_or(false);
        if done {
            return;
        }
        if started.elapsed() > WAIT_MAX {
            shared.violation(format!("never settled: {what}"));
            return;
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// A thread of the run beside the sessions.
type Background = fn(&Config, &Shared);

fn spawn(config: &Arc<Config>, shared: &Arc<Shared>, body: Background) -> thread::JoinHandle<()> {
    let (config, shared) = (config.clone(), shared.clone());
    thread::spawn(move || body(&config, &shared))
}

fn main() {
    let config = Arc::new(config());
    println!(
        "stress: seed {} sessions {} operations per session {} crashes {}",
        config.seed, config.sessions, config.operations, config.crashes
    );
    setup(&config);
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let monitor_thread = spawn(&config, &shared, monitor);
    let crash_thread = spawn(&config, &shared, crasher);
    let bank_thread = spawn(&config, &shared, bank);
    // Until the sessions end: what holds things (a wallet, the events worker, an open
    // maintenance pass) and the probe that times the worker meanwhile.
    let holders: [(&str, Background); 4] = [
        ("idler", idler),
        ("slow executor", slow_executor),
        ("idle admin", idle_admin),
        ("prober", prober),
    ];
    let holders = holders.map(|(name, body)| (name, spawn(&config, &shared, body)));
    let sessions: Vec<_> = (0..config.sessions)
        .map(|index| {
            let (config, shared) = (config.clone(), shared.clone());
            thread::spawn(move || session(&config, &shared, index))
        })
        .collect();
    for handle in sessions {
        handle.join().expect("a session ran to its end");
    }
    shared.stop.store(true, Ordering::Relaxed);
    crash_thread.join().expect("the crasher ran to its end");
    for (name, handle) in holders {
        handle.join().unwrap_or_else(|_| panic!("the {name} ran to its end"));
    }
    monitor_thread.join().expect("the monitor ran to its end");
    let elapsed = started.elapsed();
    check(&config, &shared, bank_thread);
    let violations = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    println!(
        "stress: seed {} operations {} interrupted by crashes {} failed for an operator {} late reports {} crashes {} violations {violations} in {:.1}s",
        config.seed,
        shared.operations.load(Ordering::Relaxed),
        shared.interrupted.load(Ordering::Relaxed),
        shared.failed.load(Ordering::Relaxed),
        shared.late_reports.load(Ordering::Relaxed),
        shared.crashes.load(Ordering::Relaxed),
        elapsed.as_secs_f64()
    );
    println!(
        "latency: lien expiry {} ({} left to the admin's pass), feed {}; {} probes during a slow step, {} while the admin idled, {} across a crash; slow steps {}, admin passes {}",
        shared.expiry.describe(),
        shared.expiry_left_to_admin.load(Ordering::Relaxed),
        shared.feed.describe(),
        shared.probes_during_slow_step.load(Ordering::Relaxed),
        shared.probes_during_admin_idle.load(Ordering::Relaxed),
        shared.probes_crashed.load(Ordering::Relaxed),
        shared.slow_steps.load(Ordering::Relaxed),
        shared.admin_passes.load(Ordering::Relaxed),
    );
    std::process::exit(if violations == 0 { 0 } else { 1 });
}

/// The checks after the run, each printed as "ok - …" or "not ok - …".
fn check(config: &Config, shared: &Shared, bank: thread::JoinHandle<()>) {
    let mut client = connect(config, &config.database);
    let before = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    let passes = shared.passes_verified.load(Ordering::Relaxed);
    if passes == 0 {
        shared.violation("the worker made no pass during the run".into());
    }
    verdict(
        shared,
        before,
        &format!(
            "cte_verify_ledger() stayed clean during the run, checked after {passes} worker passes"
        ),
    );
    check_latency(config, shared);
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    wait_until(
        &mut client,
        "events still unfinished",
        "SELECT NOT EXISTS (SELECT 1 FROM cte_ctel.cte_events
                       WHERE status NOT IN ('completed', 'compensated', 'failed', 'resolved'))",
        shared,
    );
    shared.bank_stop.store(true, Ordering::Relaxed);
    bank.join().expect("the bank ran to its end");
    verdict(
        shared,
        mark,
        "every event finished: completed, compensated, or failed for an operator",
    );
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    wait_until(&mut client, "liens active past their expiry",
        "SELECT NOT EXISTS (SELECT 1 FROM cte_ctel.cte_liens WHERE status = 'active' AND expires_at < now() - interval '1 second')", shared);
    verdict(shared, mark, "no lien is active past its expiry");
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    for row in client
        .query("SELECT check_name || ': ' || detail FROM cte_ctel.cte_verify_ledger()", &[])
        .unwrap_or_default()
    {
        shared.violation(format!("after the run: {}", row.get::<_, String>(0)));
    }
    verdict(shared, mark, "cte_verify_ledger() is clean after the run");
    // Every journal link of the run, page by page: concurrent postings kept each chain a line.
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    let (mut after, mut checked) = (0i64, 0i64);
    loop {
        let page = client.query_one(
            "SELECT entries_checked, last_entry_id, broken_entry_id FROM cte_ctel.cte_verify_chains($1, 50000)",
            &[&after],
        );
        let Ok(page) = page else {
            shared.violation(format!("cte_verify_chains failed: {page:?}"));
            break;
        };
        if let Some(broken) = page.get::<_, Option<i64>>(2) {
            shared.violation(format!("after the run: the chain breaks at entry {broken}"));
        }
        checked += page.get::<_, i64>(0);
        match page.get::<_, Option<i64>>(1) {
            Some(last) => after = last,
            None => break,
        }
    }
    verdict(
        shared,
        mark,
        &format!("every journal link checks after the run ({checked} wallet entries)"),
    );
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    for row in client
        .query(
            "SELECT t.id::text || ' (' || t.type || ') posted ' || count(DISTINCT e.posting_id)
                    || ' times, reversed ' || count(DISTINCT r.posting_id)
               FROM cte_ctel.cte_transactions t
               JOIN cte_ctel.cte_entries e ON e.transaction_id = t.id AND e.kind <> 'reversal'
               LEFT JOIN cte_ctel.cte_entries r ON r.transaction_id = t.id AND r.kind = 'reversal'
              WHERE t.type IN ('wallet.transfer', 'wallet.deposit', 'wallet.withdrawal')
              GROUP BY t.id, t.type
             HAVING count(DISTINCT e.posting_id) > 1 OR count(DISTINCT r.posting_id) > 1",
            &[],
        )
        .unwrap_or_default()
    {
        shared.violation(format!("a step posted twice: {}", row.get::<_, String>(0)));
    }
    verdict(shared, mark, "no step posted (or was reversed) more than once");
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    let model = check_events(&mut client, shared);
    verdict(
        shared,
        mark,
        "each completed event posted exactly what it asked for; each compensated one nothing",
    );
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    check_balances(&mut client, shared, model);
    verdict(
        shared,
        mark,
        "every balance equals the client's model (deposits, events, lien captures)",
    );
}

/// The verdict on the latency probes (SPEC §12).
fn check_latency(config: &Config, shared: &Shared) {
    let mark = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    check_latency_probes(config, shared);
    verdict(
        shared,
        mark,
        &format!(
            "no lien expiry or feed position waited over {LATENCY_MS_MAX} ms for a slow step or an idle admin (expiry {}, feed {})",
            shared.expiry.describe(),
            shared.feed.describe()
        ),
    );
}

/// The probes' late measurements become violations; so does a run without crashes in which the
/// probes counted nothing or never met what they are there to meet (a slow step, an idle
/// admin). With crashes a short run may have too few probes left for that.
fn check_latency_probes(config: &Config, shared: &Shared) {
    let late = shared.probes_late.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for text in late {
        shared.violation(text);
    }
    if config.crashes > 0 {
        return;
    }
    if shared.expiry.probes.load(Ordering::Relaxed) == 0 {
        shared.violation("no lien expiry was measured".into());
    }
    if shared.feed.probes.load(Ordering::Relaxed) == 0 {
        shared.violation("no feed position was measured".into());
    }
    if shared.probes_during_slow_step.load(Ordering::Relaxed) == 0 {
        shared.violation("no probe ran while the events worker sat in a slow step".into());
    }
    if shared.probes_during_admin_idle.load(Ordering::Relaxed) == 0 {
        shared.violation("no probe ran while the admin idled in its transaction".into());
    }
}

fn verdict(shared: &Shared, mark: usize, what: &str) {
    let now = shared.violations.lock().unwrap_or_else(|e| e.into_inner()).len();
    if now == mark {
        println!("ok - {what}");
    } else {
        println!("not ok - {what} ({} violations)", now - mark);
    }
}

type Wallets = BTreeMap<(String, String), Decimal>;

fn add(wallets: &mut Wallets, account: &str, currency: &str, delta: Decimal) {
    let total = wallets.entry((account.to_string(), currency.to_string())).or_default();
    *total += delta;
}

/// Compares each event's postings per wallet with what its operation asked for, and returns
/// the model of every balance.
fn check_events(client: &mut Client, shared: &Shared) -> Wallets {
    let rows = client
        .query(
            "SELECT k.key,
                    CASE WHEN e.status = 'failed' THEN 'failed ' || COALESCE(e.error_sqlstate, '?')
                         ELSE e.status END,
                    w.account_id, w.currency, w.total::text
               FROM cte_ctel.cte_events e
               -- The probe's one-call transfers carry their key as the step's reference.
               CROSS JOIN LATERAL (
                   SELECT COALESCE(e.idempotency_key,
                                   (SELECT t.reference FROM cte_ctel.cte_transactions t
                                     WHERE t.event_id = e.id AND t.reference LIKE 'stress-%'
                                     LIMIT 1)) AS key) k
               LEFT JOIN (SELECT t.event_id, n.account_id, n.currency, sum(n.amount) AS total
                            FROM cte_ctel.cte_entries n
                            JOIN cte_ctel.cte_transactions t ON t.id = n.transaction_id
                           WHERE left(n.account_id, 1) <> '@'
                           GROUP BY t.event_id, n.account_id, n.currency) w ON w.event_id = e.id
              WHERE k.key LIKE 'stress-%'",
            &[],
        )
        .unwrap_or_default();
    let mut posted: BTreeMap<String, (String, Wallets)> = BTreeMap::new();
    for row in rows {
        let key: String = row.get(0);
        let entry = posted.entry(key).or_insert_with(|| (row.get(1), Wallets::new()));
        if let (Some(account), Some(currency), Some(total)) = (
            row.get::<_, Option<String>>(2),
            row.get::<_, Option<String>>(3),
            row.get::<_, Option<String>>(4),
        ) {
            let total = Decimal::from_str_exact(&total).unwrap_or_default();
            if !total.is_zero() {
                add(&mut entry.1, &account, &currency, total);
            }
        }
    }
    let mut model = Wallets::new();
    for index in 0..ACCOUNTS {
        add(&mut model, &format!("s{index:02}"), "USD", Decimal::from(FUNDS_USD));
        add(&mut model, &format!("s{index:02}"), "EUR", Decimal::from(FUNDS_EUR));
    }
    add(&mut model, PROBE_FROM, "USD", Decimal::from(FUNDS_USD));
    let expected = shared.expected.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (key, deltas) in &expected {
        let mut asked = Wallets::new();
        for (account, currency, delta) in deltas {
            add(&mut asked, account, currency, *delta);
        }
        asked.retain(|_, total| !total.is_zero());
        match posted.get(key) {
            None => {} // never committed (refused, or in flight at a crash): nothing to find
            Some((status, totals)) if status == "completed" => {
                if *totals != asked {
                    shared.violation(format!(
                        "{key} completed but posted {totals:?}, asked {asked:?}"
                    ));
                }
                for ((account, currency), delta) in &asked {
                    add(&mut model, account, currency, *delta);
                }
            }
            // A step reversed only after the event waited (a cancel, a timeout) finds its money
            // may have been spent meanwhile: its compensation is refused for insufficient funds
            // and the event ends failed, for an operator. Its forward postings stay, exactly.
            Some((status, totals)) if *status == format!("failed {INSUFFICIENT_FUNDS}") => {
                if *totals != asked {
                    shared
                        .violation(format!("{key} failed but posted {totals:?}, asked {asked:?}"));
                }
                for ((account, currency), delta) in &asked {
                    add(&mut model, account, currency, *delta);
                }
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
            Some((status, totals)) if status == "compensated" && !totals.is_empty() => {
                shared.violation(format!("{key} compensated but left {totals:?}"));
            }
            Some((status, _)) if status == "compensated" => {}
            Some((status, _)) => shared.violation(format!("{key} ended {status}")),
        }
    }
    model
}

/// Adds what captured liens moved to the model, then compares every wallet balance with it.
fn check_balances(client: &mut Client, shared: &Shared, mut model: Wallets) {
    let liens = shared.liens.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let captured = client
        .query(
            "SELECT metadata ->> 'op', captured_amount::text FROM cte_ctel.cte_liens
              WHERE status = 'captured' AND metadata ? 'op'",
            &[],
        )
        .unwrap_or_default();
    for row in captured {
        let key: String = row.get(0);
        let amount = Decimal::from_str_exact(&row.get::<_, String>(1)).unwrap_or_default();
        match liens.iter().find(|(lien_key, _, _)| *lien_key == key) {
            Some((_, account, destination)) => {
                add(&mut model, account, "USD", -amount);
                add(&mut model, destination, "USD", amount);
            }
            None => shared.violation(format!("a captured lien {key} that no session made")),
        }
    }
    let balances = client
        .query(
            "SELECT account_id, currency, balance::text, reserved::text FROM cte_ctel.cte_balances",
            &[],
        )
        .unwrap_or_default();
    for row in balances {
        let (account, currency): (String, String) = (row.get(0), row.get(1));
        let balance = Decimal::from_str_exact(&row.get::<_, String>(2)).unwrap_or_default();
        let reserved = Decimal::from_str_exact(&row.get::<_, String>(3)).unwrap_or_default();
        let expected = model.get(&(account.clone(), currency.clone())).copied().unwrap_or_default();
        if balance != expected {
            shared.violation(format!("{account} {currency}: balance {balance}, model {expected}"));
        }
        if reserved.is_sign_negative() || reserved > balance {
            shared.violation(format!("{account} {currency}: reserved {reserved} of {balance}"));
        }
    }
}
