//! A schedule's definition: the `options_json` of `cloud_sync_schedule`, read by the project's
//! strict rules (`options_json`: an object, not blank, no key twice; `integer` for numbers).
//! The schedule's own keys are taken out here; every other key is an option of the job it
//! queues, and its value is checked by the code that checks that job when it is queued
//! (`enqueue`), never here: here only that the job takes such a key, so that a misspelt key
//! is named beside the schedule's own.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::sync::options::{boolean, KNOWN as EXPORT_OPTIONS, KNOWN_IMPORT as IMPORT_OPTIONS};
use crate::{audit, integer, options_json, shown};

/// The keys a schedule reads itself; the others are the job's.
const SCHEDULE_KEYS: &str = "connection, kind, every_s, on_change, debounce_ms";
const EXAMPLE: &str = r#"'{"connection": "prod", "kind": "export", "every_s": 60}'"#;
/// A year: a longer period is more likely a unit mistake than a wish.
const MAX_EVERY_S: i64 = 31_536_000;
/// An hour.
const MAX_DEBOUNCE_MS: i64 = 3_600_000;
const DEFAULT_DEBOUNCE_MS: i64 = 1000;

/// What a schedule queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Export,
    Import,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Export => "export",
            Kind::Import => "import",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "export" => Some(Kind::Export),
            "import" => Some(Kind::Import),
            _ => None,
        }
    }
}

/// What a schedule runs, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The saved connection's name.
    pub connection: String,
    pub kind: Kind,
    /// The options of the job it queues, as given; an export's without `mode`, since every
    /// scheduled export is incremental.
    pub job_options: Map<String, Value>,
    /// The period, if it has one.
    pub every_s: Option<i64>,
    /// An export that starts once local changes have been quiet for `debounce_ms`.
    pub on_change: bool,
    /// Set exactly when `on_change` is.
    pub debounce_ms: Option<i64>,
    /// Who its jobs are requested by: as parsed, the option requested_by; as stored, the
    /// schedule's `created_by` (that option, else the actor who created or replaced it).
    pub requested_by: Option<String>,
}

impl Definition {
    pub fn parse(text: &str) -> Result<Definition> {
        let mut map = options_json::object(text, "options_json", EXAMPLE)?;
        let connection = connection(map.remove("connection"))?;
        let kind = kind(map.remove("kind"))?;
        let every_s = map
            .remove("every_s")
            .map(|v| bounded("every_s", &v, 1, MAX_EVERY_S, "seconds between runs"))
            .transpose()?;
        let on_change = map
            .remove("on_change")
            .map(|v| boolean("on_change", &v))
            .transpose()?
            .unwrap_or(false);
        let debounce_ms = map
            .remove("debounce_ms")
            .map(|v| bounded("debounce_ms", &v, 0, MAX_DEBOUNCE_MS, "milliseconds"))
            .transpose()?;
        check_timing(kind, every_s, on_change, debounce_ms)?;
        check_job_keys(kind, &map)?;
        // Who asks is the schedule's, not a job option its runs would repeat.
        let requested_by = map
            .remove("requested_by")
            .map(|v| audit::requested_by_option(&v))
            .transpose()?;
        match kind {
            Kind::Export => export_job_options(&mut map)?,
            Kind::Import => import_job_options(&map)?,
        }
        Ok(Definition {
            connection,
            kind,
            job_options: map,
            every_s,
            on_change,
            debounce_ms: on_change.then(|| debounce_ms.unwrap_or(DEFAULT_DEBOUNCE_MS)),
            requested_by,
        })
    }

    /// The job's options as the text its checks read.
    pub fn job_options_json(&self) -> String {
        Value::Object(self.job_options.clone()).to_string()
    }
}

fn connection(value: Option<Value>) -> Result<String> {
    match value {
        Some(Value::String(name)) => Ok(name),
        None => Err(Error::invalid(format!(
            "a schedule needs connection, the name of a saved connection, like {EXAMPLE}"
        ))),
        Some(other) => Err(Error::invalid(format!(
            "option connection must be the name of a saved connection, not {}",
            shown::json(&other)
        ))),
    }
}

