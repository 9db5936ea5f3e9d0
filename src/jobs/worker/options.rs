//! The worker's options: the `options_json` of `cloud_sync_worker_start`, checked before any
//! thread or connection exists.

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::sqlite::argument::json_integer;

const DEFAULT_POLL_MS: u64 = 1000;
const MIN_POLL_MS: u64 = 50;
const MAX_POLL_MS: u64 = 60_000;
const OPTIONS: &[&str] = &["poll_interval_ms"];

/// The worker's options (`options_json` of `cloud_sync_worker_start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub poll_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll_interval: Duration::from_millis(DEFAULT_POLL_MS),
        }
    }
}

impl Options {
    pub fn parse(text: Option<&str>) -> Result<Options> {
        let mut options = Options::default();
        let Some(text) = text else {
            return Ok(options);
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("options_json is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                "options_json must be a JSON object, like {\"poll_interval_ms\": 1000}",
            ));
        };
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !OPTIONS.contains(&k.as_str()))
            .map(|k| format!("\"{k}\""))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(format!(
                "unknown option{} {} in options_json: the worker takes {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                OPTIONS.join(", ")
            )));
        }
        if let Some(v) = map.get("poll_interval_ms") {
            let ms = json_integer(v)
                .and_then(|ms| u64::try_from(ms).ok())
                .filter(|ms| (MIN_POLL_MS..=MAX_POLL_MS).contains(ms))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "poll_interval_ms must be an integer from {MIN_POLL_MS} to \
                         {MAX_POLL_MS} (milliseconds), not {v}"
                    ))
                })?;
            options.poll_interval = Duration::from_millis(ms);
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_and_bounds() {
        assert_eq!(Options::parse(None).unwrap(), Options::default());
        assert_eq!(
            Options::parse(Some("{}")).unwrap().poll_interval,
            Duration::from_millis(1000)
        );
        for ms in [50, 60_000] {
            let text = format!("{{\"poll_interval_ms\": {ms}}}");
            assert_eq!(
                Options::parse(Some(&text)).unwrap().poll_interval,
                Duration::from_millis(ms)
            );
        }
        for bad in ["49", "60001", "-1", "1000.5", "\"1e3x\"", "null", "true"] {
            let text = format!("{{\"poll_interval_ms\": {bad}}}");
            let e = Options::parse(Some(&text)).unwrap_err().to_string();
            assert!(
                e.contains("poll_interval_ms must be an integer from 50 to 60000"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_whole_real_or_integer_text_poll_interval_counts_as_an_integer() {
        // json_object('poll_interval_ms', ?) writes 100.0 from a JS number, "100" from a CLI.
        for given in ["100.0", "\"100\""] {
            let text = format!("{{\"poll_interval_ms\": {given}}}");
            let options = Options::parse(Some(&text)).unwrap();
            assert_eq!(options.poll_interval, Duration::from_millis(100), "{given}");
        }
    }

    #[test]
    fn options_refuse_unknown_keys_by_name() {
        let e = Options::parse(Some(r#"{"poll_interval_ms": 100, "poll": 1, "max": 2}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown options \"max\", \"poll\""), "{e}");
        assert!(e.contains("the worker takes poll_interval_ms"), "{e}");
        let e = Options::parse(Some(r#"{"x": 1}"#)).unwrap_err().to_string();
        assert!(e.starts_with("unknown option \"x\""), "{e}");
    }

    #[test]
    fn options_must_be_a_json_object() {
        for bad in ["", "[]", "1", "{", "\"x\""] {
            assert!(Options::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
