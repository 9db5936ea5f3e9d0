//! Reading the options JSON a function is given, strictly: valid JSON, an object, not blank,
//! and no key given twice at any depth (serde_json alone would keep the last one silently, so
//! `{"schema": "a", "schema": "b"}` would run with a setting the user may not have meant).

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::shown;

/// The object `text` holds. `what` names it in messages (`options`, `options_json`), `example`
/// shows a valid one.
pub fn object(text: &str, what: &str, example: &str) -> Result<Map<String, Value>> {
    if text.trim().is_empty() {
        return Err(Error::invalid(format!(
            "{what} are empty text: leave them out for the defaults, or give an object like \
             {example}"
        )));
    }
    match serde_json::from_str::<Unique>(text) {
        Ok(Unique(Value::Object(map))) => Ok(map),
        Ok(_) => Err(Error::invalid(format!(
            "{what} must be a JSON object, like {example}"
        ))),
        Err(e) => Err(Error::invalid(format!("{what} are not valid JSON: {e}"))),
    }
}

/// A JSON value whose objects, at any depth, name each key once.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Unique, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Unique(value) = access.next_value()?;
            if map.contains_key(&key) {
                return Err(A::Error::custom(format!(
                    "the key {} is given twice: give it once",
                    shown::quoted(&key, '"')
                )));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        object(text, "options", "{}").unwrap_err().to_string()
    }

    #[test]
    fn an_object_reads_as_serde_json_reads_it() {
        let text =
            r#"{"a": [1, 2.5, "x", null, true, {"b": {}}], "c": -1, "d": 18446744073709551615}"#;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            Value::Object(object(text, "options", "{}").unwrap()),
            expected
        );
    }

    #[test]
    fn a_key_given_twice_at_any_depth_is_refused() {
        let e = error(r#"{"schema": "a", "schema": "b"}"#);
        assert!(e.contains("the key \"schema\" is given twice"), "{e}");
        let e = error(r#"{"column_types": {"t.a": "int", "t.a": "text"}}"#);
        assert!(e.contains("the key \"t.a\" is given twice"), "{e}");
        let e = error(r#"{"x": [{"k": 1, "k": 2}]}"#);
        assert!(e.contains("the key \"k\" is given twice"), "{e}");
    }

    #[test]
    fn blank_text_and_other_values_are_refused() {
        for blank in ["", "  "] {
            assert!(
                error(blank).starts_with("options are empty text"),
                "{blank:?}"
            );
        }
        assert!(error("[1]").contains("must be a JSON object"));
        assert!(error("{").contains("not valid JSON"));
    }
}
