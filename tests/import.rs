//! Import against the real PostgreSQL (direct and through pgbouncer in transaction mode), with
//! the built extension loaded into a rusqlite host. Each test works in its own remote schema.

mod common;

use common::edge;
use common::jobs::{exported, import, quoted, run_job};
use common::local::{column_of, error_of, int_of, row_of, with_saved_connection};
use common::remote::{admin, as_test_user, fresh_schema, missing_schema};
use common::summary::{counts, counts_of, listed_problems, summary_of};
use common::Pg;
use rusqlite::Connection;
use serde_json::json;

/// A fresh remote schema `i_<name>` holding what `sql` creates there, as the test user's tables.
fn remote_schema(pg: &Pg, name: &str, sql: &str) -> String {
    let schema = fresh_schema(pg, &format!("i_{name}"));
    as_test_user(pg, &schema, sql);
    schema
}

/// A fresh database whose saved connection `prod` leads to the test server, and the remote
/// schema `i_<name>` holding what `sql` creates there (`remote_schema`).
fn with_remote_schema(name: &str, sql: &str) -> (common::tempdir::Dir, Connection, Pg, String) {
    let (dir, conn, pg) = with_saved_connection(name, false);
    let schema = remote_schema(&pg, name, sql);
    (dir, conn, pg, schema)
}

