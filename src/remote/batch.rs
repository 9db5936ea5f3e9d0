//! Statements sent together: one simple-query message holding several statements costs one
//! round trip however many it holds, where each statement sent alone costs one. Used wherever
//! a job needs no answer between its statements.
//!
//! A failure inside a batch does not say which statement failed. So a batch of several steps
//! runs inside a savepoint; when it fails, the savepoint is rolled back and the steps run again
//! one at a time, so the error names the table and the step exactly as a step sent alone
//! would. That costs round trips only on the way to an error.

use postgres::{SimpleQueryMessage, SimpleQueryRow, Transaction};

use super::session::remote_error;
use crate::error::{Error, Result};

/// One statement of a batch: its text, and the table and step an error in it names.
#[derive(Debug, Clone)]
pub struct Step {
    pub table: Option<String>,
    /// What failed, as the error says it: "INSERT failed".
    pub what: String,
    pub sql: String,
}

impl Step {
    /// A step of no table in particular.
    pub fn plain(what: &str, sql: String) -> Step {
        Step {
            table: None,
            what: what.to_string(),
            sql,
        }
    }

    pub fn of_table(table: &str, what: &str, sql: String) -> Step {
        Step {
            table: Some(table.to_string()),
            what: what.to_string(),
            sql,
        }
    }

    fn error(&self, e: &postgres::Error) -> Error {
        match &self.table {
            Some(table) => remote_error(&format!("table {table}: {}", self.what), e),
            None => remote_error(&self.what, e),
        }
    }
}

/// What one statement answered: the rows it changed or returned, and the rows it returned.
pub struct Answer {
    pub affected: u64,
    pub rows: Vec<SimpleQueryRow>,
}

impl Answer {
    /// The text in column `i` of the first row.
    pub fn text(&self, i: usize) -> Option<&str> {
        self.rows.first().and_then(|r| r.get(i))
    }

    /// Whether column `i` of the first row is true.
    pub fn flag(&self, i: usize) -> bool {
        self.text(i) == Some("t")
    }

    /// The integer in column `i` of the first row (a count), 0 when there is none.
    pub fn count(&self, i: usize) -> u64 {
        self.text(i).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// The savepoint a batch of several steps runs in.
const SAVEPOINT: &str = "cloud_sync_batch";

/// Runs `steps` in one round trip; returns one answer per step, in order.
pub fn run(tx: &mut Transaction, steps: &[Step]) -> Result<Vec<Answer>> {
    match steps {
        [] => Ok(Vec::new()),
        [step] => answers(tx.simple_query(&step.sql).map_err(|e| step.error(&e))?),
        _ => {
            let text = format!(
                "SAVEPOINT {SAVEPOINT};\n{};\nRELEASE SAVEPOINT {SAVEPOINT}",
                steps
                    .iter()
                    .map(|s| s.sql.as_str())
                    .collect::<Vec<_>>()
                    .join(";\n")
            );
            match tx.simple_query(&text) {
                Ok(messages) => {
                    let mut all = answers(messages)?;
                    // The savepoint's two statements.
                    if all.len() != steps.len() + 2 {
                        return Err(Error::remote(format!(
                            "a batch of {} statements gave {} answers",
                            steps.len() + 2,
                            all.len()
                        )));
                    }
                    all.pop();
                    all.remove(0);
                    Ok(all)
                }
                Err(e) => Err(diagnose(tx, steps, &e)),
            }
        }
    }
}

/// After a failed batch: the error of the first step that fails alone, or the batch's own.
fn diagnose(tx: &mut Transaction, steps: &[Step], batch_error: &postgres::Error) -> Error {
    if tx
        .batch_execute(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"))
        .is_err()
    {
        return steps[0].error(batch_error);
    }
    for step in steps {
        if let Err(e) = tx.batch_execute(&step.sql) {
            return step.error(&e);
        }
    }
    // Nothing fails alone (a concurrent writer changed what failed): the batch's error.
    let tables: Vec<&str> = steps.iter().filter_map(|s| s.table.as_deref()).collect();
    match tables.first() {
        Some(first) => remote_error(&format!("table {first}: writing failed"), batch_error),
        None => remote_error(&steps[0].what, batch_error),
    }
}

/// The messages of a simple query, one `Answer` per statement.
pub fn answers(messages: Vec<SimpleQueryMessage>) -> Result<Vec<Answer>> {
    let mut all = Vec::new();
    let mut rows = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => rows.push(row),
            SimpleQueryMessage::CommandComplete(affected) => all.push(Answer {
                affected,
                rows: std::mem::take(&mut rows),
            }),
            _ => {}
        }
    }
    Ok(all)
}
