//! Pictures of a saga (`cte_event_graph`): an event, its steps in order coloured by status,
//! compensations as dashed back edges, retries as loops, waits, and liens with their fate, as a
//! Mermaid flowchart or a Graphviz DOT graph. Pure text from what the shell read.

use crate::error::CteError;

/// A step as the picture shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPicture {
    pub order: i64,
    pub name: String,
    pub step_type: String,
    pub status: String,
    pub attempts: i64,
    /// When it is due to run again (a scheduled retry), as text.
    pub next_attempt_at: Option<String>,
}

/// A lien as the picture shows it: its amount, status, and the step holding it (by order), if
/// any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LienPicture {
    pub amount: String,
    pub currency: String,
    pub account_id: String,
    pub status: String,
    pub step_order: Option<i64>,
}

/// What the picture is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPicture {
    pub name: String,
    pub status: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub steps: Vec<StepPicture>,
    pub liens: Vec<LienPicture>,
}

/// The picture's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

impl GraphFormat {
    pub fn parse(text: &str) -> Result<GraphFormat, CteError> {
        match text {
            "mermaid" => Ok(GraphFormat::Mermaid),
            "dot" => Ok(GraphFormat::Dot),
            _ => Err(CteError::IdentifierInvalid {
                what: "graph format",
                value: text.to_string(),
                why: "it is 'mermaid' or 'dot'",
            }),
        }
    }
}

/// The fill colour of a status: green done, amber waiting or in flight, grey undone, red failed.
fn colour(status: &str) -> &'static str {
    match status {
        "completed" | "captured" => "#c8e6c9",
        "waiting" | "running" | "compensating" | "active" | "pending" | "created" => "#ffe0b2",
        "compensated" | "released" | "expired" | "resolved" => "#e0e0e0",
        "failed" => "#ffcdd2",
        _ => "#ffffff",
    }
}

/// Text safe inside a quoted label of either language.
fn label(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '<' | '>' | '{' | '}' | '|' | '[' | ']' => ' ',
            // DOT escapes with a backslash (a trailing one would swallow the closing quote);
            // Mermaid reads `#60;` as an entity code.
            '\\' => '/',
            '#' => '＃',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    // Neither language can be broken out of a quoted label without one of these, nor a node
    // split over two lines (`mermaid` and `dot` write one per line).
    assert!(!safe.contains(['"', '\\']), "a label holds no quote or backslash");
    assert!(!safe.contains(char::is_control), "a label holds no line break");
    safe
}

/// The lines of each node, joined by the language's line break.
fn event_lines(event: &EventPicture) -> Vec<String> {
    let mut lines = vec![format!("event {}", label(&event.name)), event.status.clone()];
    lines.push(format!("created {}", label(&event.created_at)));
    if let Some(at) = &event.started_at {
        lines.push(format!("started {}", label(at)));
    }
    if let Some(at) = &event.finished_at {
        lines.push(format!("finished {}", label(at)));
    }
    if let Some(error) = &event.error {
        lines.push(label(&shortened(error, ERROR_CHARS_SHOWN)));
    }
    // Texts are labelled; the status is a `cte_event_status`, whose domain names safe words.
    assert!(lines.iter().all(|line| !line.contains(['"', '\\'])), "{lines:?}");
    lines
}

/// How much of an event's error its picture shows.
const ERROR_CHARS_SHOWN: usize = 80;

/// `text` cut to `most` characters, the cut marked with an ellipsis.
fn shortened(text: &str, most: usize) -> String {
    assert!(most >= 1, "room for the ellipsis at least");
    if text.chars().count() <= most {
        return text.to_string();
    }
    let mut short: String = text.chars().take(most - 1).collect();
    short.push('…');
    assert_eq!(short.chars().count(), most, "cut to exactly the characters shown");
    short
}

fn step_lines(step: &StepPicture) -> Vec<String> {
    let mut lines = vec![
        format!("{}. {}", step.order, label(&step.name)),
        label(&step.step_type),
        step.status.clone(),
    ];
    if step.status == "waiting" && step.step_type == "external" && step.next_attempt_at.is_none() {
        lines.push("waits for the application's report".into());
    }
    if let Some(at) = &step.next_attempt_at {
        lines.push(format!("retry at {}", label(at)));
    }
    // Texts are labelled; the status is a `cte_step_status`, whose domain names safe words.
    assert!(lines.iter().all(|line| !line.contains(['"', '\\'])), "{lines:?}");
    lines
}

