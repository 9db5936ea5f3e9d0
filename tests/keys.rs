//! Keys as real schemas have them, against the real PostgreSQL with the built extension: NULL
//! in a primary key that is not an INTEGER PRIMARY KEY, keyless tables, tables exported with
//! `use_rowid` coming back with their rowids, and problems that name their column.

mod common;

use common::jobs::{dry_run, exported, import, quoted};
use common::local::{error_of, rows_of, with_fresh_schema, with_saved_connection};
use common::remote::{as_test_user, fresh_schema};
use common::summary::{counts, counts_of, listed_problems, problems_total_of};
use rusqlite::Connection;
use serde_json::json;

/// A table's shape as `pragma table_info` gives it: name, type, notnull, default, pk.
fn shape(conn: &Connection, table: &str) -> Vec<(String, String, i64, Option<String>, i64)> {
    rows_of(
        conn,
        &format!(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')"
        ),
    )
}

/// Every row of `table` with its rowid and each value's storage class.
fn rows_with_rowids(conn: &Connection, table: &str) -> Vec<(i64, String, String, String)> {
    rows_of(
        conn,
        &format!(
            "SELECT rowid, typeof(msg) || ':' || quote(msg), typeof(n) || ':' || quote(n),
                    typeof(at) || ':' || quote(at)
             FROM \"{table}\" ORDER BY rowid"
        ),
    )
}

#[test]
fn a_null_key_is_a_problem_per_row_named_by_its_rowid() {
    let (_dir, conn, _pg, schema) = with_fresh_schema("null_keys", "k_null_keys");
    conn.execute_batch(
        "CREATE TABLE codes (code TEXT PRIMARY KEY, v INTEGER);
         INSERT INTO codes VALUES ('a', 1), (NULL, 2), ('c', 3), (NULL, 4);
         CREATE TABLE django (id integer auto_increment primary key, name TEXT);
         INSERT INTO django VALUES (1, 'one'), (NULL, 'none');",
    )
    .unwrap();
    let options = json!({"schema": schema});
    // The dry run succeeds, with a problem per row whose key is NULL.
    let dry = dry_run(&conn, &options);
    assert_eq!(problems_total_of(&dry), 3, "{dry}");
    let all = listed_problems(&dry).join("\n");
    for expected in [
        "\"codes\" {\"rowid\":2} \"code\" \"the key is NULL",
        "\"codes\" {\"rowid\":4} \"code\" \"the key is NULL",
        "\"django\" {\"rowid\":2} \"id\" \"the key is NULL",
    ] {
        assert!(all.contains(expected), "{expected}: {all}");
    }
    assert_eq!(
        counts_of(&dry, "codes"),
        counts!(source_rows: 4, inserts: 2, skipped: 2, problems: 2)
    );
    // The full export is refused until they are fixed.
    let refused = error_of(
        &conn,
        &format!(
            "SELECT cloud_sync_export('prod', 0, {})",
            quoted(&json!({"schema": schema, "confirm": dry["id"]}))
        ),
    );
    assert!(refused.contains("3 problems"), "{refused}");

    conn.execute_batch(
        "UPDATE codes SET code = 'b' WHERE rowid = 2; DELETE FROM codes WHERE code IS NULL;
         UPDATE django SET id = 2 WHERE id IS NULL;",
    )
    .unwrap();
    let job = exported(&conn, &options);
    assert_eq!(
        counts_of(&job, "codes"),
        counts!(source_rows: 3, inserts: 3)
    );

    // Tracked, the incremental export lists a NULL key that arrives later just the same.
    conn.query_row("SELECT cloud_sync_track('codes')", [], |_| Ok(()))
        .unwrap();
    exported(&conn, &options);
    conn.execute("INSERT INTO codes VALUES (NULL, 5)", [])
        .unwrap();
    let dry = dry_run(&conn, &options);
    assert_eq!(dry["summary"]["tables"][0]["mode"], "incremental", "{dry}");
    assert_eq!(
        listed_problems(&dry),
        [
            r#""codes" {"rowid":4} "code" "the key is NULL (SQLite allows it in a primary key that is not an INTEGER PRIMARY KEY), and a remote key cannot be: give the row a key""#
        ]
    );
}

