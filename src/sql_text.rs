//! The text of SQL that cloud_sync builds, for SQLite and Postgres alike (both quote the same
//! way): every identifier and literal spliced into a statement goes through here, so no name
//! or value can change a statement's meaning.

/// Quotes an identifier: `user` -> `"user"`, `a"b` -> `"a""b"`.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Quotes a string literal: `it's` -> `'it''s'`.
pub fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(quote("user"), "\"user\"");
        assert_eq!(quote("Mixed.Case \"x\""), "\"Mixed.Case \"\"x\"\"\"");
    }

    #[test]
    fn literals_double_their_quotes() {
        assert_eq!(sql_literal("plain"), "'plain'");
        assert_eq!(sql_literal("it's 'x'"), "'it''s ''x'''");
        assert_eq!(sql_literal(""), "''");
    }
}
