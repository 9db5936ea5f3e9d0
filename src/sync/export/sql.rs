//! The text of every statement an export runs: on the remote, the table and staging DDL, the
//! COPY statements, the comparison, the upsert, the deletes, the lock and the sequences; locally,
//! the reads that feed the COPY. Pure functions of names and columns, so the exact text is tested
//! here and the code that runs a statement only runs its string.
//!
//! `remote` is always the quoted `"schema"."table"`. `stage` names one table's staging table,
//! and through it that table's diff table and table of deleted keys. In statements that compare,
//! `t` is the remote table and `s` the staged rows.
//!
//! A statement that writes the remote table and reads a temporary table reads it through a CTE
//! (`WITH s AS (SELECT ... FROM <temp>)`): Citus cannot route a write joined with a temporary
//! table into a reference or distributed table, but it runs a CTE of a write first and ships its
//! rows to the shards; plain Postgres inlines the CTE into the same plan as the direct join.
//! Not `MATERIALIZED`: Citus 13 refuses that form for reference tables.

use crate::mapping::PgType;
use crate::sql_text::{quote, sql_literal};

/// A remote column as the statements name and type it.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub name: &'a str,
    pub ty: PgType,
    pub is_key: bool,
}

/// Zone-less timestamps bound for timestamptz mean UTC, whatever the server's default.
pub const SET_UTC: &str = "SET LOCAL TimeZone = 'UTC'";

/// The transaction's advisory lock on the remote database and `schema`, the database's name
/// (for the message when another sync holds it), and whether the schema exists. NULL instead of
/// the lock on a hot standby, which can take no lock and no write.
pub fn take_lock(schema: &str) -> String {
    let schema = sql_literal(schema);
    format!(
        "SELECT CASE WHEN NOT pg_is_in_recovery() THEN pg_try_advisory_xact_lock(hashtextextended('cloud_sync:' || current_database() || '.' || {schema}, 0)) END, current_database()::text, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = {schema})"
    )
}

/// Moves the sequence behind serial or identity column `column`, if it has one, up to the
/// column's largest value, never backwards; nothing when the table is empty, or when the
/// sequence starts above that value anyway. Reading `pg_sequence`, a table of the coordinator,
/// also keeps Citus from routing the whole statement (`setval` included) to the worker of a
/// single-shard table, whose copy of the sequence has another range (it starts at the worker's
/// group id << 48).
pub fn advance_sequence(remote: &str, column: &str) -> String {
    format!(
        "SELECT setval(s, GREATEST(m, COALESCE(pg_sequence_last_value(s), m)))
                     FROM (SELECT pg_get_serial_sequence({}, {})::regclass AS s, (SELECT max({}) FROM {remote})::bigint AS m) x
                     WHERE m >= (SELECT seqmin FROM pg_sequence WHERE seqrelid = s)",
        sql_literal(remote),
        sql_literal(column),
        quote(column)
    )
}

/// The staging table of the `index`th table of an export.
pub fn stage_name(index: usize) -> String {
    format!("cloud_sync_stage_{index}")
}

/// The staged rows that are new or changed, each marked `cloud_sync_is_new`.
fn diff_name(stage: &str) -> String {
    format!("{stage}_diff")
}

/// The keys of changed rows that are gone locally.
pub fn gone_name(stage: &str) -> String {
    format!("{stage}_gone")
}

/// The primary key comes later (`add_primary_key`): one index build instead of an insert per row.
/// `clause` is what follows a column's type (NOT NULL, DEFAULT).
pub fn create_table(remote: &str, columns: &[Column], clause: impl Fn(&str) -> String) -> String {
    format!(
        "CREATE TABLE {remote} ({})",
        listed(columns, |c| format!(
            "{} {}{}",
            quote(c.name),
            c.ty.sql(),
            clause(c.name)
        ))
    )
}

pub fn create_stage(stage: &str, columns: &[Column]) -> String {
    format!(
        "CREATE TEMP TABLE {stage} ({}) ON COMMIT DROP",
        listed(columns, |c| format!(
            "{} {}",
            quote(c.name),
            c.ty.stage_sql()
        ))
    )
}

/// `key`: the key columns in key order, the order of the gone keys' rows.
pub fn create_gone(stage: &str, key: &[Column]) -> String {
    create_stage(&gone_name(stage), key)
}

