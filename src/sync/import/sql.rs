//! The text of every statement an import runs: on the remote, the snapshot's session settings,
//! the row counts and the binary COPY of each table's rows; locally, the CREATE TABLE of a table
//! that only the remote has, the check for an empty table, and the lookup, INSERT and UPDATE
//! that write one row. Pure functions of names and columns, so the exact text is tested here and
//! the code that runs a statement only runs its string.
//!
//! `remote` is always the quoted `"schema"."table"`; a local `table` is its bare name. The
//! statements that write a row take its values as numbered parameters `?1..?n`, in column order.

use crate::remote::catalog::RemoteColumn;
use crate::sql_text::{quote, sql_literal};
use crate::sync::options::Strategy;

/// A column as the statements name it.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub name: &'a str,
    /// Selected as `::text`.
    pub cast: bool,
    pub is_key: bool,
}

/// Canonical text for the types read as text: UTC, ISO dates, ISO 8601 intervals, and floats
/// with every digit.
pub const SESSION_SETTINGS: [&str; 4] = [
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'iso_8601'",
    "SET LOCAL extra_float_digits = 3",
];

/// Whether the remote schema `schema` exists.
pub fn schema_exists(schema: &str) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = {})",
        sql_literal(schema)
    )
}

pub fn count_rows(remote: &str) -> String {
    format!("SELECT count(*) FROM {remote}")
}

/// The remote rows of the planned columns, in column order, as binary COPY.
pub fn copy_out(remote: &str, columns: &[Column]) -> String {
    format!(
        "COPY ({}) TO STDOUT (FORMAT binary)",
        select(remote, columns)
    )
}

