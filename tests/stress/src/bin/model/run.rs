//! One run: the calls one at a time, races, crashes, each answer checked against the model as
//! it comes, and the whole ledger compared at the end. The first disagreement stops the run
//! with the seed, the call's number and every call so far.

use postgres::Client;

use super::calls::{send, Answer, Call};
use super::check;
use super::generate::Generator;
use super::ledger::{Model, Outcome, WALLETS};
use super::race;
use super::server::Server;

/// What the command line asked for.
pub struct Config {
    pub server: Server,
    pub seed: u64,
    pub calls: usize,
    /// Sessions in a race (1: no races).
    pub threads: usize,
    pub crashes: usize,
    /// Print every call and its answer at the end, also when all agreed.
    pub verbose: bool,
}

#[derive(Default)]
struct Counts {
    calls: usize,
    replays: usize,
    conflicts: usize,
    refusals: usize,
    races: usize,
    crashes: usize,
    /// Calls sent again after a "try again" answer (40001, 40P01, 55P03).
    again: usize,
}

pub struct Run {
    config: Config,
    model: Model,
    generator: Generator,
    client: Client,
    /// One session per racing thread; opened again after a crash.
    racers: Vec<Client>,
    /// Every call so far with its answer, printed when the model disagrees.
    log: Vec<String>,
    counts: Counts,
}

/// Percent of the steps that are races, when races are asked for.
const RACE_PERCENT: u64 = 8;
/// How many times a call whose connection broke is sent again on a new one.
const RESEND_MAX: usize = 5;