/// Every row of `table` as text, storage class included, to compare whole tables.
fn dump(conn: &Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
        .unwrap();
    let columns = stmt.column_count();
    let rows = stmt
        .query_map([], |row| {
            Ok((0..columns)
                .map(|i| {
                    let v: rusqlite::types::Value = row.get(i).unwrap();
                    format!("{v:?}")
                })
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

const STRATEGY_REMOTE: &str = "
    CREATE TABLE t (id bigint PRIMARY KEY, v text, n bigint);
    INSERT INTO t VALUES (1, 'R1', 10), (2, 'same', 2), (3, 'R3', 30), (4, NULL, 40),
                         (5, 'R5', 5), (7, NULL, 7), (8, NULL, 8);";
const STRATEGY_LOCAL: &str = "
    CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER);
    INSERT INTO t VALUES (2, 'same', 2), (3, 'L3', 3), (4, 'L4', 4), (5, NULL, 5),
                         (6, 'local only', 6), (7, NULL, 7), (8, 'L8', 8);";

#[test]
fn each_strategy_on_new_identical_changed_and_null_rows() {
    let cases = [
        (
            "skip",
            counts!(source_rows: 7, inserts: 1, unchanged: 2, skipped: 4),
            [
                "1|R1|10",
                "2|same|2",
                "3|L3|3",
                "4|L4|4",
                "5|NULL|5",
                "6|local only|6",
                "7|NULL|7",
                "8|L8|8",
            ],
        ),
        (
            "overwrite",
            counts!(source_rows: 7, inserts: 1, updates: 4, unchanged: 2),
            [
                "1|R1|10",
                "2|same|2",
                "3|R3|30",
                "4|NULL|40",
                "5|R5|5",
                "6|local only|6",
                "7|NULL|7",
                "8|NULL|8",
            ],
        ),
        (
            "merge",
            counts!(source_rows: 7, inserts: 1, updates: 3, unchanged: 3),
            [
                "1|R1|10",
                "2|same|2",
                "3|R3|30",
                "4|L4|40",
                "5|R5|5",
                "6|local only|6",
                "7|NULL|7",
                "8|L8|8",
            ],
        ),
    ];
    for (strategy, counts, rows) in cases {
        let (_dir, conn, _pg, schema) =
            with_remote_schema(&format!("strategy_{strategy}"), STRATEGY_REMOTE);
        conn.execute_batch(STRATEGY_LOCAL).unwrap();
        let before = dump(&conn, "t");
        let options = json!({"schema": schema});

        let dry = import(&conn, 1, strategy, &options);
        assert_eq!(dry["status"], "succeeded", "{strategy}: {dry}");
        assert_eq!(
            dump(&conn, "t"),
            before,
            "{strategy}: the dry run changed local rows"
        );
        let real = import(&conn, 0, strategy, &options);
        assert_eq!(real["status"], "succeeded", "{strategy}: {real}");
        assert_eq!(
            counts_of(&dry, "t"),
            counts_of(&real, "t"),
            "{strategy}: dry run and import differ"
        );
        assert_eq!(counts_of(&real, "t"), counts, "{strategy}: {real}");
        let got: Vec<String> = column_of(
            &conn,
            "SELECT id || '|' || coalesce(v, 'NULL') || '|' || n FROM t ORDER BY id",
        );
        assert_eq!(got, rows, "{strategy}");
    }
}

#[test]
fn export_edit_remotely_import_gives_back_every_value_and_storage_class() {
    let (_dir, conn, pg, schema) = with_remote_schema("roundtrip", "");
    let create = "CREATE TABLE edge (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB,
                                     n NUMERIC, u, flag BOOLEAN, at DATETIME)";
    conn.execute_batch(create).unwrap();
    for k in 0..edge::REALS.len() {
        let (id, i, r, t, b, n) = edge::row(k);
        conn.execute(
            "INSERT INTO edge VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3, ?7, ?8)",
            rusqlite::params![
                id,
                i,
                r,
                t,
                b,
                n,
                (k % 2) as i64,
                format!("2026-11-2{k} 10:00:0{k}"),
            ],
        )
        .unwrap();
    }
    let options = json!({"schema": schema});
    exported(&conn, &options);
    let original = dump(&conn, "edge");

    // Into an empty database with the same schema: identical values and storage classes.
    let (_dir2, fresh, _) = with_saved_connection("roundtrip-empty", false);
    fresh.execute_batch(create).unwrap();
    let imported = import(&fresh, 0, "skip", &options);
    assert_eq!(imported["status"], "succeeded", "{imported}");
    assert_eq!(dump(&fresh, "edge"), original);
    let untyped: Vec<f64> = column_of(&fresh, "SELECT u FROM edge ORDER BY id");
    assert!(
        untyped[1].is_sign_negative(),
        "-0.0 lost its sign in the untyped column"
    );

    // Edited remotely, merged back: only the edited row changes, NULLs keep local values.
    admin(&pg)
        .batch_execute(&format!(
            "UPDATE {schema}.edge SET t = 'edited remotely', i = NULL WHERE id = 3"
        ))
        .unwrap();
    let merged = import(&conn, 0, "merge", &options);
    assert_eq!(
        counts_of(&merged, "edge"),
        counts!(source_rows: 8, updates: 1, unchanged: 7),
        "{merged}"
    );
    let (t, i): (String, i64) = row_of(&conn, "SELECT t, i FROM edge WHERE id = 3");
    assert_eq!((t.as_str(), i), ("edited remotely", 0));
}

#[test]
fn remote_types_without_a_sqlite_form_arrive_as_canonical_text() {
    let (_dir, conn, pg, schema) = with_remote_schema("canonical",
        "CREATE TABLE rich (id integer PRIMARY KEY, at timestamptz, u uuid, doc jsonb,
                            big numeric(30,10), span interval, tags text[], f4 real, ok boolean);
         INSERT INTO rich VALUES (1, '2024-05-06 09:08:09.5+02', '123E4567-E89B-12D3-A456-426614174000',
                                  '{\"b\": 1, \"a\": [true, null]}', 12345678901234567890.1234567890,
                                  '1 day 2 hours', '{x,\"y z\"}', 0.1, true);
         CREATE TABLE precise (id integer PRIMARY KEY, amount numeric);
         INSERT INTO precise VALUES (1, 0.5), (2, 1234567890.123456789);",
    );
    let preview = import(&conn, 1, "skip", &json!({"schema": schema}));
    assert_eq!(
        summary_of(&preview)["remote_only_tables"],
        json!(["precise", "rich"]),
        "{preview}"
    );
    // A numeric with more digits than a REAL keeps has no exact NUMERIC form: each is a problem
    // naming the option that imports it as text.
    let mut options = json!({"schema": schema, "create_tables": true});
    let dry = import(&conn, 1, "skip", &options);
    let problems = listed_problems(&dry).join("\n");
    for expected in [
        r#""precise" {"id":2} "amount" "numeric 1234567890.123456789 has more digits than a REAL keeps"#,
        r#"with the column_types option, {\"rich.big\":\"TEXT\"}"#,
    ] {
        assert!(problems.contains(expected), "{expected}: {problems}");
    }
    options["column_types"] = json!({"rich.big": "TEXT", "precise.amount": "TEXT"});
    let job = import(&conn, 0, "skip", &options);
    assert_eq!(job["status"], "succeeded", "{job}");
    let row: (String, String, String, String, String, String, String, String) = row_of(
        &conn,
        "SELECT at, u, doc, big, span, tags, typeof(f4) || ':' || f4, typeof(ok) || ':' || ok FROM rich",
    );
    assert_eq!(
        [row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7],
        [
            "2024-05-06 07:08:09.5+00",
            "123e4567-e89b-12d3-a456-426614174000",
            r#"{"a": [true, null], "b": 1}"#,
            "12345678901234567890.1234567890",
            "P1DT2H",
            r#"{x,"y z"}"#,
            "real:0.100000001490116",
            "integer:1",
        ]
    );
    let declared: Vec<String> = column_of(
        &conn,
        "SELECT type FROM pragma_table_info('rich') ORDER BY cid",
    );
    assert_eq!(
        declared,
        ["INTEGER", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "REAL", "BOOLEAN"]
    );

    // A numeric with more digits than a REAL column keeps is a problem, not a rounding.
    conn.execute_batch(
        "DELETE FROM precise; CREATE TABLE precise_real (id INTEGER PRIMARY KEY, amount REAL);",
    )
    .unwrap();
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE precise_real AS SELECT * FROM precise;
         ALTER TABLE precise_real ADD PRIMARY KEY (id);",
    );
    let dry = import(
        &conn,
        1,
        "skip",
        &json!({"schema": schema, "tables": ["precise_real"]}),
    );
    let problems = listed_problems(&dry).join("\n");
    assert!(
        dry["status"] == "succeeded"
            && problems.contains("more digits than a REAL keeps")
            && problems.contains("declare the local column TEXT")
            && problems.contains("{\"id\":2}"),
        "{problems}"
    );
    assert_eq!(
        counts_of(&dry, "precise_real"),
        counts!(source_rows: 2, inserts: 1, skipped: 1, problems: 1),
        "{dry}"
    );
}