fn lien_lines(lien: &LienPicture) -> Vec<String> {
    let lines = vec![
        format!("lien {} {}", label(&lien.amount), label(&lien.currency)),
        format!("on {}", label(&lien.account_id)),
        lien.status.clone(),
    ];
    // Texts are labelled; the status is a `cte_lien_status`, whose domain names safe words.
    assert!(lines.iter().all(|line| !line.contains(['"', '\\'])), "{lines:?}");
    lines
}

/// The edges between nodes: (from, to, label, dashed). Steps run in order; a compensated step
/// is undone from the step after it (the compensation runs newest first); a step tried more than
/// once loops on itself; a lien hangs off the step that holds it, or the event.
fn edges(event: &EventPicture) -> Vec<(String, String, String, bool)> {
    let mut all = Vec::new();
    let mut previous = "E".to_string();
    for step in &event.steps {
        let node = format!("S{}", step.order);
        all.push((previous.clone(), node.clone(), String::new(), false));
        if step.attempts > 1 {
            all.push((node.clone(), node.clone(), format!("{} attempts", step.attempts), false));
        }
        previous = node;
    }
    for pair in event.steps.windows(2) {
        if pair[0].status == "compensated" {
            let (from, to) = (format!("S{}", pair[1].order), format!("S{}", pair[0].order));
            all.push((from, to, "compensate".into(), true));
        }
    }
    for (index, lien) in event.liens.iter().enumerate() {
        let holder = lien.step_order.map_or("E".to_string(), |order| format!("S{order}"));
        all.push((holder, format!("L{index}"), "holds".into(), true));
    }
    // Every step and every lien hangs in the picture: none is drawn without an edge to it.
    assert!(all.len() >= event.steps.len() + event.liens.len());
    all
}

/// The picture of an event in `format`.
pub fn render(event: &EventPicture, format: GraphFormat) -> String {
    // Read in step order, which is unique per event (`UNIQUE (event_id, "order")`): node ids
    // are distinct and `edges` links each step to the next.
    assert!(event.steps.windows(2).all(|pair| pair[0].order < pair[1].order));
    let mut nodes: Vec<(String, Vec<String>, &str, bool)> =
        vec![("E".into(), event_lines(event), colour(&event.status), false)];
    for step in &event.steps {
        nodes.push((format!("S{}", step.order), step_lines(step), colour(&step.status), false));
    }
    for (index, lien) in event.liens.iter().enumerate() {
        nodes.push((format!("L{index}"), lien_lines(lien), colour(&lien.status), true));
    }
    match format {
        GraphFormat::Mermaid => mermaid(&nodes, &edges(event)),
        GraphFormat::Dot => dot(&nodes, &edges(event)),
    }
}

type Node<'a> = (String, Vec<String>, &'a str, bool);

fn mermaid(nodes: &[Node], edges: &[(String, String, String, bool)]) -> String {
    let mut out = String::from("flowchart LR\n");
    for (id, lines, fill, is_lien) in nodes {
        let text = lines.join("<br/>");
        let shape =
            if *is_lien { format!("{id}[(\"{text}\")]") } else { format!("{id}[\"{text}\"]") };
        out.push_str(&format!("    {shape}\n    style {id} fill:{fill}\n"));
    }
    for (from, to, text, dashed) in edges {
        let arrow = match (dashed, text.is_empty()) {
            (false, true) => "-->".to_string(),
            (false, false) => format!("-->|{text}|"),
            (true, true) => "-.->".to_string(),
            (true, false) => format!("-.->|{text}|"),
        };
        out.push_str(&format!("    {from} {arrow} {to}\n"));
    }
    // A line per node, its style and each edge: no label broke a line (`label` removes breaks).
    assert_eq!(out.lines().count(), 1 + 2 * nodes.len() + edges.len());
    out
}

