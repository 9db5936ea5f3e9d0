//! Queuing an export or an import: every check runs before anything is written, so a refused
//! job queues nothing. The checks (`check_export`, `check_import`) are their own step, so that
//! a schedule checks the jobs it will queue exactly as queuing them does. Who a job is
//! requested by is settled here too (`audit::requester`), before anything is written.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::local::schema;
use crate::options_json;
use crate::sql_text::sql_literal;
use crate::sqlite::{Db, Param};
use crate::sync::options::{ExportOptions, ImportOptions, Mode, Strategy};
use crate::sync::summary::Summary;
use crate::sync::{export, import, now_iso, tracking};
use crate::{audit, connections};

/// Validates and queues an export of the saved connection `name` (`None`: the only saved
/// connection), on behalf of the connection's `actor`. Returns the job's id.
pub fn enqueue_export(
    db: &Db,
    name: Option<&str>,
    dry_run: bool,
    options_json: Option<&str>,
    actor: Option<&str>,
) -> Result<i64> {
    schema::require_writable(db, "queue a job")?;
    let (connection_id, name) = match name {
        Some(name) => (connections::id(db, name)?, name.to_string()),
        None => only_connection(db, dry_run)?,
    };
    let mut export = check_export(db, connection_id, &name, options_json)?;
    export.job.requested_by = audit::requester(export.job.requested_by.as_deref(), actor)?;
    if !dry_run {
        check_confirmation(db, connection_id, &name, &export.options, &export.tables)?;
    }
    export.job.queue(db, dry_run)
}

/// A job that passed every check of its kind, ready to be queued.
pub struct Checked {
    pub connection_id: i64,
    connection_name: String,
    kind: &'static str,
    /// The options as stored: the object given, keys sorted, without requested_by.
    pub options: Map<String, Value>,
    max_attempts: i64,
    /// Who the job is requested by: after the checks, the option requested_by; the caller
    /// settles it (`audit::requester`) before queuing.
    pub requested_by: Option<String>,
}

impl Checked {
    /// Queues the job, due now; returns its id.
    pub fn queue(&self, db: &Db, dry_run: bool) -> Result<i64> {
        insert_job(
            db,
            &NewJob {
                connection_id: self.connection_id,
                name: &self.connection_name,
                kind: self.kind,
                dry_run,
                options: &Value::Object(self.options.clone()).to_string(),
                max_attempts: self.max_attempts,
                requested_by: self.requested_by.as_deref(),
            },
        )
    }
}

/// An export that passed the checks every export passes; a full one is also confirmed.
pub struct CheckedExport {
    pub job: Checked,
    pub options: ExportOptions,
    /// The tables it selects.
    pub tables: Vec<String>,
}

/// Checks an export to the saved connection `name` (id `connection_id`) with `options_json`:
/// its options, the tables they select, their column types, and that mode incremental finds
/// them tracked.
pub fn check_export(
    db: &Db,
    connection_id: i64,
    name: &str,
    options_json: Option<&str>,
) -> Result<CheckedExport> {
    let options = ExportOptions::parse(options_json)?;
    let stored = options_object(options_json)?;
    let tables = export::select_tables(db, &options)?;
    export::check_column_types(db, &tables, &options)?;
    if options.mode == Some(Mode::Incremental) {
        let tracked: Vec<String> = tracking::all(db)?.into_iter().map(|t| t.table).collect();
        if let Some(untracked) = tables.iter().find(|t| !tracked.contains(t)) {
            return Err(Error::invalid(format!(
                "mode incremental needs tracked tables, and {untracked} is not tracked: track it \
                 (SELECT cloud_sync_track({})) and export it once in full, or leave mode out",
                sql_literal(untracked)
            )));
        }
    }
    let job = Checked {
        connection_id,
        connection_name: name.to_string(),
        kind: "export",
        options: stored,
        max_attempts: options.max_attempts,
        requested_by: options.requested_by.clone(),
    };
    Ok(CheckedExport {
        job,
        options,
        tables,
    })
}