fn kind(value: Option<Value>) -> Result<Kind> {
    let given = match value {
        None => {
            return Err(Error::invalid(
                "a schedule needs kind: \"export\" or \"import\"",
            ))
        }
        Some(v) => v,
    };
    given.as_str().and_then(Kind::parse).ok_or_else(|| {
        Error::invalid(format!(
            "option kind must be \"export\" or \"import\", not {}",
            shown::json(&given)
        ))
    })
}

/// An integer from `min` to `max` (`unit` says what it counts), in any form the integer rule
/// takes.
fn bounded(key: &str, value: &Value, min: i64, max: i64, unit: &str) -> Result<i64> {
    integer::from_json(value)
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            Error::invalid(format!(
                "option {key} must be an integer from {min} to {max} ({unit}), not {}",
                shown::json(value)
            ))
        })
}

/// A schedule runs every period, on change, or both; only an export can watch local changes.
fn check_timing(
    kind: Kind,
    every_s: Option<i64>,
    on_change: bool,
    debounce_ms: Option<i64>,
) -> Result<()> {
    if debounce_ms.is_some() && !on_change {
        return Err(Error::invalid(
            "option debounce_ms goes with \"on_change\": true: add that, or leave debounce_ms out",
        ));
    }
    if on_change && kind == Kind::Import {
        return Err(Error::invalid(
            "option on_change watches local changes, which only an export sends: schedule an \
             import with every_s",
        ));
    }
    if every_s.is_none() && !on_change {
        return Err(Error::invalid(format!(
            "a schedule needs every_s (seconds between runs), \"on_change\": true (an export \
             once local changes go quiet), or both, like {EXAMPLE}"
        )));
    }
    Ok(())
}

/// Refuses a key that is neither the schedule's nor the job's, naming both lists (the job's
/// own checks, which read the values, would name only theirs).
fn check_job_keys(kind: Kind, job: &Map<String, Value>) -> Result<()> {
    let known = match kind {
        Kind::Export => EXPORT_OPTIONS,
        Kind::Import => IMPORT_OPTIONS,
    };
    match job.keys().find(|key| !known.contains(&key.as_str())) {
        None => Ok(()),
        Some(unknown) => Err(Error::invalid(format!(
            "unknown option {}: a schedule takes {SCHEDULE_KEYS}, and the {}'s own options: {}",
            shown::quoted(unknown, '"'),
            kind.as_str(),
            known.join(", ")
        ))),
    }
}

/// A scheduled export is always incremental, so it confirms no dry run and takes no other mode.
fn export_job_options(job: &mut Map<String, Value>) -> Result<()> {
    if job.contains_key("confirm") {
        return Err(Error::invalid(
            "a scheduled export confirms no dry run: each run is incremental and needs none; \
             leave option confirm out",
        ));
    }
    match job.remove("mode") {
        None => Ok(()),
        Some(Value::String(mode)) if mode == "incremental" => Ok(()),
        Some(other) => Err(Error::invalid(format!(
            "a scheduled export is always incremental, so option mode must be \"incremental\" \
             or left out, not {}: run a full export yourself (a dry run, then the export that \
             confirms it)",
            shown::json(&other)
        ))),
    }
}