#[test]
fn an_error_on_the_last_table_leaves_the_first_untouched() {
    let (_dir, conn, pg, schema) = with_remote_schema("atomic",
        "CREATE TABLE a (id bigint PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'new'), (2, 'also new');
         CREATE TABLE b (id bigint PRIMARY KEY, qty bigint); INSERT INTO b VALUES (1, 5), (2, -1);",
    );
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'old');
         CREATE TABLE b (id INTEGER PRIMARY KEY, qty INTEGER CHECK (qty >= 0));
         CREATE TABLE audit (what TEXT);
         CREATE TRIGGER a_audit AFTER UPDATE ON a BEGIN INSERT INTO audit VALUES ('a ' || new.id); END;",
    )
    .unwrap();
    let options = json!({"schema": schema});
    let dry = import(&conn, 1, "overwrite", &options);
    let problems = listed_problems(&dry).join("\n");
    assert!(
        problems.contains("CHECK constraint failed") && problems.contains("{\"id\":2}"),
        "{problems}"
    );
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM audit"),
        0,
        "the dry run's trigger writes were not rolled back"
    );

    let job = import(&conn, 0, "overwrite", &options);
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("table b, key {\"id\":2}: CHECK constraint failed"),
        "{error}"
    );
    assert_eq!(dump(&conn, "a"), ["Integer(1)|Text(\"old\")"]);
    assert_eq!(int_of(&conn, "SELECT count(*) FROM audit"), 0);

    // Fixed remotely, the import lands whole, and the local trigger fired for the update.
    admin(&pg)
        .batch_execute(&format!("UPDATE {schema}.b SET qty = 0 WHERE id = 2"))
        .unwrap();
    let job = import(&conn, 0, "overwrite", &options);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        column_of::<String>(&conn, "SELECT what FROM audit"),
        ["a 1"]
    );
}

