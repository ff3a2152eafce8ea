//! Races: several sessions send a call under one key at the same moment (released together by
//! a barrier). The answers are right when some one-at-a-time order of the calls gives exactly
//! them in the model: for the same request, one effect and the same id for all; for a
//! conflict race, one result and `idempotency_conflict` for the others; never a raw 23505 or
//! an XX000 (no model answer is an error outside class L0). With at most four threads there
//! are at most 24 orders, so all are tried.

use std::sync::Barrier;
use std::thread;

use postgres::Client;

use super::calls::{send, Answer, Call};
use super::ledger::{Model, Outcome};

/// Sends `calls[i]` on `clients[i]`, all at once; returns each answer and how many times the
/// calls were sent again after a "try again".
pub fn run(clients: &mut [Client], calls: &[Call]) -> (Vec<Answer>, usize) {
    assert!(clients.len() >= calls.len(), "one session per racing call");
    let barrier = Barrier::new(calls.len());
    let results: Vec<(Answer, usize)> = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .zip(calls)
            .map(|(client, call)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    send(client, call)
                })
            })
            .collect();
        let joined = handles.into_iter().map(|handle| handle.join());
        joined
            .map(|result| result.unwrap_or((Answer::Lost("its thread panicked".into()), 0)))
            .collect()
    });
    let again = results.iter().map(|(_, again)| again).sum();
    (results.into_iter().map(|(answer, _)| answer).collect(), again)
}

/// Finds an order of the calls in which the model agrees with every answer and applies it;
/// otherwise changes nothing and says what the first order tried found.
pub fn settle(
    model: &mut Model,
    calls: &[Call],
    answers: &[Answer],
) -> Result<Vec<Outcome>, String> {
    assert_eq!(calls.len(), answers.len(), "an answer per racing call");
    let mut order: Vec<usize> = (0..calls.len()).collect();
    let mut first_disagreement = None;
    loop {
        let mut trial = model.clone();
        let mut outcomes = Vec::new();
        let mut disagreement = None;
        for &index in &order {
            match trial.apply(&calls[index], &answers[index]) {
                Ok(outcome) => outcomes.push(outcome),
                Err(why) => {
                    disagreement = Some(format!("session {index}: {why}"));
                    break;
                }
            }
        }
        match disagreement {
            None => {
                *model = trial;
                return Ok(outcomes);
            }
            Some(why) => {
                first_disagreement.get_or_insert(why);
            }
        }
        if !next_order(&mut order) {
            let why = first_disagreement.unwrap_or_default();
            return Err(format!("no order of the racing calls agrees with the model ({why})"));
        }
    }
}

/// The next order of `order` in lexicographic order; false after the last.
fn next_order(order: &mut [usize]) -> bool {
    let Some(pivot) = (1..order.len()).rev().find(|&i| order[i - 1] < order[i]) else {
        return false;
    };
    let pivot = pivot - 1;
    let successor = (pivot + 1..order.len()).rev().find(|&i| order[i] > order[pivot]);
    assert!(successor.is_some(), "a pivot has a larger element after it");
    if let Some(successor) = successor {
        order.swap(pivot, successor);
    }
    order[pivot + 1..].reverse();
    true
}

#[cfg(test)]
mod tests {
    use super::next_order;

    #[test]
    fn every_order_of_three_once() {
        let mut order = vec![0, 1, 2];
        let mut seen = vec![order.clone()];
        while next_order(&mut order) {
            seen.push(order.clone());
        }
        assert_eq!(seen.len(), 6);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6);
    }
}