#[test]
fn a_rowid_table_comes_back_with_its_rowids_and_its_shape() {
    let (_dir, conn, pg, schema) = with_fresh_schema("rowid_out", "k_rowid");
    conn.execute_batch(
        "CREATE TABLE log (msg TEXT, n INTEGER, at REAL);
         INSERT INTO log (rowid, msg, n, at) VALUES (3, 'a', 1, 1.5), (7, 'b', 2, NULL),
                                                    (40, NULL, NULL, 2.25);",
    )
    .unwrap();
    exported(&conn, &json!({"schema": schema, "use_rowid": ["log"]}));

    // Into an empty database: the same table, its rowids restored as rowids.
    let (_dir2, empty, _) = with_saved_connection("rowid_in", false);
    let options = json!({"schema": schema, "create_tables": true, "use_rowid": ["log"]});
    let job = import(&empty, 0, "skip", &options);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(counts_of(&job, "log"), counts!(source_rows: 3, inserts: 3));
    assert_eq!(shape(&empty, "log"), shape(&conn, "log"));
    assert_eq!(
        rows_with_rowids(&empty, "log"),
        rows_with_rowids(&conn, "log")
    );
    // The application's INSERT with the original column count works.
    empty
        .execute("INSERT INTO log VALUES ('c', 3, 0.5)", [])
        .unwrap();

    // Again: matched by rowid, nothing changes.
    let again = import(&empty, 1, "overwrite", &options);
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(
        counts_of(&again, "log"),
        counts!(source_rows: 3, unchanged: 3)
    );

    // A remote change comes back into the existing keyless table, by rowid.
    as_test_user(
        &pg,
        &schema,
        "UPDATE log SET msg = 'B' WHERE rowid = 7; INSERT INTO log VALUES (9, 'new', 5, NULL);",
    );
    let keyless = import(&conn, 1, "overwrite", &json!({"schema": schema}));
    let problems = listed_problems(&keyless).join("\n");
    assert!(
        problems.contains("\"log\" null null \"has no primary key")
            && problems.contains("use_rowid"),
        "{problems}"
    );
    let job = import(
        &conn,
        0,
        "overwrite",
        &json!({"schema": schema, "use_rowid": ["log"]}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        counts_of(&job, "log"),
        counts!(source_rows: 4, inserts: 1, updates: 1, unchanged: 2)
    );
    let msgs: Vec<(i64, Option<String>)> = rows_of(&conn, "SELECT rowid, msg FROM log");
    assert_eq!(
        msgs,
        [
            (3, Some("a".into())),
            (7, Some("B".into())),
            (9, Some("new".into())),
            (40, None)
        ]
    );
}

#[test]
fn a_remote_table_not_keyed_by_rowid_is_not_imported_as_one() {
    let (_dir, conn, pg) = with_saved_connection("rowid_wrong", false);
    let schema = fresh_schema(&pg, "k_rowid_wrong");
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE t (id bigint PRIMARY KEY, v text);",
    );
    let dry = import(
        &conn,
        1,
        "skip",
        &json!({"schema": schema, "create_tables": true, "use_rowid": ["t"]}),
    );
    let problems = listed_problems(&dry).join("\n");
    assert!(
        problems.contains("its remote primary key is (id), not a rowid column"),
        "{problems}"
    );
}

#[test]
fn every_problem_names_its_column_and_a_keyless_table_shows_its_values() {
    let (_dir, conn, pg, schema) = with_fresh_schema("columns", "k_columns");
    conn.execute_batch(
        "CREATE TABLE mixed (id INTEGER PRIMARY KEY, v);
         INSERT INTO mixed VALUES (1, 5), (2, 'five');
         CREATE TABLE notes (body TEXT, n INTEGER);
         INSERT INTO notes VALUES ('fine', 1), ('bad', 'not a number'), ('fine', 2);",
    )
    .unwrap();
    // One dry run lists the keyless table's problem and its values' problems.
    let dry = dry_run(&conn, &json!({"schema": schema}));
    let all = listed_problems(&dry).join("\n");
    for expected in [
        "\"mixed\" null \"v\" \"column v holds integer and text values",
        "\"notes\" null null \"has no primary key",
        "\"notes\" {\"rowid\":2} \"n\" \"text cannot become bigint",
    ] {
        assert!(all.contains(expected), "{expected}: {all}");
    }
    assert_eq!(problems_total_of(&dry), 3, "{dry}");
    assert_eq!(
        counts_of(&dry, "notes"),
        counts!(source_rows: 3, skipped: 3, problems: 2)
    );

    // An import's column problem names its column too.
    as_test_user(&pg, &schema, "CREATE TABLE req (id bigint PRIMARY KEY);");
    conn.execute_batch("CREATE TABLE req (id INTEGER PRIMARY KEY, must TEXT NOT NULL);")
        .unwrap();
    let dry = import(
        &conn,
        1,
        "skip",
        &json!({"schema": schema, "tables": ["req"]}),
    );
    let problems = listed_problems(&dry).join("\n");
    assert!(
        problems.contains("\"req\" null \"must\" \"local column \\\"must\\\" is NOT NULL"),
        "{problems}"
    );
}