/// Validates and queues an import from the saved connection `name`, on behalf of the
/// connection's `actor`; returns the job's id.
pub fn enqueue_import(
    db: &Db,
    name: &str,
    dry_run: bool,
    strategy: Option<&str>,
    options_json: Option<&str>,
    actor: Option<&str>,
) -> Result<i64> {
    schema::require_writable(db, "queue a job")?;
    let mut job = check_import(db, name, strategy, options_json)?;
    job.requested_by = audit::requester(job.requested_by.as_deref(), actor)?;
    job.queue(db, dry_run)
}

/// Checks an import from the saved connection `name`. `strategy` is the strategy argument
/// (`None`: not given); the options may also name one, and when both do they must agree. The
/// stored options always hold the strategy, so the runner reads everything from them.
pub fn check_import(
    db: &Db,
    name: &str,
    strategy: Option<&str>,
    options_json: Option<&str>,
) -> Result<Checked> {
    let connection_id = connections::id(db, name)?;
    let argument = strategy.map(Strategy::parse).transpose()?;
    let mut options = ImportOptions::parse(options_json)?;
    let mut stored = options_object(options_json)?;
    if let Some(argument) = argument {
        if stored.contains_key("strategy") && options.strategy != argument {
            return Err(Error::invalid(format!(
                "conflicting strategies: the strategy argument is '{}' but option strategy is \
                 '{}': give the strategy once",
                argument.as_str(),
                options.strategy.as_str()
            )));
        }
        options.strategy = argument;
    }
    import::select_tables(db, &options)?;
    stored.insert("strategy".into(), options.strategy.as_str().into());
    Ok(Checked {
        connection_id,
        connection_name: name.to_string(),
        kind: "import",
        options: stored,
        max_attempts: options.max_attempts,
        requested_by: options.requested_by,
    })
}

/// A job about to be queued, as its row stores it.
struct NewJob<'a> {
    connection_id: i64,
    name: &'a str,
    kind: &'a str,
    dry_run: bool,
    options: &'a str,
    max_attempts: i64,
    requested_by: Option<&'a str>,
}

/// Writes one queued job, due now, and when someone asked for it, a log line naming them.
fn insert_job(db: &Db, job: &NewJob) -> Result<i64> {
    let now = now_iso();
    db.atomically(|| {
        let id = db
            .query_row(
                "INSERT INTO cloud_sync_jobs
                   (connection_id, connection_name, kind, dry_run, options, status,
                    max_attempts, created_at, next_attempt_at, requested_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?7, ?8)
                 RETURNING id",
                &[
                    Param::Int(job.connection_id),
                    Param::Text(job.name),
                    Param::Text(job.kind),
                    Param::Int(i64::from(job.dry_run)),
                    Param::Text(job.options),
                    Param::Int(job.max_attempts),
                    Param::Text(&now),
                    Param::text_or_null(job.requested_by),
                ],
                |row| Ok(row.int(0)),
            )?
            .ok_or_else(|| Error::local("the queued job vanished"))?;
        if let Some(requester) = job.requested_by {
            super::control::log(db, id, &format!("queued, requested by {requester}"))?;
        }
        Ok(id)
    })
}

/// The options object as given (empty when none were given), its keys sorted, without
/// requested_by: the job keeps who asked for it in its own column.
fn options_object(options_json: Option<&str>) -> Result<Map<String, Value>> {
    let mut object = match options_json {
        None => Map::new(),
        Some(text) => options_json::object(text, "options", "'{}'")?,
    };
    object.remove("requested_by");
    Ok(object)
}

fn only_connection(db: &Db, dry_run: bool) -> Result<(i64, String)> {
    let mut all = connections::list(db)?;
    match all.len() {
        0 => Err(Error::invalid(
            "no connection is saved yet: save one with cloud_sync_save(name, connection_string), \
             then export with cloud_sync_export(name)",
        )),
        1 => Ok(all.remove(0)),
        _ => {
            let names: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
            Err(Error::invalid(format!(
                "{} connections are saved ({}): name the one to export to, like \
                 cloud_sync_export('{}', {})",
                names.len(),
                names.join(", "),
                names[0],
                i64::from(dry_run)
            )))
        }
    }
}