impl Run {
    /// Harness: a fresh database and the sessions of the run.
    pub fn new(config: Config) -> Run {
        config.server.setup();
        let client = config.server.connect();
        let racers = (0..config.threads).map(|_| config.server.connect()).collect();
        let generator = Generator::new(config.seed);
        Run {
            config,
            model: Model::new(),
            generator,
            client,
            racers,
            log: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Funds the wallets, makes the calls, then compares everything.
    pub fn run(&mut self) {
        for wallet in WALLETS {
            let call = self.generator.funding(wallet);
            self.one(call);
        }
        let crash_at: Vec<usize> = (1..=self.config.crashes)
            .map(|crash| self.config.calls * crash / (self.config.crashes + 1))
            .collect();
        for step in 0..self.config.calls {
            if crash_at.contains(&step) {
                self.crash();
            } else if self.config.threads > 1 && self.generator.random().chance(RACE_PERCENT) {
                self.race();
            } else {
                let call = self.generator.next(&self.model);
                self.one(call);
            }
        }
        self.finish();
    }

    fn one(&mut self, call: Call) {
        let (answer, again) = send(&mut self.client, &call);
        self.counts.again += again;
        if let Answer::Lost(_) = answer {
            self.log.push(format!("#{} {call} -> {answer}", self.counts.calls + 1));
            self.stop(
                "the connection broke although the run crashed nothing (did the server die?)",
            );
        }
        self.check(&call, &answer, "");
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::First => {}
            Outcome::Replay => self.counts.replays += 1,
            Outcome::Conflict => self.counts.conflicts += 1,
            Outcome::Refused => self.counts.refusals += 1,
        }
    }

    /// The model's verdict on one answer, then the balances.
    fn check(&mut self, call: &Call, answer: &Answer, note: &str) -> Outcome {
        self.counts.calls += 1;
        let number = self.counts.calls;
        match self.model.apply(call, answer) {
            Ok(outcome) => {
                self.count(outcome);
                self.log.push(format!("#{number} {call} -> {answer} [{outcome:?}]{note}"));
                self.check_balances();
                outcome
            }
            Err(why) => {
                self.log.push(format!("#{number} {call} -> {answer}{note}"));
                self.stop(&why);
            }
        }
    }

    fn check_balances(&mut self) {
        let found = check::balances(&mut self.client, &self.model);
        if !found.is_empty() {
            self.stop(&found.join("; "));
        }
    }

    /// Several sessions send one key at the same moment.
    fn race(&mut self) {
        let calls = self.generator.race(&self.model, self.config.threads);
        let (answers, again) = race::run(&mut self.racers, &calls);
        self.counts.again += again;
        self.counts.races += 1;
        let first = self.counts.calls + 1;
        self.counts.calls += calls.len();
        for (session, (call, answer)) in calls.iter().zip(&answers).enumerate() {
            self.log.push(format!("#{first} race, session {session}: {call} -> {answer}"));
        }
        match race::settle(&mut self.model, &calls, &answers) {
            Ok(outcomes) => outcomes.into_iter().for_each(|outcome| self.count(outcome)),
            Err(why) => self.stop(&why),
        }
        self.check_balances();
    }

    /// A crash of the server around a call, then the call sent again with the same key (a
    /// client retrying): either its reply was lost after it committed (the call is answered,
    /// the answer dropped, the server killed; sent again it must give the very same answer,
    /// as a replay), or the server was killed before it (sent into a dead connection, it must
    /// then run as a first call). The model expects the same either way.
    fn crash(&mut self) {
        let call = self.generator.next(&self.model);
        let reply_lost = self.generator.random().chance(60);
        let server = self.config.server.clone();
        let first = if reply_lost {
            let (answer, again) = send(&mut self.client, &call);
            self.counts.again += again;
            server.kill();
            answer
        } else {
            server.kill();
            send(&mut self.client, &call).0
        };
        server.restart();
        self.counts.crashes += 1;
        self.racers = (0..self.config.threads).map(|_| server.connect()).collect();
        let answer = self.resend(&call);
        let note =
            format!(" (sent again after crash {}; first reply: {first})", self.counts.crashes);
        if reply_lost && !matches!(first, Answer::Lost(_)) && !first.same_ids(&answer) {
            self.log.push(format!("#{} {call} -> {answer}{note}", self.counts.calls + 1));
            self.stop("the call sent again after the crash did not answer what it first answered");
        }
        // Its first reply was an answer: the call ran before the crash, so the model (which
        // never saw that reply) takes this one for the first, though it was a replay.
        let ran_before = reply_lost && !matches!(first, Answer::Lost(_));
        self.model.after_crash = true;
        let outcome = self.check(&call, &answer, &note);
        self.model.after_crash = false;
        if outcome == Outcome::First && ran_before {
            self.counts.replays += 1;
        }
    }

    /// The call sent again on a new connection until one answers.
    fn resend(&mut self, call: &Call) -> Answer {
        let mut answer = Answer::Lost("not sent again yet".into());
        for _ in 0..RESEND_MAX {
            self.client = self.config.server.connect();
            let (again_answer, again) = send(&mut self.client, call);
            self.counts.again += again;
            answer = again_answer;
            if !matches!(answer, Answer::Lost(_)) {
                break;
            }
        }
        answer
    }

    /// Everything compared at the end: balances, liens, events, the verifiers.
    fn finish(&mut self) {
        let mut found = check::balances(&mut self.client, &self.model);
        found.extend(check::liens(&mut self.client, &self.model));
        found.extend(check::events(&mut self.client, &self.model));
        found.extend(check::verifiers(&mut self.client));
        if !found.is_empty() {
            self.stop(&found.join("\n  "));
        }
        if self.config.verbose {
            self.log.iter().for_each(|line| println!("  {line}"));
        }
        let counts = &self.counts;
        println!(
            "model: seed {}: {} refusals, {} races of {} sessions, {} calls sent again after a \
             try-again; {} liens, {} events compared; verifiers clean",
            self.config.seed,
            counts.refusals,
            counts.races,
            self.config.threads,
            counts.again,
            self.model.liens.len(),
            self.model.events.len()
        );
        println!(
            "model: {} calls, {} replays, {} conflicts, {} crashes, 0 disagreements",
            counts.calls, counts.replays, counts.conflicts, counts.crashes
        );
    }

    /// The first disagreement: every call so far, then the seed, the call's number and what
    /// disagreed (last, where a tail of the output shows it); exit 1.
    fn stop(&self, why: &str) -> ! {
        let counts = &self.counts;
        println!("model: the calls so far (seed {}):", self.config.seed);
        for line in &self.log {
            println!("  {line}");
        }
        println!(
            "model: DISAGREEMENT at call #{} (seed {}):\n  {why}",
            counts.calls, self.config.seed
        );
        println!(
            "model: {} calls, {} replays, {} conflicts, {} crashes, 1 disagreements (seed {})",
            counts.calls, counts.replays, counts.conflicts, counts.crashes, self.config.seed
        );
        std::process::exit(1);
    }
}
