//! Row keys: as JSON objects for problem reports, and the rowid that stands in for a missing
//! one.

use std::io::Write;

use crate::sqlite::Value;

/// The remote column that holds the rowids of a table exported with `use_rowid`, and the name
/// import's statements give the local rowid (SQLite reads `"rowid"` as the rowid when no column
/// has that name).
pub const ROWID_COLUMN: &str = "rowid";

/// A row's key as a JSON object `{column: value}`.
pub fn key_json<'a>(columns: impl IntoIterator<Item = (&'a str, Value<'a>)>) -> serde_json::Value {
    let mut key = serde_json::Map::new();
    for (column, value) in columns {
        let mut text = Vec::new();
        describe_key_value(value, &mut text);
        key.insert(
            column.to_string(),
            serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null),
        );
    }
    serde_json::Value::Object(key)
}

/// The key of a row named by its rowid: a row of a keyless table, or one whose key is NULL.
pub fn rowid_key(rowid: i64) -> serde_json::Value {
    serde_json::json!({ ROWID_COLUMN: rowid })
}

/// Appends the JSON text of a key value. A non-finite real has none (it is written `inf` or
/// `NaN`), so `key_json` records it as null.
fn describe_key_value(value: Value, out: &mut Vec<u8>) {
    let _ = match value {
        Value::Null => write!(out, "null"),
        Value::Integer(i) => write!(out, "{i}"),
        Value::Real(r) => write!(out, "{r}"),
        Value::Text(t) => write!(
            out,
            "{}",
            serde_json::Value::from(String::from_utf8_lossy(t))
        ),
        Value::Blob(b) => write!(
            out,
            "\"x'{}'\"",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_json_objects_by_column() {
        let key = key_json([
            ("id", Value::Integer(-5)),
            ("name", Value::Text(b"a\"b")),
            ("bytes", Value::Blob(&[0, 255])),
            ("x", Value::Real(1.5)),
            ("inf", Value::Real(f64::INFINITY)),
            ("none", Value::Null),
        ]);
        assert_eq!(
            key,
            serde_json::json!({"id": -5, "name": "a\"b", "bytes": "x'00ff'", "x": 1.5,
                               "inf": null, "none": null})
        );
    }
}
