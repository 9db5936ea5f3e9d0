//! What an import reports: the job's `Summary` (src/sync/summary.rs), built from the plans, the
//! counts of each table, the tables only one side has, and the problems found.

use std::time::Instant;

use super::plan::{Scope, TablePlan};
use super::ImportRequest;
use crate::sync::summary::{Kind, Summary, TableCounts, TableSummary, Timings};
use crate::sync::{elapsed_ms, Problems};

/// The counts of a table not imported because its plan has problems: every row skipped.
pub fn skipped(plan: &TablePlan) -> TableCounts {
    TableCounts {
        source_rows: plan.remote_rows,
        skipped: plan.remote_rows,
        problems: plan.problems.len() as u64,
        ..TableCounts::zero()
    }
}

/// One table's summary; `started` is when its import began.
pub fn table(
    plan: &TablePlan,
    counts: TableCounts,
    schema: &str,
    started: Instant,
) -> TableSummary {
    TableSummary {
        not_created: plan.not_created.clone(),
        ..TableSummary::new(
            &plan.name,
            schema,
            plan.key().map(|c| c.name.clone()).collect(),
            plan.create.is_some() && plan.problems.is_empty(),
            counts,
            elapsed_ms(started),
        )
    }
}

/// The job's summary; `started` is when the job began.
pub fn summary(
    request: &ImportRequest,
    tables: Vec<TableSummary>,
    problems: Problems,
    scope: Scope,
    connect_ms: f64,
    started: Instant,
) -> Summary {
    let options = request.options;
    let timings = Timings {
        connect_ms,
        total_ms: elapsed_ms(started),
    };
    Summary {
        strategy: Some(options.strategy.as_str().to_string()),
        local_only_tables: Some(scope.local_only),
        // With create_tables, the remote-only tables are among the tables imported.
        remote_only_tables: Some(if options.create_tables {
            Vec::new()
        } else {
            scope.remote_only
        }),
        ..Summary::new(
            Kind::Import,
            request.dry_run,
            request.info.display(),
            options.schema.clone(),
            tables,
            problems,
            timings,
        )
    }
}
