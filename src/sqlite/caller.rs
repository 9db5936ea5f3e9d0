//! Whether a call of a function that acts (writes, reaches the network) comes straight from a
//! statement the application runs, and not from the schema of a database file.
//!
//! SQLITE_DIRECTONLY keeps such functions out of views, triggers and DEFAULTs, but SQLite
//! (3.40 as Debian 12 ships it, 3.46 alike) lets a CHECK constraint, and a generated column or
//! index edited into the file, call a DIRECTONLY function that is not deterministic: SQLite
//! marks a call as coming from the schema only for deterministic functions. A crafted file
//! could then send its rows to any server on every insert. So before such a function runs, [`refuse_indirect`] requires that
//! - a statement running on the connection calls it by name (a CHECK constraint, generated
//!   column or index expression is evaluated inside the statement that writes the row, whose
//!   own text does not call the function; a statement prepared without its SQL text cannot
//!   vouch for a call); and
//! - no table, index, view or trigger of an attached database calls it (otherwise an
//!   application statement that calls it and writes into such a table, or cloud_sync's own
//!   writes during a call of it, would let the schema's call through).
//!
//! Names are read as SQLite's tokenizer reads them: whole identifiers, bare or quoted, in any
//! ASCII case, outside string literals and comments, followed by `(`.

use std::ffi::CStr;
use std::ptr;

use sqlite_loadable::ext::sqlite3;

use super::api::{call, Db, Value};
use super::argument::shown;
use crate::error::{Error, Result};
use crate::sql_text::quote;

const ONLY_DIRECT: &str = "can only be called directly in a statement, not from a CHECK \
                           constraint or other schema expression of the database file";

/// Refuses the call of `name` on `db` unless it comes straight from a running statement and no
/// schema object of an attached database calls it. Nothing was done when this refuses.
///
/// # Safety
/// `db` must be the live connection of the current call.
pub unsafe fn refuse_indirect(db: *mut sqlite3, name: &str) -> Result<()> {
    if !called_by_running_statement(db, name) {
        return Err(Error::invalid(format!(
            "it {ONLY_DIRECT} (no running statement calls it): refused, nothing was done"
        )));
    }
    if let Some(object) = schema_object_calling(&Db::from_raw(db), name)? {
        return Err(Error::invalid(format!(
            "{object} calls it, but it {ONLY_DIRECT}: refused, nothing was done"
        )));
    }
    Ok(())
}

/// Whether a statement running on `db` calls `name`. A statement whose SQL text SQLite did not
/// keep (one prepared with the legacy `sqlite3_prepare`) cannot vouch for a call.
unsafe fn called_by_running_statement(db: *mut sqlite3, name: &str) -> bool {
    let mut stmt = call!(next_stmt(db, ptr::null_mut()));
    while !stmt.is_null() {
        if call!(stmt_busy(stmt)) != 0 {
            let sql = call!(sql(stmt));
            if !sql.is_null() && calls_function(CStr::from_ptr(sql).to_bytes(), name) {
                return true;
            }
        }
        stmt = call!(next_stmt(db, stmt));
    }
    false
}

/// The first schema object of any attached database whose SQL calls `name`, as a message
/// words it (`table 'notes' of database 'main'`).
fn schema_object_calling(db: &Db, name: &str) -> Result<Option<String>> {
    let mut databases = Vec::new();
    let mut list = db.prepare("SELECT name FROM pragma_database_list")?;
    while list.step()? {
        databases.extend(list.text(0));
    }
    drop(list);
    for database in databases {
        let mut objects = db.prepare(&format!(
            "SELECT type, name, sql FROM {}.sqlite_master WHERE sql IS NOT NULL",
            quote(&database)
        ))?;
        while objects.step()? {
            let sql = objects.text(2).unwrap_or_default();
            if calls_function(sql.as_bytes(), name) {
                let kind = objects.text(0).unwrap_or_default();
                let object = objects.text(1).unwrap_or_default();
                return Ok(Some(format!(
                    "{kind} {} of database {}",
                    shown(Value::Text(object.as_bytes())),
                    shown(Value::Text(database.as_bytes()))
                )));
            }
        }
    }
    Ok(None)
}

/// Whether `sql` calls the function `name`: `name` as a whole identifier followed by `(`.
fn calls_function(sql: &[u8], name: &str) -> bool {
    let tokens = Tokens { sql, at: 0 };
    let mut after_name = false;
    for token in tokens {
        after_name = match token {
            Token::Identifier(identifier) => identifier.eq_ignore_ascii_case(name.as_bytes()),
            Token::Other(b'(') if after_name => return true,
            Token::Other(_) => false,
        };
    }
    false
}

/// What of SQL's tokens matters here: identifiers (quoted ones without their quotes, doubled
/// quotes left as they are, which no function name holds) and any other single byte. Blanks,
/// comments, string literals, numbers and parameters are skipped.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    Identifier(&'a [u8]),
    Other(u8),
}

struct Tokens<'a> {
    sql: &'a [u8],
    at: usize,
}

