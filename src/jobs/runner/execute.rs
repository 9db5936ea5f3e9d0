//! Executing a claimed job: its export or import, read from the options stored when it was
//! queued, over the saved connection. A full export that confirms a dry run also records how
//! its counts differ from the dry run's.

use super::watch::Watch;
use super::Claim;
use crate::connections;
use crate::error::{Error, Result};
use crate::remote::ConnInfo;
use crate::secret::Keyring;
use crate::sqlite::{Db, Param};
use crate::sync::export::{self, ExportRequest};
use crate::sync::import::{self, ImportRequest};
use crate::sync::options::{ExportOptions, ImportOptions};
use crate::sync::summary::{Difference, Summary, TableSummary};
use crate::sync::{JobLog, Level, Progress};

pub(super) fn execute(
    db: &Db,
    claim: &Claim,
    progress: &Progress,
    watch: &Watch,
    log: &mut JobLog,
) -> Result<Summary> {
    match claim.kind.as_str() {
        "export" => execute_export(db, claim, progress, watch, log),
        "import" => execute_import(db, claim, progress, watch, log),
        other => Err(Error::invalid(format!(
            "{other} jobs are not supported by this version of cloud_sync"
        ))),
    }
}

fn execute_export(
    db: &Db,
    claim: &Claim,
    progress: &Progress,
    watch: &Watch,
    log: &mut JobLog,
) -> Result<Summary> {
    let options = ExportOptions::parse(Some(&claim.options))?;
    let info = open_connection(db, claim, watch, log)?;
    let request = ExportRequest {
        info: &info,
        connection_id: connections::id(db, &claim.connection_name)?,
        job_id: claim.id,
        dry_run: claim.dry_run,
        options: &options,
    };
    let mut summary = export::run(db, &request, progress, log)?;
    // Only a full export confirms a dry run.
    if let Some(confirmed) = options.confirm {
        record_differences(db, confirmed, &mut summary, log)?;
    }
    Ok(summary)
}

/// An import's options hold its strategy (folded in when it was queued).
fn execute_import(
    db: &Db,
    claim: &Claim,
    progress: &Progress,
    watch: &Watch,
    log: &mut JobLog,
) -> Result<Summary> {
    let options = ImportOptions::parse(Some(&claim.options))?;
    let info = open_connection(db, claim, watch, log)?;
    let request = ImportRequest {
        info: &info,
        dry_run: claim.dry_run,
        options: &options,
    };
    import::run(db, &request, progress, log)
}

/// The claimed job's saved connection, opened (decrypted) only now, logged redacted, with the
/// job's deadlines and guard.
fn open_connection(db: &Db, claim: &Claim, watch: &Watch, log: &mut JobLog) -> Result<ConnInfo> {
    let mut info = connections::open(db, &Keyring::from_env()?, &claim.connection_name)?;
    watch.apply(&mut info);
    log.info(None, format!("connecting to {}", info.display()));
    Ok(info)
}

/// The counts a confirmed export compares with its dry run's (problems need no comparison: an
/// export with any refuses to start).
const COMPARED_WITH_DRY_RUN: [&str; 6] = [
    "source_rows",
    "inserts",
    "updates",
    "unchanged",
    "skipped",
    "remote_only",
];

/// The local data may have changed since the dry run a full export confirms: the export runs
/// anyway, and its summary lists every count that differs from the dry run's.
fn record_differences(
    db: &Db,
    confirmed: i64,
    summary: &mut Summary,
    log: &mut JobLog,
) -> Result<()> {
    let previewed: Vec<TableSummary> = db
        .query_row(
            "SELECT summary FROM cloud_sync_jobs WHERE id = ?1",
            &[Param::Int(confirmed)],
            |row| Ok(row.text(0)),
        )?
        .flatten()
        .and_then(|text| Summary::parse(&text))
        .map(|previewed| previewed.tables)
        .unwrap_or_default();
    let mut differences = Vec::new();
    for actual in &summary.tables {
        let preview = previewed.iter().find(|t| t.table == actual.table);
        for count in COMPARED_WITH_DRY_RUN {
            let was = preview.and_then(|p| p.counts.get(count));
            let now = actual.counts.get(count);
            if preview.is_none() || was != now {
                differences.push(Difference {
                    table: actual.table.clone(),
                    count: count.to_string(),
                    dry_run: was,
                    export: now,
                });
            }
        }
    }
    if !differences.is_empty() {
        log.push(
            Level::Warn,
            None,
            format!(
                "the data changed since dry run {confirmed}: {} counts differ (see the summary)",
                differences.len()
            ),
        );
    }
    summary.confirmed_dry_run = Some(confirmed);
    summary.differences_from_dry_run = Some(differences);
    Ok(())
}