/// Binary COPY into `table` (the remote table, or a staging table).
pub fn copy_in(table: &str) -> String {
    format!("COPY {table} FROM STDIN (FORMAT binary)")
}

/// Fills a table created in this transaction from its staging table.
pub fn insert_staged(remote: &str, stage: &str, columns: &[Column]) -> String {
    format!(
        "INSERT INTO {remote} ({}) SELECT {} FROM {stage} s",
        listed(columns, name),
        listed(columns, staged)
    )
}

pub fn add_primary_key(remote: &str, columns: &[Column]) -> String {
    format!(
        "ALTER TABLE {remote} ADD PRIMARY KEY ({})",
        listed(key(columns), name)
    )
}

pub fn analyze(stage: &str) -> String {
    format!("ANALYZE {stage}")
}

/// `table` quoted: the remote one, or a local one (`local_count`).
pub fn count_rows(table: &str) -> String {
    format!("SELECT count(*) FROM {table}")
}

/// One join sorts every staged row: new, changed, or unchanged. Only the new and the changed
/// ones are kept, so an unchanged re-export writes nothing remote at all.
pub fn create_diff(remote: &str, stage: &str, columns: &[Column]) -> String {
    let first_key = first_key(columns);
    format!(
        "CREATE TEMP TABLE {} ON COMMIT DROP AS
                 SELECT s.*, t.{first_key} IS NULL AS cloud_sync_is_new
                 FROM {stage} s LEFT JOIN {remote} t ON {}
                 WHERE t.{first_key} IS NULL OR {}",
        diff_name(stage),
        join(columns),
        differs(columns, staged)
    )
}

/// Writes the changed rows of the diff table; `None` when every column is a key column.
pub fn update_changed(remote: &str, stage: &str, columns: &[Column]) -> Option<String> {
    let has_non_key = non_key(columns).next().is_some();
    has_non_key.then(|| {
        format!(
            "WITH s AS (SELECT * FROM {} WHERE NOT cloud_sync_is_new)
                             UPDATE {remote} AS t SET {} FROM s WHERE {}",
            diff_name(stage),
            listed(non_key(columns), |c| format!(
                "{} = {}",
                quote(c.name),
                staged(c)
            )),
            join(columns)
        )
    })
}

/// Inserts the new rows of the diff table. ON CONFLICT covers a row another writer added since
/// the comparison.
pub fn insert_new(remote: &str, stage: &str, columns: &[Column]) -> String {
    let key = listed(key(columns), name);
    let on_conflict = if non_key(columns).next().is_none() {
        format!("ON CONFLICT ({key}) DO NOTHING")
    } else {
        format!(
            "ON CONFLICT ({key}) DO UPDATE SET {} WHERE {}",
            listed(non_key(columns), |c| format!(
                "{0} = EXCLUDED.{0}",
                quote(c.name)
            )),
            differs(columns, |c| format!("EXCLUDED.{}", quote(c.name)))
        )
    };
    format!(
        "INSERT INTO {remote} AS t ({}) OVERRIDING SYSTEM VALUE
                         SELECT {} FROM {} s WHERE s.cloud_sync_is_new {on_conflict}",
        listed(columns, name),
        listed(columns, staged),
        diff_name(stage)
    )
}

/// A full export: the staging table holds every local row; the remote rows without one go.
/// Only the staged keys are read: on Citus, they are what goes to the shards.
pub fn delete_missing(remote: &str, stage: &str, columns: &[Column]) -> String {
    format!(
        "WITH s AS (SELECT {} FROM {stage})
                     DELETE FROM {remote} t WHERE NOT EXISTS (SELECT 1 FROM s WHERE {})",
        listed(key(columns), name),
        join(columns)
    )
}

/// An incremental export: the remote rows of the changed keys that are gone locally go.
pub fn delete_gone(remote: &str, stage: &str, columns: &[Column]) -> String {
    format!(
        "WITH s AS (SELECT * FROM {})
                     DELETE FROM {remote} t USING s WHERE {}",
        gone_name(stage),
        join(columns)
    )
}

/// Whether the remote database has the citus extension.
pub const HAS_CITUS: &str = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')";