/// A scheduled import is a real import, and how it treats local rows is said, not defaulted.
fn import_job_options(job: &Map<String, Value>) -> Result<()> {
    if job.contains_key("strategy") {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "a scheduled import names its strategy: add \"strategy\": \"skip\" (keep local rows), \
         \"overwrite\" (take the remote rows) or \"merge\" (take the remote values that are not \
         NULL); the options besides {SCHEDULE_KEYS} are the import's own"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Definition> {
        Definition::parse(&value.to_string())
    }

    fn error(value: Value) -> String {
        parse(value).unwrap_err().to_string()
    }

    #[test]
    fn the_schedule_keys_are_taken_out_and_the_rest_is_the_job() {
        let d = parse(
            json!({"connection": "prod", "kind": "export", "every_s": "5",
                             "on_change": 1, "debounce_ms": 250.0, "tables": ["items"],
                             "mode": "incremental"}),
        )
        .unwrap();
        assert_eq!(
            (
                d.connection.as_str(),
                d.kind,
                d.every_s,
                d.on_change,
                d.debounce_ms
            ),
            ("prod", Kind::Export, Some(5), true, Some(250))
        );
        assert_eq!(d.job_options_json(), r#"{"tables":["items"]}"#);
        let d = parse(json!({"connection": "prod", "kind": "export", "on_change": true})).unwrap();
        assert_eq!(
            (d.every_s, d.debounce_ms),
            (None, Some(DEFAULT_DEBOUNCE_MS))
        );
        let d = parse(
            json!({"connection": "prod", "kind": "import", "every_s": 60,
                             "strategy": "merge"}),
        )
        .unwrap();
        assert_eq!(
            (d.kind, d.on_change, d.debounce_ms),
            (Kind::Import, false, None)
        );
        assert_eq!(d.job_options_json(), r#"{"strategy":"merge"}"#);
        let d = parse(json!({"connection": "prod", "kind": "export", "every_s": 5,
                             "requested_by": "alice"}))
        .unwrap();
        assert_eq!(
            (d.requested_by.as_deref(), d.job_options_json().as_str()),
            (Some("alice"), "{}")
        );
    }

    #[test]
    fn what_is_wrong_is_named() {
        let base = json!({"connection": "prod", "kind": "export", "every_s": 5});
        let with = |key: &str, value: Value| {
            let mut v = base.clone();
            v[key] = value;
            v
        };
        for (options, expected) in [
            (
                json!({"kind": "export", "every_s": 5}),
                "a schedule needs connection",
            ),
            (with("connection", json!(1)), "connection must be the name"),
            (
                json!({"connection": "prod", "every_s": 5}),
                "a schedule needs kind",
            ),
            (
                with("kind", json!("copy")),
                "must be \"export\" or \"import\", not \"copy\"",
            ),
            (
                with("every_s", json!(0)),
                "every_s must be an integer from 1 to 31536000",
            ),
            (
                with("every_s", json!(1.5)),
                "(seconds between runs), not 1.5",
            ),
            (
                with("on_change", json!("yes")),
                "on_change must be true or false",
            ),
            (
                with("debounce_ms", json!(-1)),
                "debounce_ms must be an integer from 0",
            ),
            (
                with("debounce_ms", json!(100)),
                "debounce_ms goes with \"on_change\": true",
            ),
            (with("confirm", json!(3)), "confirms no dry run"),
            (
                with("requested_by", json!("")),
                "option requested_by: an actor is 1 to 200 characters",
            ),
            (
                with("every", json!(3)),
                "unknown option \"every\": a schedule takes connection, kind, every_s, \
                 on_change, debounce_ms, and the export's own options: tables, exclude,",
            ),
            (
                with("mode", json!("full")),
                "always incremental, so option mode",
            ),
            (
                json!({"connection": "prod", "kind": "import", "on_change": true}),
                "only an export sends",
            ),
            (
                json!({"connection": "prod", "kind": "import", "every_s": 5}),
                "a scheduled import names its strategy",
            ),
            (
                json!({"connection": "prod", "kind": "export", "on_change": false}),
                "a schedule needs every_s",
            ),
        ] {
            let message = error(options.clone());
            assert!(message.contains(expected), "{options}: {message}");
        }
    }

    #[test]
    fn the_text_follows_the_options_json_rules() {
        for (text, expected) in [
            (" ", "options_json are empty text"),
            ("[]", "options_json must be a JSON object"),
            (
                r#"{"connection": "a", "connection": "b"}"#,
                "the key \"connection\" is given twice",
            ),
        ] {
            let message = Definition::parse(text).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
        }
    }
}