/// The dry run a full export confirms, as stored.
struct DryRun {
    id: i64,
    kind: String,
    dry_run: bool,
    status: String,
    connection_id: Option<i64>,
    connection_name: String,
    options: String,
    /// `None` when it has no summary or one that does not parse.
    summary: Option<Summary>,
    /// Seconds since it finished; `None` when it has no (valid) finish time.
    age_s: Option<i64>,
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A full export must name (`confirm`) a recent, clean, succeeded dry run of the same export.
/// The checks run in this order, so the first difference found is the one reported.
fn check_confirmation(
    db: &Db,
    connection_id: i64,
    name: &str,
    options: &ExportOptions,
    tables: &[String],
) -> Result<()> {
    let Some(id) = options.confirm else {
        return Err(Error::invalid(format!(
            "a full export needs confirm: run a dry run first \
             (SELECT cloud_sync_run(cloud_sync_export('{name}'))), check its preview, then \
             SELECT cloud_sync_export('{name}', 0, '{{\"confirm\": <dry-run job id>}}')"
        )));
    };
    let job = read_dry_run(db, id)?;
    check_succeeded_export_dry_run(&job)?;
    check_same_connection(&job, connection_id, name)?;
    let summary = job
        .summary
        .as_ref()
        .ok_or_else(|| Error::invalid(format!("confirm: dry run {id} has no readable summary")))?;
    check_same_tables(id, summary, tables)?;
    check_same_schema(&job, summary, options)?;
    check_same_comparison(&job, options)?;
    check_age(&job, options.confirm_max_age_s)?;
    check_no_problems(id, summary)
}

/// Job `id`, which must exist.
fn read_dry_run(db: &Db, id: i64) -> Result<DryRun> {
    let now = now_iso();
    let found = db.query_row(
        "SELECT kind, dry_run, status, connection_id, connection_name, options, summary,
                CAST(round((julianday(?2) - julianday(finished_at)) * 86400.0) AS INTEGER)
         FROM cloud_sync_jobs WHERE id = ?1",
        &[Param::Int(id), Param::Text(&now)],
        |row| {
            Ok(DryRun {
                id,
                kind: row.text(0).unwrap_or_default(),
                dry_run: row.int(1) == 1,
                status: row.text(2).unwrap_or_default(),
                connection_id: super::opt_int(row, 3),
                connection_name: row.text(4).unwrap_or_default(),
                options: row.text(5).unwrap_or_default(),
                summary: row.text(6).as_deref().and_then(Summary::parse),
                age_s: super::opt_int(row, 7),
            })
        },
    )?;
    found.ok_or_else(|| {
        Error::invalid(format!(
            "confirm: job {id} does not exist: confirm takes the id of a succeeded dry run"
        ))
    })
}

/// The job is an export, a dry run, and succeeded.
fn check_succeeded_export_dry_run(job: &DryRun) -> Result<()> {
    let id = job.id;
    if job.kind != "export" {
        return Err(Error::invalid(format!(
            "confirm: job {id} is an {} job, not an export dry run",
            job.kind
        )));
    }
    if !job.dry_run {
        return Err(Error::invalid(format!(
            "confirm: job {id} is not a dry run (it is a full export): confirm takes the id of a \
             succeeded dry run"
        )));
    }
    if job.status != "succeeded" {
        return Err(Error::invalid(format!(
            "confirm: dry run {id} has not succeeded (its status is {}): confirm takes the id of \
             a succeeded dry run",
            job.status
        )));
    }
    Ok(())
}

/// The dry run went to this very connection: the same name saved again since is another one.
fn check_same_connection(job: &DryRun, connection_id: i64, name: &str) -> Result<()> {
    if job.connection_id == Some(connection_id) {
        return Ok(());
    }
    let id = job.id;
    Err(Error::invalid(if job.connection_name == name {
        format!(
            "confirm: dry run {id} was for an earlier connection named '{name}' (deleted or \
             saved again since): run a new dry run"
        )
    } else {
        format!(
            "confirm: dry run {id} was for connection '{}', not '{name}'",
            job.connection_name
        )
    }))
}

/// The dry run previewed the tables this export selects, no more, no fewer.
fn check_same_tables(id: i64, summary: &Summary, tables: &[String]) -> Result<()> {
    let previewed: BTreeSet<&str> = summary.tables.iter().map(|t| t.table.as_str()).collect();
    let now_selected: BTreeSet<&str> = tables.iter().map(String::as_str).collect();
    if previewed == now_selected {
        return Ok(());
    }
    let mut differences = Vec::new();
    let added: Vec<&str> = now_selected.difference(&previewed).copied().collect();
    let dropped: Vec<&str> = previewed.difference(&now_selected).copied().collect();
    if !added.is_empty() {
        differences.push(format!("not in the dry run: {}", added.join(", ")));
    }
    if !dropped.is_empty() {
        differences.push(format!("in the dry run only: {}", dropped.join(", ")));
    }
    Err(Error::invalid(format!(
        "confirm: dry run {id} covered different tables than this export ({}): run a dry \
         run with the same options",
        differences.join("; ")
    )))
}

/// The dry run previewed the same remote schema (read from its options when its summary names
/// none, as a summary of an earlier version may not).
fn check_same_schema(job: &DryRun, summary: &Summary, options: &ExportOptions) -> Result<()> {
    let previewed_schema = if summary.schema.is_empty() {
        ExportOptions::parse(Some(&job.options))
            .map(|o| o.schema)
            .unwrap_or_default()
    } else {
        summary.schema.clone()
    };
    if previewed_schema == options.schema {
        return Ok(());
    }
    let id = job.id;
    Err(Error::invalid(format!(
        "confirm: dry run {id} was for schema '{previewed_schema}', this export is for \
         schema '{}': run a dry run with the same options",
        options.schema
    )))
}

/// The preview must have compared the same way (same mode, same deletes) and made the same
/// Citus tables.
fn check_same_comparison(job: &DryRun, options: &ExportOptions) -> Result<()> {
    let previewed = ExportOptions::parse(Some(&job.options)).unwrap_or_default();
    let compared = |o: &ExportOptions| (o.mode, o.propagate_deletes);
    let citus = |o: &ExportOptions| {
        (
            o.distribute.clone(),
            o.reference.clone(),
            o.colocate_with.clone(),
        )
    };
    let id = job.id;
    if compared(&previewed) != compared(options) {
        return Err(Error::invalid(format!(
            "confirm: dry run {id} had other mode or propagate_deletes options than this \
             export: run a dry run with the same options"
        )));
    }
    if citus(&previewed) != citus(options) {
        return Err(Error::invalid(format!(
            "confirm: dry run {id} had other distribute, reference or colocate_with options \
             than this export: run a dry run with the same options"
        )));
    }
    Ok(())
}

/// The dry run finished at most `max` seconds ago.
fn check_age(job: &DryRun, max: i64) -> Result<()> {
    let id = job.id;
    match job.age_s {
        None => Err(Error::invalid(format!(
            "confirm: dry run {id} has no finish time: run a new dry run"
        ))),
        Some(age) if age > max => Err(Error::invalid(format!(
            "confirm: dry run {id} is stale: it finished {} ago, more than \
             confirm_max_age_s ({}): run a new dry run",
            plural(age, "second", "seconds"),
            plural(max, "second", "seconds")
        ))),
        Some(_) => Ok(()),
    }
}

/// The dry run found no problems: an export with any would be refused anyway.
fn check_no_problems(id: i64, summary: &Summary) -> Result<()> {
    match summary.problems_total {
        0 => Ok(()),
        n => Err(Error::invalid(format!(
            "confirm: dry run {id} found {}: see SELECT * FROM cloud_sync_job_tables({id}) and \
             the summary's problems, fix them, and run a new dry run",
            plural(n as i64, "problem", "problems")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_stored_compact() {
        let stored = |json| Value::Object(options_object(json).unwrap()).to_string();
        assert_eq!(stored(None), "{}");
        assert_eq!(
            stored(Some(r#"{ "tables" : ["a"], "confirm": 3 }"#)),
            r#"{"confirm":3,"tables":["a"]}"#
        );
    }

    #[test]
    fn who_asked_is_not_stored_among_the_options() {
        let stored = options_object(Some(r#"{"requested_by": "alice", "tables": ["a"]}"#));
        assert_eq!(
            Value::Object(stored.unwrap()).to_string(),
            r#"{"tables":["a"]}"#
        );
    }

    #[test]
    fn import_options_are_stored_sorted() {
        let map = options_object(Some(r#"{ "tables": ["a"], "create_tables": true }"#)).unwrap();
        assert_eq!(
            Value::Object(map).to_string(),
            r#"{"create_tables":true,"tables":["a"]}"#
        );
        assert!(options_object(None).unwrap().is_empty());
    }

    fn dry_run(options: &str, age_s: Option<i64>) -> DryRun {
        DryRun {
            id: 4,
            kind: "export".into(),
            dry_run: true,
            status: "succeeded".into(),
            connection_id: Some(1),
            connection_name: "prod".into(),
            options: options.into(),
            summary: None,
            age_s,
        }
    }

    fn summary(tables: &[&str], problems_total: u64) -> Summary {
        let tables: Vec<Value> = tables
            .iter()
            .map(|t| {
                serde_json::json!({
                    "table": t, "remote_table": format!("public.{t}"), "key": ["id"],
                    "created": false, "ms": 0.0,
                })
            })
            .collect();
        let text = serde_json::json!({
            "kind": "export", "dry_run": true, "tables": tables, "problems_total": problems_total,
        });
        Summary::parse(&text.to_string()).unwrap()
    }

    fn message(result: Result<()>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn other_tables_than_previewed_are_named_on_both_sides() {
        let now_selected = ["b".to_string(), "c".to_string()];
        assert_eq!(
            message(check_same_tables(
                4,
                &summary(&["a", "b"], 0),
                &now_selected
            )),
            "confirm: dry run 4 covered different tables than this export (not in the dry run: \
             c; in the dry run only: a): run a dry run with the same options"
        );
        let same = ["a".to_string(), "b".to_string()];
        assert!(check_same_tables(4, &summary(&["b", "a"], 0), &same).is_ok());
    }

    #[test]
    fn a_preview_must_have_compared_the_same_way() {
        let incremental = ExportOptions::parse(Some(r#"{"mode": "incremental"}"#)).unwrap();
        assert_eq!(
            message(check_same_comparison(&dry_run("{}", Some(0)), &incremental)),
            "confirm: dry run 4 had other mode or propagate_deletes options than this export: \
             run a dry run with the same options"
        );
        let previewed = dry_run(r#"{"mode": "incremental"}"#, Some(0));
        assert!(check_same_comparison(&previewed, &incremental).is_ok());
    }

    #[test]
    fn a_dry_run_confirms_only_while_fresh() {
        assert_eq!(
            message(check_age(&dry_run("{}", None), 60)),
            "confirm: dry run 4 has no finish time: run a new dry run"
        );
        assert_eq!(
            message(check_age(&dry_run("{}", Some(61)), 60)),
            "confirm: dry run 4 is stale: it finished 61 seconds ago, more than \
             confirm_max_age_s (60 seconds): run a new dry run"
        );
        assert!(check_age(&dry_run("{}", Some(60)), 60).is_ok());
    }

    #[test]
    fn a_dry_run_with_problems_confirms_nothing() {
        assert_eq!(
            message(check_no_problems(4, &summary(&["a"], 1))),
            "confirm: dry run 4 found 1 problem: see SELECT * FROM cloud_sync_job_tables(4) and \
             the summary's problems, fix them, and run a new dry run"
        );
        assert!(check_no_problems(4, &summary(&["a"], 0)).is_ok());
    }
}
