//! What an export reports: the job's `Summary` (src/sync/summary.rs), built from the plans, the
//! counts of each table and the problems found.

use std::time::Instant;

use super::plan::TablePlan;
use super::ExportRequest;
use crate::local::tables::LocalTable;
use crate::sync::options::{ExportOptions, Mode};
use crate::sync::summary::{ColumnSummary, Kind, Summary, TableCounts, TableSummary, Timings};
use crate::sync::{elapsed_ms, Problems};

/// The counts of a table not exported because its plan has problems: every row skipped.
/// `value_problems`: the problems a dry run found in its values besides.
pub fn skipped(plan: &TablePlan, value_problems: u64) -> TableCounts {
    TableCounts {
        source_rows: plan.source_rows,
        skipped: plan.source_rows,
        problems: plan.problems.len() as u64 + value_problems,
        ..plan.zero_counts()
    }
}

/// One table's summary; `started` is when its export began.
pub fn table(
    plan: &TablePlan,
    counts: TableCounts,
    schema: &str,
    started: Instant,
) -> TableSummary {
    TableSummary {
        mode: Some(plan.mode()),
        changes: Some(plan.changes),
        propagate_deletes: Some(plan.propagate_deletes),
        columns: Some(
            plan.columns
                .iter()
                .map(|c| ColumnSummary {
                    name: c.name.clone(),
                    sqlite_type: c.sqlite_type.clone(),
                    postgres_type: c.ty.sql(),
                })
                .collect(),
        ),
        not_created: plan.rules.not_created.clone(),
        ..TableSummary::new(
            &plan.name,
            schema,
            plan.key().map(|c| c.name.clone()).collect(),
            plan.create && plan.problems.is_empty(),
            counts,
            elapsed_ms(started),
        )
    }
}

/// The summary of an idle table (`incremental`): incremental, nothing read or written; its
/// remote columns were not looked at, so none are listed.
pub fn idle(local: &LocalTable, options: &ExportOptions) -> TableSummary {
    TableSummary {
        mode: Some(Mode::Incremental),
        changes: Some(0),
        propagate_deletes: Some(options.propagate_deletes.unwrap_or(true)),
        ..TableSummary::new(
            &local.name,
            &options.schema,
            local.key().iter().map(|c| c.name.clone()).collect(),
            false,
            TableCounts::default(),
            0.0,
        )
    }
}

/// The job's summary. `schema_created`: whether the export created (a dry run: would create)
/// the remote schema; `through` is the high water of the snapshot the export read; `started` is
/// when the job began.
pub fn summary(
    request: &ExportRequest,
    tables: Vec<TableSummary>,
    problems: Problems,
    schema_created: bool,
    through: i64,
    connect_ms: f64,
    started: Instant,
) -> Summary {
    let options = request.options;
    let timings = Timings {
        connect_ms,
        total_ms: elapsed_ms(started),
    };
    Summary {
        mode: options.mode,
        propagate_deletes: options.propagate_deletes,
        watermark: Some(through),
        schema_created: Some(schema_created),
        ..Summary::new(
            Kind::Export,
            request.dry_run,
            request.info.display(),
            options.schema.clone(),
            tables,
            problems,
            timings,
        )
    }
}