/// SQLite's identifier characters: ASCII letters, digits, `_`, `$` and every non-ASCII byte.
fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Tokens<'a> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.sql.get(self.at + offset).copied()
    }

    /// Moves past bytes while `keep` holds.
    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek(0).is_some_and(&keep) {
            self.at += 1;
        }
    }

    /// Moves past a quoted run that opened with `close`'s partner at the current byte, and
    /// returns its contents. A doubled `close` stands for itself when `doubles` is set; an
    /// unclosed run ends with the text.
    fn quoted(&mut self, close: u8, doubles: bool) -> &'a [u8] {
        let start = self.at + 1;
        let mut end = start;
        while end < self.sql.len() {
            if self.sql[end] == close {
                if doubles && self.sql.get(end + 1) == Some(&close) {
                    end += 2;
                    continue;
                }
                self.at = end + 1;
                return &self.sql[start..end];
            }
            end += 1;
        }
        self.at = self.sql.len();
        &self.sql[start..]
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            let b = self.peek(0)?;
            match (b, self.peek(1)) {
                (b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r', _) => self.at += 1,
                (b'-', Some(b'-')) => self.skip_while(|b| b != b'\n'),
                (b'/', Some(b'*')) => {
                    self.at += 2;
                    while self.at < self.sql.len() && !self.sql[self.at..].starts_with(b"*/") {
                        self.at += 1;
                    }
                    self.at = (self.at + 2).min(self.sql.len());
                }
                (b'\'', _) => {
                    self.quoted(b'\'', true);
                }
                (b'"', _) => return Some(Token::Identifier(self.quoted(b'"', true))),
                (b'`', _) => return Some(Token::Identifier(self.quoted(b'`', true))),
                (b'[', _) => return Some(Token::Identifier(self.quoted(b']', false))),
                // Parameters (`?1`, `:name`, `@name`, `$name`, `#name`) name no function.
                (b'?' | b':' | b'@' | b'$' | b'#', _) => {
                    self.at += 1;
                    self.skip_while(is_identifier_byte);
                }
                // A number, with any letters run into it (SQLite rejects those as one token).
                (b'0'..=b'9', _) | (b'.', Some(b'0'..=b'9')) => {
                    self.skip_while(|b| is_identifier_byte(b) || b == b'.');
                }
                _ if is_identifier_byte(b) => {
                    let start = self.at;
                    self.skip_while(is_identifier_byte);
                    return Some(Token::Identifier(&self.sql[start..self.at]));
                }
                _ => {
                    self.at += 1;
                    return Some(Token::Other(b));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(sql: &str) -> bool {
        calls_function(sql.as_bytes(), "cloud_sync_test")
    }

    #[test]
    fn a_call_is_the_whole_name_then_a_parenthesis() {
        assert!(calls("select cloud_sync_test('db')"));
        assert!(calls("SELECT CLOUD_SYNC_TEST ('db')"));
        assert!(calls(
            "select x from t where cloud_sync_test/* c */\n(x) > 0"
        ));
        assert!(calls("select cloud_sync_test -- comment\n ('db')"));
        assert!(calls("select 1,cloud_sync_test(?)"));
        assert!(!calls("select cloud_sync_test_x('db')"));
        assert!(!calls("select x_cloud_sync_test('db')"));
        assert!(!calls("select cloud_sync_testing('db')"));
        assert!(!calls("select cloud_sync_test$('db')"));
        assert!(!calls("select cloud_sync_tes('db')"));
        assert!(!calls("select cloud_sync_test"));
        assert!(!calls("select cloud_sync_test from t"));
        assert!(!calls(""));
    }

    #[test]
    fn quoted_names_are_names() {
        assert!(calls("select \"cloud_sync_test\"('db')"));
        assert!(calls("select [Cloud_Sync_Test]('db')"));
        assert!(calls("select `cloud_sync_test`('db')"));
        assert!(!calls("select \"cloud_sync_test \"('db')"));
        assert!(!calls("select \"cloud_sync\"\"_test\"('db')"));
    }

    #[test]
    fn literals_comments_numbers_and_parameters_call_nothing() {
        assert!(!calls("insert into t values ('cloud_sync_test(1)')"));
        assert!(!calls("insert into t values ('it''s cloud_sync_test(1)')"));
        assert!(!calls("select 1 -- cloud_sync_test(1)"));
        assert!(!calls("select 1 /* cloud_sync_test(1) */"));
        assert!(!calls("select :cloud_sync_test(1)"));
        assert!(!calls("select $cloud_sync_test(1)"));
        assert!(!calls("select @cloud_sync_test(1)"));
        assert!(!calls("select 1cloud_sync_test(1)"));
        assert!(!calls("select x'cloud_sync_test'(1)"));
        // Unclosed literals and comments run to the end of the text.
        assert!(!calls("select 'cloud_sync_test(1)"));
        assert!(!calls("select /* cloud_sync_test(1)"));
        assert!(!calls("select \"cloud_sync_test(1)"));
    }

    #[test]
    fn schema_expressions_are_read_like_statements() {
        assert!(calls(
            "CREATE TABLE notes(body text check (cloud_sync_test('postgresql://h/' || body) \
             is not null))"
        ));
        assert!(calls("CREATE INDEX i ON t(cloud_sync_test(x))"));
        assert!(!calls(
            "CREATE TABLE notes(body text check (length(body) > 0))"
        ));
        assert!(!calls("CREATE TABLE cloud_sync_test_log(x)"));
    }

    #[test]
    fn tokens_keep_quoted_contents_and_single_bytes() {
        let tokens: Vec<Token> = Tokens {
            sql: b"a.\"b c\"[d]`e` 'f' 1.5e3 ?2 (",
            at: 0,
        }
        .collect();
        assert_eq!(
            tokens,
            vec![
                Token::Identifier(b"a"),
                Token::Other(b'.'),
                Token::Identifier(b"b c"),
                Token::Identifier(b"d"),
                Token::Identifier(b"e"),
                Token::Other(b'('),
            ]
        );
    }
}
