//! Citus: the tables an export creates, made distributed or reference tables as the
//! `distribute`, `reference` and `colocate_with` options ask, in the job's transaction, right
//! after their CREATE TABLE and before their rows go in. Planned before anything is written: the
//! options need the citus extension on the remote, and a distribution column must be part of
//! the table's key, since Citus requires it in every unique constraint (a unique index without
//! it is a "not created" note, `constraints`). Tables that exist already are left as they are.

use postgres::Transaction;

use super::plan::TablePlan;
use super::sql;
use crate::error::{Error, Result};
use crate::remote::batch::Step;
use crate::remote::session::remote_error;
use crate::shown;
use crate::sql_text::quote;
use crate::sync::options::ExportOptions;
use crate::sync::PlanProblem;

/// What Citus makes of a table the export creates.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Hash-distributed by `column`, colocated with the quoted table `colocate_with` (or as the
    /// `none` / `default` Citus takes).
    Hash {
        column: String,
        colocate_with: Option<String>,
    },
    /// Copied whole to every node.
    Reference,
}

impl Distribution {
    /// The distribution column, which every unique constraint must include.
    pub fn column(&self) -> Option<&str> {
        match self {
            Distribution::Hash { column, .. } => Some(column),
            Distribution::Reference => None,
        }
    }
}

/// Sets the distribution of every table the export creates that the options name, and the
/// problems that keep one from being created so. Refuses the options on a remote without Citus,
/// and names that are not tables of the export.
pub fn plan(tx: &mut Transaction, plans: &mut [TablePlan], options: &ExportOptions) -> Result<()> {
    if !options.uses_citus() {
        return Ok(());
    }
    if !has_citus(tx)? {
        return Err(Error::invalid(
            "options distribute, reference and colocate_with make Citus tables, and the remote \
             database has no citus extension: leave them out for a plain PostgreSQL, or \
             CREATE EXTENSION citus there",
        ));
    }
    let named = options.distribute.keys().map(|t| ("distribute", t));
    let named = named.chain(options.reference.iter().map(|t| ("reference", t)));
    for (option, table) in named {
        if !plans.iter().any(|p| &p.name == table) {
            return Err(Error::invalid(format!(
                "option {option} names {}, which is not a table this export selects",
                shown::quoted(table, '"')
            )));
        }
    }
    for plan in plans.iter_mut().filter(|p| p.create) {
        if let Some(column) = options.distribute.get(&plan.name) {
            if let Some(problem) = why_not_distributed_by(plan, column) {
                plan.problems.push(PlanProblem::column(column, problem));
            }
            let colocate_with = options
                .colocate_with
                .get(&plan.name)
                .map(|t| match t.as_str() {
                    "none" | "default" => t.clone(),
                    table => format!("{}.{}", quote(&options.schema), quote(table)),
                });
            plan.distribution = Some(Distribution::Hash {
                column: column.clone(),
                colocate_with,
            });
        } else if options.reference.contains(&plan.name) {
            plan.distribution = Some(Distribution::Reference);
        }
    }
    Ok(())
}

/// Why the table of `plan` cannot be distributed by `column`, `None` when it can.
fn why_not_distributed_by(plan: &TablePlan, column: &str) -> Option<String> {
    let key = || {
        plan.key()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match plan.columns.iter().find(|c| c.name == column) {
        None => Some(format!(
            "option distribute names column {column}, which table {} does not have",
            plan.name
        )),
        Some(c) if !c.is_key => Some(format!(
            "the distribution column {column} is not part of the key ({}): Citus requires it in \
             every unique constraint, the primary key included; distribute by a key column",
            key()
        )),
        Some(_) => None,
    }
}

/// The step that makes the table of `plan`, just created and still empty, a Citus table, if it
/// is planned so.
pub fn step(plan: &TablePlan) -> Option<Step> {
    let statement = match plan.distribution.as_ref()? {
        Distribution::Reference => sql::create_reference_table(&plan.remote),
        Distribution::Hash {
            column,
            colocate_with,
        } => sql::create_distributed_table(&plan.remote, column, colocate_with.as_deref()),
    };
    Some(Step::of_table(
        &plan.name,
        "making it a Citus table failed",
        statement,
    ))
}

fn has_citus(tx: &mut Transaction) -> Result<bool> {
    tx.query_typed_one(sql::HAS_CITUS, &[])
        .map(|row| row.get(0))
        .map_err(|e| remote_error("cannot look for the citus extension", &e))
}