/// The remote rows of the planned columns, in column order.
pub fn select(remote: &str, columns: &[Column]) -> String {
    let select = columns
        .iter()
        .map(|c| {
            if c.cast {
                format!("{}::text", quote(c.name))
            } else {
                quote(c.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {select} FROM {remote}")
}

/// Local: a table for the remote one, each column of its declared type (`declared`, in column
/// order) followed by its `clauses` (NOT NULL, DEFAULT), keyed by `key` (the remote primary key,
/// in its order; none for a table whose rows the remote keys by rowid), then the table
/// `constraints` (UNIQUE, FOREIGN KEY).
pub fn create_table(
    table: &str,
    columns: &[&RemoteColumn],
    declared: &[String],
    clauses: &[String],
    key: &[String],
    constraints: &[String],
) -> String {
    let mut definitions: Vec<String> = columns
        .iter()
        .zip(declared)
        .zip(clauses)
        .map(|((r, decl_type), clause)| format!("{} {decl_type}{clause}", quote(&r.name)))
        .collect();
    if !key.is_empty() {
        definitions.push(format!(
            "PRIMARY KEY ({})",
            key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
        ));
    }
    definitions.extend(constraints.iter().cloned());
    format!("CREATE TABLE {} ({})", quote(table), definitions.join(", "))
}

pub fn is_empty(table: &str) -> String {
    format!("SELECT NOT EXISTS (SELECT 1 FROM {})", quote(table))
}

/// The statements that write one row of a local table.
pub struct Statements {
    /// One row for the local row with the same key, if any: 1 when it already holds what the
    /// update would write.
    pub lookup: String,
    pub insert: String,
    /// Empty when every column is a key column: there is nothing to update.
    pub update: String,
}

pub fn statements(table: &str, columns: &[Column], strategy: Strategy) -> Statements {
    let table = quote(table);
    let param = |i: usize| format!("?{}", i + 1);
    type Indexed<'c, 'a> = Vec<(usize, &'c Column<'a>)>;
    let (key, non_key): (Indexed, Indexed) =
        columns.iter().enumerate().partition(|(_, c)| c.is_key);
    let key_match = key
        .iter()
        .map(|(i, c)| format!("{} = {}", quote(c.name), param(*i)))
        .collect::<Vec<_>>()
        .join(" AND ");
    // The value a column would have after the update: the remote one, or for merge the remote
    // one unless it is NULL.
    let incoming = |i: usize, c: &Column| match strategy {
        Strategy::Merge => format!("coalesce({}, {})", param(i), quote(c.name)),
        _ => param(i),
    };
    // `IS` compares as SQLite stores: the column's affinity applies to the bound value.
    let identical = if non_key.is_empty() {
        "1".to_string()
    } else {
        non_key
            .iter()
            .map(|(i, c)| format!("{} IS {}", quote(c.name), incoming(*i, c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let update = if non_key.is_empty() {
        String::new()
    } else {
        format!(
            "UPDATE {table} SET {} WHERE {key_match}",
            non_key
                .iter()
                .map(|(i, c)| format!("{} = {}", quote(c.name), incoming(*i, c)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Statements {
        lookup: format!("SELECT {identical} FROM {table} WHERE {key_match}"),
        insert: format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns
                .iter()
                .map(|c| quote(c.name))
                .collect::<Vec<_>>()
                .join(", "),
            (0..columns.len()).map(param).collect::<Vec<_>>().join(", ")
        ),
        update,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping;

    const REMOTE: &str = r#""public"."items""#;

    fn column(name: &str, cast: bool, is_key: bool) -> Column<'_> {
        Column { name, cast, is_key }
    }

    fn remote_column(name: &str, spelling: &str, not_null: bool) -> RemoteColumn {
        RemoteColumn {
            name: name.into(),
            spelling: spelling.into(),
            not_null,
            has_default: false,
        }
    }

    #[test]
    fn the_remote_is_read_in_canonical_text() {
        assert_eq!(
            SESSION_SETTINGS.join("; "),
            "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; \
             SET LOCAL IntervalStyle = 'iso_8601'; SET LOCAL extra_float_digits = 3"
        );
        assert_eq!(
            schema_exists("it's"),
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'it''s')"
        );
        assert_eq!(
            count_rows(REMOTE),
            r#"SELECT count(*) FROM "public"."items""#
        );
        let columns = [
            column("id", false, true),
            column("price", true, false),
            column(r#"odd "name""#, false, false),
        ];
        assert_eq!(
            copy_out(REMOTE, &columns),
            r#"COPY (SELECT "id", "price"::text, "odd ""name""" FROM "public"."items") TO STDOUT (FORMAT binary)"#
        );
    }

    #[test]
    fn a_remote_only_table_is_created_with_its_key_in_key_order() {
        let columns = [
            remote_column("day", "date", true),
            remote_column("n", "integer", true),
            remote_column("price", "numeric(10,2)", false),
            remote_column("v", "text", false),
        ];
        let declared: Vec<String> = columns
            .iter()
            .map(|c| mapping::sqlite_type_for(&c.spelling))
            .collect();
        let columns: Vec<&RemoteColumn> = columns.iter().collect();
        let clauses: Vec<String> = [" NOT NULL", " NOT NULL DEFAULT 0", "", ""]
            .map(String::from)
            .to_vec();
        assert_eq!(
            create_table(
                "items",
                &columns,
                &declared,
                &clauses,
                &["n".into(), "day".into()],
                &[r#"CONSTRAINT "u" UNIQUE ("v")"#.into()]
            ),
            r#"CREATE TABLE "items" ("day" DATE NOT NULL, "n" INTEGER NOT NULL DEFAULT 0, "price" NUMERIC(10,2), "v" TEXT, PRIMARY KEY ("n", "day"), CONSTRAINT "u" UNIQUE ("v"))"#
        );
        // A table keyed by its rowid declares no key.
        assert_eq!(
            create_table(
                "log",
                &columns[2..],
                &declared[2..],
                &clauses[2..],
                &[],
                &[]
            ),
            r#"CREATE TABLE "log" ("price" NUMERIC(10,2), "v" TEXT)"#
        );
        assert_eq!(
            is_empty(r#"odd "name""#),
            r#"SELECT NOT EXISTS (SELECT 1 FROM "odd ""name""")"#
        );
    }

    #[test]
    fn statements_per_strategy() {
        let columns = [column("id", false, true), column("v", false, false)];
        let merge = statements("t", &columns, Strategy::Merge);
        assert_eq!(
            merge.lookup,
            "SELECT \"v\" IS coalesce(?2, \"v\") FROM \"t\" WHERE \"id\" = ?1"
        );
        assert_eq!(
            merge.update,
            "UPDATE \"t\" SET \"v\" = coalesce(?2, \"v\") WHERE \"id\" = ?1"
        );
        let overwrite = statements("t", &columns, Strategy::Overwrite);
        assert_eq!(
            overwrite.lookup,
            "SELECT \"v\" IS ?2 FROM \"t\" WHERE \"id\" = ?1"
        );
        assert_eq!(
            overwrite.update,
            "UPDATE \"t\" SET \"v\" = ?2 WHERE \"id\" = ?1"
        );
        assert_eq!(
            overwrite.insert,
            "INSERT INTO \"t\" (\"id\", \"v\") VALUES (?1, ?2)"
        );
        // Skip never updates, but finds identical rows as overwrite does.
        let skip = statements("t", &columns, Strategy::Skip);
        assert_eq!(skip.lookup, overwrite.lookup);
    }

    #[test]
    fn keys_match_wherever_they_stand_and_only_keys_means_no_update() {
        let columns = [
            column("v", false, false),
            column("a", false, true),
            column("b", false, true),
        ];
        let overwrite = statements("t", &columns, Strategy::Overwrite);
        assert_eq!(
            overwrite.lookup,
            r#"SELECT "v" IS ?1 FROM "t" WHERE "a" = ?2 AND "b" = ?3"#
        );
        assert_eq!(
            overwrite.update,
            r#"UPDATE "t" SET "v" = ?1 WHERE "a" = ?2 AND "b" = ?3"#
        );
        let keys_only = statements("t", &columns[1..], Strategy::Merge);
        assert_eq!(
            keys_only.lookup,
            r#"SELECT 1 FROM "t" WHERE "a" = ?1 AND "b" = ?2"#
        );
        assert_eq!(keys_only.update, "");
        assert_eq!(
            keys_only.insert,
            r#"INSERT INTO "t" ("a", "b") VALUES (?1, ?2)"#
        );
    }
}