#[test]
fn constraints_of_the_local_schema_are_respected() {
    let (_dir, conn, _pg, schema) = with_remote_schema(
        "constraints",
        "CREATE TABLE parent (id bigint PRIMARY KEY);
         INSERT INTO parent VALUES (1);
         CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint, label text);
         INSERT INTO child VALUES (1, 1, 'ok'), (2, 99, 'orphan'), (3, 1, NULL);",
    );
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id),
                             label TEXT NOT NULL DEFAULT 'none');",
    )
    .unwrap();
    let dry = import(&conn, 1, "skip", &json!({"schema": schema}));
    let problems = listed_problems(&dry);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("{\"id\":2}") && problems[0].contains("FOREIGN KEY constraint failed"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("{\"id\":3}")
            && problems[1].contains("NOT NULL constraint failed: child.label"),
        "{problems:?}"
    );
    assert_eq!(int_of(&conn, "SELECT count(*) FROM child"), 0);
}

#[test]
fn mismatched_keys_and_missing_required_columns_are_refused_before_any_change() {
    let (_dir, conn, _pg, schema) = with_remote_schema(
        "mismatch",
        "CREATE TABLE k (id bigint, code text PRIMARY KEY); INSERT INTO k VALUES (1, 'a');
         CREATE TABLE r (id bigint PRIMARY KEY); INSERT INTO r VALUES (1);",
    );
    conn.execute_batch(
        "CREATE TABLE k (id INTEGER PRIMARY KEY, code TEXT);
         CREATE TABLE r (id INTEGER PRIMARY KEY, required TEXT NOT NULL);",
    )
    .unwrap();
    let job = import(&conn, 0, "overwrite", &json!({"schema": schema}));
    assert_eq!(job["status"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("key differs from the local key (id)"),
        "{error}"
    );
    assert!(
        error.contains("\"required\" is NOT NULL without a default"),
        "{error}"
    );
    assert_eq!(dump(&conn, "k").len() + dump(&conn, "r").len(), 0);
}

#[test]
fn a_locked_database_is_refused_after_the_busy_timeout() {
    let (dir, conn, _pg, schema) = with_remote_schema(
        "busy",
        "CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); PRAGMA busy_timeout = 200;")
        .unwrap();
    let queue = format!(
        "SELECT cloud_sync_import('prod', 0, 'skip', {})",
        quoted(&json!({"schema": schema}))
    );
    let job = int_of(&conn, &queue);
    let other = Connection::open(dir.db()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let refused = error_of(&conn, &format!("SELECT cloud_sync_run({job})"));
    assert!(
        refused.contains("locked by another connection"),
        "{refused}"
    );
    let queueing = error_of(&conn, &queue);
    assert!(
        queueing.contains("locked by another connection"),
        "{queueing}"
    );
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(dump(&conn, "t").len(), 0);
    let outcome = run_job(&conn, &job.to_string());
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    assert_eq!(dump(&conn, "t").len(), 1);
}

#[test]
fn imports_work_through_pgbouncer_in_transaction_mode() {
    let (_dir, conn, pg) = with_saved_connection("pooled_import", true);
    let schema = remote_schema(
        &pg,
        "pooled",
        "CREATE TABLE t (id bigint PRIMARY KEY, v text);
         INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 2000) g;",
    );
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    for round in 0..3 {
        let job = import(&conn, 0, "overwrite", &json!({"schema": schema}));
        assert_eq!(job["status"], "succeeded", "round {round}: {job}");
    }
    assert_eq!(int_of(&conn, "SELECT count(*) FROM t"), 2000);
}

#[test]
fn a_connection_lost_mid_stream_changes_nothing_locally() {
    let (_dir, conn, pg, schema) = with_remote_schema(
        "lost",
        "CREATE TABLE a (id bigint PRIMARY KEY); INSERT INTO a VALUES (1);
         CREATE TABLE b (id bigint PRIMARY KEY, v text);
         INSERT INTO b SELECT g, repeat('x', 100) FROM generate_series(1, 400000) g;",
    );
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT);",
    )
    .unwrap();
    // Another session cuts the import's connection while b's rows are streaming; only this
    // test's (its schema in the query), not another test's table b.
    let streaming_b = format!("COPY (SELECT%\"{schema}\".\"b\"%");
    let killer = {
        let mut cutter = admin(&pg);
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                let killed: i64 = cutter
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE application_name = 'cloud_sync' AND query LIKE $1",
                        &[&streaming_b],
                    )
                    .unwrap()
                    .get(0);
                if killed > 0 {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            false
        })
    };
    let job = import(&conn, 0, "skip", &json!({"schema": schema}));
    assert!(
        killer.join().unwrap(),
        "the import finished before its connection could be cut"
    );
    // All or nothing. Usually the cut lands mid-stream: the job is queued for a retry (a lost
    // connection is transient) and nothing landed. If it lands after the last row was read, the
    // import has its data and succeeds whole.
    let landed = dump(&conn, "a").len() + dump(&conn, "b").len();
    if job["status"] == "succeeded" {
        assert_eq!(landed, 400_001, "{job}");
        return;
    }
    assert_eq!(job["status"], "queued", "{job}");
    assert!(job["error"].as_str().unwrap().contains("table b"), "{job}");
    assert_eq!(landed, 0, "a failed import left rows");
    let again = run_job(&conn, &job["id"].to_string());
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(dump(&conn, "b").len(), 400_000);
}