fn dot(nodes: &[Node], edges: &[(String, String, String, bool)]) -> String {
    let mut out = String::from(
        "digraph event {\n    rankdir=LR;\n    node [style=filled, fontname=\"Helvetica\"];\n",
    );
    for (id, lines, fill, is_lien) in nodes {
        let shape = if *is_lien { "cylinder" } else { "box" };
        out.push_str(&format!(
            "    {id} [shape={shape}, fillcolor=\"{fill}\", label=\"{}\"];\n",
            lines.join("\\n")
        ));
    }
    for (from, to, text, dashed) in edges {
        let style = if *dashed { ", style=dashed" } else { "" };
        out.push_str(&format!("    {from} -> {to} [label=\"{text}\"{style}];\n"));
    }
    out.push_str("}\n");
    // Three lines of header, one per node and edge, and the closing brace: no label broke one.
    assert_eq!(out.lines().count(), 3 + nodes.len() + edges.len() + 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture() -> EventPicture {
        let step =
            |order: i64, name: &str, step_type: &str, status: &str, attempts: i64| StepPicture {
                order,
                name: name.into(),
                step_type: step_type.into(),
                status: status.into(),
                attempts,
                next_attempt_at: None,
            };
        EventPicture {
            name: "checkout \"x\"".into(),
            status: "compensated".into(),
            created_at: "2026-12-01 10:00:00+00".into(),
            started_at: Some("2026-12-01 10:00:01+00".into()),
            finished_at: Some("2026-12-01 10:00:02+00".into()),
            error: Some("transaction ship failed: no stock".into()),
            steps: vec![
                step(1, "pay", "wallet.transfer", "compensated", 1),
                step(2, "fee", "fee.collection", "compensated", 2),
                step(3, "ship", "external", "failed", 1),
            ],
            liens: vec![LienPicture {
                amount: "5.00".into(),
                currency: "USD".into(),
                account_id: "alice".into(),
                status: "released".into(),
                step_order: None,
            }],
        }
    }

    #[test]
    fn mermaid_shows_order_compensation_retries_and_liens() {
        let text = render(&picture(), GraphFormat::Mermaid);
        assert!(text.starts_with("flowchart LR\n"));
        assert!(
            text.contains("E --> S1\n")
                && text.contains("S1 --> S2\n")
                && text.contains("S2 --> S3\n")
        );
        assert!(text.contains("S2 -.->|compensate| S1\n"), "{text}");
        assert!(text.contains("S3 -.->|compensate| S2\n"), "{text}");
        assert!(text.contains("S2 -->|2 attempts| S2\n"), "{text}");
        assert!(text.contains("E -.->|holds| L0\n"), "{text}");
        assert!(text.contains("style S3 fill:#ffcdd2"), "a failed step is red");
        assert!(!text.contains("\"x\""), "quotes in names cannot break the label");
    }

    #[test]
    fn dot_is_the_same_graph() {
        let text = render(&picture(), GraphFormat::Dot);
        assert!(text.starts_with("digraph event {"));
        assert!(text.contains("S2 -> S1 [label=\"compensate\", style=dashed];"), "{text}");
        assert!(text.contains("L0 [shape=cylinder"), "{text}");
        assert!(text.trim_end().ends_with('}'));
        assert_eq!(GraphFormat::parse("svg").unwrap_err().reason(), "identifier_invalid");
    }

    #[test]
    fn a_long_error_is_cut_and_the_cut_shown() {
        let mut event = picture();
        event.error = Some("é".repeat(200));
        let text = render(&event, GraphFormat::Mermaid);
        assert!(text.contains(&format!("{}…", "é".repeat(ERROR_CHARS_SHOWN - 1))), "{text}");
        assert!(!text.contains(&"é".repeat(ERROR_CHARS_SHOWN)), "{text}");
        assert_eq!(shortened("short", 80), "short");
    }

    #[test]
    fn labels_cannot_escape_their_quotes_or_carry_entity_codes() {
        let mut event = picture();
        event.error = Some("customer asked\\".into());
        event.name = "order #60; <b>".into();
        let dot = render(&event, GraphFormat::Dot);
        assert!(!dot.contains("\\\""), "no backslash escapes a closing quote: {dot}");
        assert!(dot.contains("customer asked/"), "{dot}");
        let mermaid = render(&event, GraphFormat::Mermaid);
        assert!(!mermaid.contains("#60;"), "{mermaid}");
    }
}