/// Citus: hash-distributes the table `remote` (quoted) by `column`, colocated with the quoted
/// table `colocate_with` (or `none` / `default`) when given.
pub fn create_distributed_table(remote: &str, column: &str, colocate_with: Option<&str>) -> String {
    let colocate = colocate_with
        .map(|with| format!(", colocate_with => {}", sql_literal(with)))
        .unwrap_or_default();
    format!(
        "SELECT create_distributed_table({}, {}{colocate})",
        sql_literal(remote),
        sql_literal(column)
    )
}

/// Citus: makes the table `remote` (quoted) a reference table, copied whole to every node.
pub fn create_reference_table(remote: &str) -> String {
    format!("SELECT create_reference_table({})", sql_literal(remote))
}

/// Local: the rows of `table`, read with `select` (one expression per column).
pub fn local_rows(table: &str, select: &[&str]) -> String {
    format!("SELECT {} FROM {}", select.join(", "), quote(table))
}

/// Local: the row of `table` with the key bound as `?1..?n`, in the order of `key_order`.
pub fn local_row_by_key(table: &str, select: &[&str], key_order: &[String]) -> String {
    format!(
        "{} WHERE {}",
        local_rows(table, select),
        key_order
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} IS ?{}", quote(k), i + 1))
            .collect::<Vec<_>>()
            .join(" AND ")
    )
}

pub fn local_count(table: &str) -> String {
    count_rows(&quote(table))
}

fn key<'c, 'a>(columns: &'c [Column<'a>]) -> impl Iterator<Item = &'c Column<'a>> {
    columns.iter().filter(|c| c.is_key)
}

fn non_key<'c, 'a>(columns: &'c [Column<'a>]) -> impl Iterator<Item = &'c Column<'a>> {
    columns.iter().filter(|c| !c.is_key)
}

fn first_key(columns: &[Column]) -> String {
    quote(key(columns).next().expect("planned tables have a key").name)
}

/// `render` applied to each column, comma-separated: the column lists of the statements.
fn listed<'c, 'a: 'c>(
    columns: impl IntoIterator<Item = &'c Column<'a>>,
    render: impl Fn(&Column) -> String,
) -> String {
    columns
        .into_iter()
        .map(render)
        .collect::<Vec<_>>()
        .join(", ")
}

fn name(c: &Column) -> String {
    quote(c.name)
}

/// A staged value as the remote column's type: types staged as text are cast.
fn staged(c: &Column) -> String {
    if c.ty.staged_as_text() {
        format!("s.{}::{}", quote(c.name), c.ty.sql())
    } else {
        format!("s.{}", quote(c.name))
    }
}