/// The local tables cloud_sync can see, in name order.
fn local_tables(conn: &Connection) -> Vec<String> {
    column_of(
        conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'cloud_sync%'
         AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
}

#[test]
fn exclude_keeps_a_remote_only_table_out_and_refuses_a_name_that_is_nowhere() {
    let (_dir, conn, _pg, schema) = with_remote_schema(
        "exclude",
        "CREATE TABLE kept (id integer PRIMARY KEY, v text); INSERT INTO kept VALUES (1, 'k');
         CREATE TABLE audit (v text); INSERT INTO audit VALUES ('secret');",
    );
    // The keyless remote-only table blocks the whole import...
    let blocked = import(
        &conn,
        0,
        "skip",
        &json!({"schema": schema, "create_tables": true}),
    );
    assert_eq!(blocked["status"], "failed", "{blocked}");
    assert!(
        blocked["error"]
            .as_str()
            .unwrap()
            .contains("audit: the remote table has no primary key"),
        "{blocked}"
    );
    // ...unless exclude names it.
    let options = json!({"schema": schema, "create_tables": true, "exclude": ["audit"]});
    let job = import(&conn, 0, "skip", &options);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(local_tables(&conn), ["kept"]);
    assert_eq!(column_of::<String>(&conn, "SELECT v FROM kept"), ["k"]);

    // A name that is neither a local nor a remote table is a typo: refused, nothing changes.
    let typo = import(
        &conn,
        0,
        "skip",
        &json!({"schema": schema, "create_tables": true, "exclude": ["audti"]}),
    );
    assert_eq!(typo["status"], "failed", "{typo}");
    assert_eq!(
        typo["error"],
        "unknown table \"audti\" in option exclude: it is neither a local table nor a table of \
         remote schema \"i_exclude\""
    );
    assert_eq!(local_tables(&conn), ["kept"]);
}

#[test]
fn an_import_from_a_missing_schema_is_refused() {
    let (_dir, conn, pg) = with_saved_connection("import_no_schema", false);
    let schema = missing_schema(&pg, "i_Absent");
    conn.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);")
        .unwrap();
    let job = import(&conn, 1, "skip", &json!({"schema": schema}));
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["error"],
        "the remote schema i_Absent does not exist: check the schema option (schema names are \
         case-sensitive)"
    );
}
