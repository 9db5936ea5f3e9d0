//! How a value the user gave appears in an error message: quoted, and cut after
//! [`SHOWN_CHARS`] characters with a mark saying how long it was, so that a 10 MB argument
//! does not come back as a 10 MB error. Cut on a character boundary; NUL, which would end the
//! message early for a host reading it as a C string, is written `\0`. Text that may be a
//! connection string, given where something else belongs (a job id, a table name, a strategy),
//! is not shown at all: it may hold a password.

/// How much of a value a message shows.
pub const SHOWN_CHARS: usize = 100;

/// What a message shows in place of text that may be a connection string.
const CONNECTION_STRING_SHOWN: &str = "a connection string (not shown)";

/// A URL (`scheme://`, whose user part may hold a password) or text with a `password=` key.
pub fn may_be_connection_string(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    text.contains("://")
        || lower
            .match_indices("password")
            .any(|(at, key)| lower[at + key.len()..].trim_start().starts_with('='))
}

/// `text` in `quote`s (a `'` inside `'` quotes is doubled, as in SQL), cut when long:
/// `'xxxx…' (150 characters)`; a connection string not at all.
pub fn quoted(text: &str, quote: char) -> String {
    if may_be_connection_string(text) {
        return CONNECTION_STRING_SHOWN.into();
    }
    let length = text.chars().count();
    let mut shown = String::with_capacity(text.len().min(4 * SHOWN_CHARS) + 2);
    shown.push(quote);
    for c in text.chars().take(SHOWN_CHARS) {
        match c {
            '\0' => shown.push_str("\\0"),
            '\'' if quote == '\'' => shown.push_str("''"),
            c => shown.push(c),
        }
    }
    if length > SHOWN_CHARS {
        shown.push('…');
        shown.push(quote);
        shown.push_str(&format!(" ({length} characters)"));
    } else {
        shown.push(quote);
    }
    shown
}

/// A JSON value as a message shows it: a string in double quotes, anything else as compact
/// JSON, cut like [`quoted`] text.
pub fn json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => quoted(s, '"'),
        other => {
            let text = other.to_string();
            if may_be_connection_string(&text) {
                return CONNECTION_STRING_SHOWN.into();
            }
            let length = text.chars().count();
            if length <= SHOWN_CHARS {
                text
            } else {
                let start: String = text.chars().take(SHOWN_CHARS).collect();
                format!("{start}… ({length} characters)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_connection_string_given_elsewhere_is_not_quoted() {
        for text in [
            "postgresql://u:secret@localhost/db",
            "postgresql://u:secret",
            "mysql://u:secret@h",
            "host=h password=secret",
            "host=h PASSWORD = secret",
        ] {
            assert_eq!(quoted(text, '"'), CONNECTION_STRING_SHOWN, "{text}");
            assert_eq!(json(&json!(text)), CONNECTION_STRING_SHOWN, "{text}");
            assert_eq!(json(&json!([text])), CONNECTION_STRING_SHOWN, "{text}");
        }
        for text in ["items", "password_resets", "merge", "", "a password"] {
            assert_eq!(quoted(text, '"'), format!("\"{text}\""));
        }
    }

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(quoted("it's", '\''), "'it''s'");
        assert_eq!(quoted("replace", '"'), "\"replace\"");
        assert_eq!(quoted("", '"'), "\"\"");
        assert_eq!(quoted("a\0b", '"'), "\"a\\0b\"");
    }

    #[test]
    fn long_text_is_cut_on_a_character_with_its_length() {
        let long = "x".repeat(10_000_000);
        assert_eq!(
            quoted(&long, '"'),
            format!("\"{}…\" (10000000 characters)", "x".repeat(100))
        );
        // Multi-byte characters are never split.
        let accents = "é".repeat(150);
        assert_eq!(
            quoted(&accents, '\''),
            format!("'{}…' (150 characters)", "é".repeat(100))
        );
        let exactly = "y".repeat(SHOWN_CHARS);
        assert_eq!(quoted(&exactly, '"'), format!("\"{exactly}\""));
    }

    #[test]
    fn json_values_are_shown_compact_and_cut() {
        assert_eq!(json(&json!("x")), "\"x\"");
        assert_eq!(json(&json!(1.5)), "1.5");
        assert_eq!(json(&json!({"a": [1, 2]})), "{\"a\":[1,2]}");
        let long = json!(vec![1; 100]);
        let shown = json(&long);
        assert!(shown.ends_with("… (201 characters)"), "{shown}");
        assert_eq!(
            shown.chars().count(),
            100 + "… (201 characters)".chars().count()
        );
    }
}