/// Matches a remote row (`t`) with a staged one (`s`) by key.
fn join(columns: &[Column]) -> String {
    key(columns)
        .map(|c| format!("t.{} = {}", quote(c.name), staged(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Whether a remote row differs from `other` (the staged or the excluded values) outside its key.
fn differs(columns: &[Column], other: impl Fn(&Column) -> String) -> String {
    if non_key(columns).next().is_none() {
        return "false".to_string();
    }
    // json has no equality operator: compare its text.
    let comparable = |expr: String, c: &Column| match c.ty {
        PgType::Json => format!("{expr}::text"),
        _ => expr,
    };
    format!(
        "ROW({}) IS DISTINCT FROM ROW({})",
        listed(non_key(columns), |c| comparable(
            format!("t.{}", quote(c.name)),
            c
        )),
        listed(non_key(columns), |c| comparable(other(c), c))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMOTE: &str = r#""public"."items""#;

    fn column(name: &str, ty: PgType, is_key: bool) -> Column<'_> {
        Column { name, ty, is_key }
    }

    /// The simplest plan: a key and one value.
    fn items() -> Vec<Column<'static>> {
        vec![
            column("id", PgType::BigInt, true),
            column("name", PgType::Text, false),
        ]
    }

    #[test]
    fn a_new_table_is_created_staged_and_keyed() {
        let stage = stage_name(0);
        assert_eq!(stage, "cloud_sync_stage_0");
        assert_eq!(
            create_table(REMOTE, &items(), |_| String::new()),
            r#"CREATE TABLE "public"."items" ("id" bigint, "name" text)"#
        );
        assert_eq!(
            create_stage(&stage, &items()),
            r#"CREATE TEMP TABLE cloud_sync_stage_0 ("id" bigint, "name" text) ON COMMIT DROP"#
        );
        assert_eq!(
            copy_in(&stage),
            "COPY cloud_sync_stage_0 FROM STDIN (FORMAT binary)"
        );
        assert_eq!(
            insert_staged(REMOTE, &stage, &items()),
            r#"INSERT INTO "public"."items" ("id", "name") SELECT s."id", s."name" FROM cloud_sync_stage_0 s"#
        );
        assert_eq!(
            add_primary_key(REMOTE, &items()),
            r#"ALTER TABLE "public"."items" ADD PRIMARY KEY ("id")"#
        );
    }

    #[test]
    fn an_existing_table_is_compared_then_upserted() {
        let stage = stage_name(3);
        assert_eq!(analyze(&stage), "ANALYZE cloud_sync_stage_3");
        assert_eq!(
            count_rows(REMOTE),
            r#"SELECT count(*) FROM "public"."items""#
        );
        assert_eq!(
            create_diff(REMOTE, &stage, &items()),
            r#"CREATE TEMP TABLE cloud_sync_stage_3_diff ON COMMIT DROP AS
                 SELECT s.*, t."id" IS NULL AS cloud_sync_is_new
                 FROM cloud_sync_stage_3 s LEFT JOIN "public"."items" t ON t."id" = s."id"
                 WHERE t."id" IS NULL OR ROW(t."name") IS DISTINCT FROM ROW(s."name")"#
        );
        assert_eq!(
            update_changed(REMOTE, &stage, &items()).unwrap(),
            r#"WITH s AS (SELECT * FROM cloud_sync_stage_3_diff WHERE NOT cloud_sync_is_new)
                             UPDATE "public"."items" AS t SET "name" = s."name" FROM s WHERE t."id" = s."id""#
        );
        assert_eq!(
            insert_new(REMOTE, &stage, &items()),
            r#"INSERT INTO "public"."items" AS t ("id", "name") OVERRIDING SYSTEM VALUE
                         SELECT s."id", s."name" FROM cloud_sync_stage_3_diff s WHERE s.cloud_sync_is_new ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name" WHERE ROW(t."name") IS DISTINCT FROM ROW(EXCLUDED."name")"#
        );
        assert_eq!(
            delete_missing(REMOTE, &stage, &items()),
            r#"WITH s AS (SELECT "id" FROM cloud_sync_stage_3)
                     DELETE FROM "public"."items" t WHERE NOT EXISTS (SELECT 1 FROM s WHERE t."id" = s."id")"#
        );
    }

    #[test]
    fn text_staged_types_are_cast_and_json_compared_as_text() {
        let columns = [
            column("day", PgType::Date, true),
            column("doc", PgType::Json, false),
            column("price", PgType::Numeric(Some((10, 2))), false),
        ];
        let stage = stage_name(1);
        assert_eq!(
            create_stage(&stage, &columns),
            r#"CREATE TEMP TABLE cloud_sync_stage_1 ("day" text, "doc" json, "price" text) ON COMMIT DROP"#
        );
        assert_eq!(
            update_changed(REMOTE, &stage, &columns).unwrap(),
            r#"WITH s AS (SELECT * FROM cloud_sync_stage_1_diff WHERE NOT cloud_sync_is_new)
                             UPDATE "public"."items" AS t SET "doc" = s."doc", "price" = s."price"::numeric(10,2) FROM s WHERE t."day" = s."day"::date"#
        );
        assert_eq!(
            insert_new(REMOTE, &stage, &columns),
            r#"INSERT INTO "public"."items" AS t ("day", "doc", "price") OVERRIDING SYSTEM VALUE
                         SELECT s."day"::date, s."doc", s."price"::numeric(10,2) FROM cloud_sync_stage_1_diff s WHERE s.cloud_sync_is_new ON CONFLICT ("day") DO UPDATE SET "doc" = EXCLUDED."doc", "price" = EXCLUDED."price" WHERE ROW(t."doc"::text, t."price") IS DISTINCT FROM ROW(EXCLUDED."doc"::text, EXCLUDED."price")"#
        );
    }

    #[test]
    fn a_table_of_only_key_columns_never_differs() {
        let columns = [
            column("a", PgType::Integer, true),
            column("b", PgType::Text, true),
        ];
        let stage = stage_name(2);
        assert_eq!(update_changed(REMOTE, &stage, &columns), None);
        assert_eq!(
            insert_new(REMOTE, &stage, &columns),
            r#"INSERT INTO "public"."items" AS t ("a", "b") OVERRIDING SYSTEM VALUE
                         SELECT s."a", s."b" FROM cloud_sync_stage_2_diff s WHERE s.cloud_sync_is_new ON CONFLICT ("a", "b") DO NOTHING"#
        );
        assert_eq!(
            create_diff(REMOTE, &stage, &columns),
            r#"CREATE TEMP TABLE cloud_sync_stage_2_diff ON COMMIT DROP AS
                 SELECT s.*, t."a" IS NULL AS cloud_sync_is_new
                 FROM cloud_sync_stage_2 s LEFT JOIN "public"."items" t ON t."a" = s."a" AND t."b" = s."b"
                 WHERE t."a" IS NULL OR false"#
        );
        assert_eq!(
            delete_missing(REMOTE, &stage, &columns),
            r#"WITH s AS (SELECT "a", "b" FROM cloud_sync_stage_2)
                     DELETE FROM "public"."items" t WHERE NOT EXISTS (SELECT 1 FROM s WHERE t."a" = s."a" AND t."b" = s."b")"#
        );
    }

    #[test]
    fn gone_keys_are_copied_then_joined_in_key_order() {
        let columns = [
            column("day", PgType::Date, true),
            column("n", PgType::Integer, true),
            column("v", PgType::Text, false),
        ];
        let stage = stage_name(4);
        // Key order (the triggers') may differ from column order.
        let key = [columns[1], columns[0]];
        assert_eq!(
            create_gone(&stage, &key),
            r#"CREATE TEMP TABLE cloud_sync_stage_4_gone ("n" integer, "day" text) ON COMMIT DROP"#
        );
        assert_eq!(gone_name(&stage), "cloud_sync_stage_4_gone");
        assert_eq!(
            delete_gone(REMOTE, &stage, &columns),
            r#"WITH s AS (SELECT * FROM cloud_sync_stage_4_gone)
                     DELETE FROM "public"."items" t USING s WHERE t."day" = s."day"::date AND t."n" = s."n""#
        );
    }

    #[test]
    fn sequences_move_to_the_largest_key() {
        assert_eq!(
            advance_sequence(REMOTE, "id"),
            r#"SELECT setval(s, GREATEST(m, COALESCE(pg_sequence_last_value(s), m)))
                     FROM (SELECT pg_get_serial_sequence('"public"."items"', 'id')::regclass AS s, (SELECT max("id") FROM "public"."items")::bigint AS m) x
                     WHERE m >= (SELECT seqmin FROM pg_sequence WHERE seqrelid = s)"#
        );
    }

    #[test]
    fn the_lock_names_the_schema_as_a_literal() {
        assert_eq!(
            take_lock("it's"),
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN pg_try_advisory_xact_lock(hashtextextended('cloud_sync:' || current_database() || '.' || 'it''s', 0)) END, current_database()::text, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'it''s')"
        );
    }

    #[test]
    fn citus_tables_are_made_from_the_quoted_names() {
        assert_eq!(
            create_distributed_table(REMOTE, "id", None),
            r#"SELECT create_distributed_table('"public"."items"', 'id')"#
        );
        assert_eq!(
            create_distributed_table(r#""s"."it's""#, "o'k", Some(r#""s"."items""#)),
            r#"SELECT create_distributed_table('"s"."it''s"', 'o''k', colocate_with => '"s"."items"')"#
        );
        assert_eq!(
            create_reference_table(REMOTE),
            r#"SELECT create_reference_table('"public"."items"')"#
        );
    }

    #[test]
    fn local_reads_quote_the_table_and_bind_the_key() {
        assert_eq!(
            local_count(r#"odd "name""#),
            r#"SELECT count(*) FROM "odd ""name""""#
        );
        assert_eq!(
            local_rows("items", &["_rowid_", r#""name""#]),
            r#"SELECT _rowid_, "name" FROM "items""#
        );
        assert_eq!(
            local_row_by_key("items", &[r#""a""#, r#""b""#], &["b".into(), "a".into()]),
            r#"SELECT "a", "b" FROM "items" WHERE "b" IS ?1 AND "a" IS ?2"#
        );
    }
}
