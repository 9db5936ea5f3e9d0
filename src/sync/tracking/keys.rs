//! The key text of a change: the triggers write each changed row's key as its columns'
//! `quote()` literals joined by ','. Plain SQL writes it (any writer of the file records
//! changes), so Rust reads it back here, into the values an incremental export selects by.

use crate::sqlite::Value as SqlValue;

/// One value of a recorded key, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl KeyValue {
    pub fn as_sql(&self) -> SqlValue<'_> {
        match self {
            KeyValue::Null => SqlValue::Null,
            KeyValue::Integer(i) => SqlValue::Integer(*i),
            KeyValue::Real(r) => SqlValue::Real(*r),
            KeyValue::Text(t) => SqlValue::Text(t.as_bytes()),
            KeyValue::Blob(b) => SqlValue::Blob(b),
        }
    }
}

/// Parses what the triggers write: `width` SQL literals as `quote()` renders them (NULL,
/// integers, reals, 'text' with '' escapes, X'hex'), joined by ','. `None` when malformed.
pub fn decode_key(text: &str, width: usize) -> Option<Vec<KeyValue>> {
    let mut rest = text;
    let mut values = Vec::with_capacity(width);
    loop {
        let (value, after) = literal(rest)?;
        values.push(value);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.is_empty() => break,
            None => return None,
        }
    }
    (values.len() == width).then_some(values)
}

/// One literal at the start of `text`, and what follows it.
fn literal(text: &str) -> Option<(KeyValue, &str)> {
    if let Some(after) = text.strip_prefix("NULL") {
        return Some((KeyValue::Null, after));
    }
    if let Some(body) = text.strip_prefix('\'') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                value.push(c);
            } else if body[i + 1..].starts_with('\'') {
                value.push('\'');
                chars.next();
            } else {
                return Some((KeyValue::Text(value), &body[i + 1..]));
            }
        }
        return None;
    }
    if let Some(body) = text.strip_prefix("X'") {
        let end = body.find('\'')?;
        let hex = &body[..end];
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        return Some((KeyValue::Blob(bytes), &body[end + 1..]));
    }
    let end = text.find(',').unwrap_or(text.len());
    let number = &text[..end];
    let value = match number.parse::<i64>() {
        Ok(i) => KeyValue::Integer(i),
        // quote() writes infinity as 9.0e+999, which parses to infinity as well.
        Err(_) => KeyValue::Real(number.parse::<f64>().ok()?),
    };
    Some((value, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::{decode_key, KeyValue};

    #[test]
    fn keys_decode_from_what_quote_writes() {
        assert_eq!(decode_key("5", 1), Some(vec![KeyValue::Integer(5)]));
        assert_eq!(
            decode_key("'a,''b''',-2,X'00FF',NULL,1.5", 5),
            Some(vec![
                KeyValue::Text("a,'b'".into()),
                KeyValue::Integer(-2),
                KeyValue::Blob(vec![0, 255]),
                KeyValue::Null,
                KeyValue::Real(1.5),
            ])
        );
        assert_eq!(
            decode_key("9.0e+999", 1),
            Some(vec![KeyValue::Real(f64::INFINITY)])
        );
        assert_eq!(decode_key("'é'", 1), Some(vec![KeyValue::Text("é".into())]));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "'open", "5,6", "X'0'", "abc", "5;"] {
            assert_eq!(decode_key(bad, 1), None, "{bad}");
        }
        assert_eq!(decode_key("5", 2), None);
    }
}
