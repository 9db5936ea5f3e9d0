//! Export against the real PostgreSQL (direct and through pgbouncer in transaction mode), with
//! the built extension loaded into a rusqlite host. Each test works in its own remote schema.

mod common;

use common::edge;
use common::jobs::{
    assert_each_refused, confirmed_export, dry_run, export, exported, log_messages, quoted,
    run_dry_run, run_job,
};
use common::local::{
    column_of, error_of, save, with_dead_connections, with_fresh_schema, with_saved_connection,
};
use common::remote::{
    admin, as_test_user, fresh_schema, missing_schema, remote_column, remote_rows,
    remote_table_exists, remote_value, schema_owner,
};
use common::summary::{
    counts, counts_of, listed_problems, problems_total_of, summary_of, table_of,
};
use serde_json::json;

/// The first problem a dry run into `schema` lists, as JSON text.
fn first_problem(conn: &rusqlite::Connection, schema: &str) -> String {
    let dry = dry_run(conn, &json!({"schema": schema}));
    listed_problems(&dry)[0].clone()
}

#[test]
fn every_storage_class_and_edge_value_lands_exactly() {
    let (_dir, conn, pg, schema) = with_fresh_schema("edges", "t_edges");
    conn.execute_batch(
        // SQLite stores a REAL-affinity -0.0 as the integer 0 (+0.0 on reading); an untyped
        // column keeps the sign, so `u` holds the same reals to prove -0.0 survives.
        "CREATE TABLE edge (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n NUMERIC, u);",
    )
    .unwrap();
    for k in 0..edge::REALS.len() {
        let (id, i, r, t, b, n) = edge::row(k);
        conn.execute(
            "INSERT INTO edge VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3)",
            rusqlite::params![id, i, r, t, b, n],
        )
        .unwrap();
    }
    let job = exported(&conn, &json!({"schema": schema}));
    assert_eq!(counts_of(&job, "edge"), counts!(source_rows: 8, inserts: 8));

    let types: Vec<(String, String)> = remote_rows(
        &pg,
        &format!(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = '{schema}' AND table_name = 'edge' ORDER BY ordinal_position"
        ),
        |r| (r.get(0), r.get(1)),
    );
    let expected: Vec<(String, String)> = [
        ("id", "bigint"),
        ("i", "bigint"),
        ("r", "double precision"),
        ("t", "text"),
        ("b", "bytea"),
        ("n", "numeric"),
        ("u", "double precision"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(types, expected);

    let local_reals: Vec<f64> = column_of(&conn, "SELECT r FROM edge ORDER BY id");
    let rows = remote_rows(
        &pg,
        &format!("SELECT id, i, r, t, b, u FROM {schema}.edge ORDER BY id"),
        |r| {
            (
                r.get::<_, Option<i64>>(1),
                r.get::<_, f64>(2),
                r.get::<_, Option<String>>(3),
                r.get::<_, Option<Vec<u8>>>(4),
                r.get::<_, f64>(5),
            )
        },
    );
    assert_eq!(rows.len(), 8);
    for (k, (i, r, t, b, u)) in rows.into_iter().enumerate() {
        let (_, local_i, _, local_t, _, _) = edge::row(k);
        assert_eq!(i, local_i, "integer {k}");
        assert_eq!(
            r.to_bits(),
            local_reals[k].to_bits(),
            "real {k}: {r} vs {}",
            local_reals[k]
        );
        assert_eq!(
            u.to_bits(),
            edge::REALS[k].to_bits(),
            "untyped {k}: {u} vs {}",
            edge::REALS[k]
        );
        assert_eq!(t.as_deref(), local_t, "text {k}");
        assert_eq!(b, edge::blob(k), "blob {k}");
    }
}

#[test]
fn values_that_cannot_land_unchanged_are_listed_and_block_the_full_export() {
    let (_dir, conn, pg, schema) = with_fresh_schema("problems", "t_problems");
    conn.execute_batch(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, n INTEGER, t TEXT, mixed);
         INSERT INTO p VALUES (1, 10, 'fine', 1), (2, 'abc', 'fine', 2),
                              (3, 30, 'nul' || char(0) || 'byte', 3),
                              (4, 40, CAST(X'FFFE' AS TEXT), 4);
         CREATE TABLE m (id INTEGER PRIMARY KEY, v);
         INSERT INTO m VALUES (1, 5), (2, 'five');",
    )
    .unwrap();
    let options = json!({"schema": schema});
    let dry = dry_run(&conn, &options);
    assert_eq!(problems_total_of(&dry), 4, "{dry}");
    let all = listed_problems(&dry).join("\n");
    for expected in [
        "\"p\" {\"id\":2} \"n\" \"text cannot become bigint: name a type that keeps it with \
         the column_types option, {\\\"p.n\\\":\\\"text\\\"}\"",
        "{\"id\":3} \"t\" \"text holds a NUL byte",
        "{\"id\":4} \"t\" \"text is not valid UTF-8",
        "\"m\" null \"v\" \"column v holds integer and text values",
    ] {
        assert!(all.contains(expected), "{expected}: {all}");
    }
    assert_eq!(
        counts_of(&dry, "p"),
        counts!(source_rows: 4, inserts: 1, skipped: 3, problems: 3)
    );
    // Nothing remote: the dry run created no table.
    let p = format!("{schema}.p");
    assert!(!remote_table_exists(&pg, &p));

    // A full export cannot confirm a dry run that found problems.
    let refused = error_of(
        &conn,
        &format!(
            "SELECT cloud_sync_export('prod', 0, {})",
            quoted(&json!({"schema": schema, "confirm": dry["id"]}))
        ),
    );
    assert!(refused.contains("4 problems"), "{refused}");

    // A problem that appears after a clean dry run stops the export before anything lands.
    conn.execute_batch("DELETE FROM p WHERE id > 1; DROP TABLE m;")
        .unwrap();
    let clean = dry_run(&conn, &options);
    conn.execute("INSERT INTO p VALUES (5, 50, 'late' || char(0), 5)", [])
        .unwrap();
    let job = confirmed_export(&conn, &options, &clean);
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("table p, key {\"id\":5}, column t: text holds a NUL byte"),
        "{error}"
    );
    assert!(
        !remote_table_exists(&pg, &p),
        "a failed export left a table behind"
    );
}

#[test]
fn odd_identifiers_composite_keys_without_rowid_and_keyless_tables() {
    let (_dir, conn, pg, schema) = with_fresh_schema("identifiers", "t_identifiers");
    conn.execute_batch(
        r#"CREATE TABLE "order" ("user" TEXT, "Mixed Case" INTEGER, "a.b" REAL, "quo""te" TEXT,
                                 PRIMARY KEY ("user", "Mixed Case")) WITHOUT ROWID;
           INSERT INTO "order" VALUES ('ann', 1, 1.5, 'x'), ('ann', 2, 2.5, 'y'), ('bob', 1, 0, NULL);
           CREATE TABLE events (device TEXT, seq INTEGER, value REAL, PRIMARY KEY (device, seq));
           INSERT INTO events VALUES ('d1', 1, 0.5), ('d1', 2, 0.25);
           CREATE TABLE logbook (line TEXT);
           INSERT INTO logbook VALUES ('first'), ('second');"#,
    )
    .unwrap();
    let problem = first_problem(&conn, &schema);
    assert!(
        problem.contains("logbook") && problem.contains("no primary key"),
        "{problem}"
    );

    let job = exported(&conn, &json!({"schema": schema, "use_rowid": ["logbook"]}));
    assert_eq!(
        table_of(&job, "order")["key"],
        json!(["user", "Mixed Case"])
    );
    let n: i64 = remote_value(
        &pg,
        &format!(r#"SELECT count(*) FROM {schema}."order" WHERE "quo""te" = 'x' AND "a.b" = 1.5"#),
    );
    assert_eq!(n, 1);
    let lines: Vec<(i64, String)> = remote_rows(
        &pg,
        &format!("SELECT rowid, line FROM {schema}.logbook ORDER BY rowid"),
        |r| (r.get(0), r.get(1)),
    );
    assert_eq!(
        lines,
        vec![(1, "first".to_string()), (2, "second".to_string())]
    );
}

#[test]
fn a_second_export_changes_nothing_and_rewrites_no_row() {
    let (_dir, conn, pg, schema) = with_fresh_schema("idempotent", "t_idempotent");
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500)
         INSERT INTO items SELECT x, 'item ' || x, x * 0.5 FROM n;",
    )
    .unwrap();
    let options = json!({"schema": schema});
    exported(&conn, &options);
    let xmins = || -> Vec<String> {
        remote_column(
            &pg,
            &format!("SELECT xmin::text FROM {schema}.items ORDER BY id"),
        )
    };
    let before = xmins();

    let again = exported(&conn, &options);
    assert_eq!(
        counts_of(&again, "items"),
        counts!(source_rows: 500, unchanged: 500),
        "{again}"
    );
    assert_eq!(before, xmins(), "unchanged rows were rewritten");

    conn.execute_batch(
        "UPDATE items SET price = price + 1 WHERE id <= 10; INSERT INTO items VALUES (501, 'new', NULL);",
    )
    .unwrap();
    admin(&pg)
        .batch_execute(&format!(
            "INSERT INTO {schema}.items VALUES (9999, 'remote only', 1)"
        ))
        .unwrap();
    let third = exported(&conn, &options);
    assert_eq!(
        counts_of(&third, "items"),
        counts!(source_rows: 501, inserts: 1, updates: 10, unchanged: 490, remote_only: Some(1)),
        "{third}"
    );
    assert_eq!(
        summary_of(&third)["differences_from_dry_run"],
        json!([]),
        "{third}"
    );

    // The data changes between the dry run and the export it confirms: the export runs, and
    // its summary says what differs from the preview.
    let dry = dry_run(&conn, &options);
    conn.execute("UPDATE items SET name = 'renamed' WHERE id IN (1, 2)", [])
        .unwrap();
    let changed = confirmed_export(&conn, &options, &dry);
    assert_eq!(changed["status"], "succeeded", "{changed}");
    assert_eq!(summary_of(&changed)["confirmed_dry_run"], dry["id"]);
    let differences = &summary_of(&changed)["differences_from_dry_run"];
    assert!(
        differences.as_array().unwrap().contains(&json!(
            {"table": "items", "count": "updates", "dry_run": 0, "export": 2}
        )),
        "{differences}"
    );

    let price: f64 = remote_value(
        &pg,
        &format!("SELECT price FROM {schema}.items WHERE id = 3"),
    );
    assert_eq!(price, 2.5);
}

#[test]
fn a_dry_run_writes_nothing_and_predicts_the_export() {
    let (_dir, conn, pg, schema) = with_fresh_schema("dryrun", "t_dryrun");
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'x'), (2, 'y');",
    )
    .unwrap();
    let options = json!({"schema": schema});
    let catalog = || -> i64 {
        remote_value(
            &pg,
            &format!(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = '{schema}'"
            ),
        )
    };
    let dry = dry_run(&conn, &options);
    assert_eq!(catalog(), 0, "a dry run created something remotely");
    let full = exported(&conn, &options);
    assert_eq!(counts_of(&dry, "a"), counts_of(&full, "a"));
    assert!(catalog() > 0);
}

#[test]
fn existing_remote_tables_keep_their_richer_types() {
    let (_dir, conn, pg, schema) = with_fresh_schema("rich", "t_rich");
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE rich (id integer PRIMARY KEY, uid uuid, doc jsonb,
           at timestamptz, flag boolean, amount numeric(10,2), label varchar(5),
           note text DEFAULT 'remote default', serial_id bigserial);",
    );
    // Text as each type gives it back; other spellings are problems (tests/value_classes.rs).
    conn.execute_batch(
        "CREATE TABLE rich (id INTEGER PRIMARY KEY, uid TEXT, doc TEXT, at TEXT, flag INTEGER,
                            amount TEXT, label TEXT);
         INSERT INTO rich VALUES
           (1, '123e4567-e89b-12d3-a456-426614174000', '{\"a\": [1, 2]}', '2024-05-06 07:08:09+00', 1, '12.50', 'short'),
           (2, NULL, 'null', '2024-05-06 05:08:09.123+00', 0, '0.10', NULL);",
    )
    .unwrap();
    exported(&conn, &json!({"schema": schema}));
    let row = admin(&pg)
        .query_one(
            &format!("SELECT uid::text, doc::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), flag, amount::text, label, note FROM {schema}.rich WHERE id = 1"),
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "123e4567-e89b-12d3-a456-426614174000"
    );
    assert_eq!(row.get::<_, String>(1), r#"{"a": [1, 2]}"#);
    assert_eq!(row.get::<_, String>(2), "2024-05-06 07:08:09");
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, String>(4), "12.50");
    assert_eq!(row.get::<_, String>(6), "remote default");

    // A value that does not fit the remote type is a problem, found before writing.
    conn.execute("UPDATE rich SET label = 'much too long' WHERE id = 2", [])
        .unwrap();
    let problem = first_problem(&conn, &schema);
    assert!(
        problem.contains("longer than varchar(5)") && problem.contains("\"id\":2"),
        "{problem}"
    );

    // A remote table without a unique constraint on the key, or without a column.
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE nokey (id bigint, v text); CREATE TABLE nocol (id bigint PRIMARY KEY);",
    );
    conn.execute_batch(
        "CREATE TABLE nokey (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE nocol (id INTEGER PRIMARY KEY, v TEXT);",
    )
    .unwrap();
    let dry = dry_run(
        &conn,
        &json!({"schema": schema, "tables": ["nokey", "nocol"]}),
    );
    let problems = listed_problems(&dry).join("\n");
    assert!(
        problems.contains("no unique constraint on its key (id)"),
        "{problems}"
    );
    assert!(problems.contains("has no column \\\"v\\\""), "{problems}");
}

#[test]
fn serial_and_identity_keys_move_past_the_exported_ids() {
    for (case, remote_key, local_rows, next) in [
        ("bigserial", "id bigserial PRIMARY KEY", "(100, 'a')", 101),
        (
            "identity",
            "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            "(41, 'a'), (42, 'b')",
            43,
        ),
    ] {
        let (_dir, conn, pg, schema) =
            with_fresh_schema(&format!("keys_{case}"), &format!("t_keys_{case}"));
        as_test_user(
            &pg,
            &schema,
            &format!("CREATE TABLE keyed ({remote_key}, v text)"),
        );
        conn.execute_batch(&format!(
            "CREATE TABLE keyed (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO keyed VALUES {local_rows};"
        ))
        .unwrap();
        let job = export(&conn, &json!({"schema": schema}));
        assert_eq!(job["status"], "succeeded", "{case}: {job}");
        let next_id: i64 = remote_value(
            &pg,
            &format!("INSERT INTO {schema}.keyed (v) VALUES ('remote') RETURNING id"),
        );
        assert_eq!(next_id, next, "{case}");
    }
}

#[test]
fn a_second_sync_waits_for_the_lock_and_never_interleaves() {
    // Direct, then through pgbouncer in transaction mode (the lock lasts the transaction).
    for pooled in [false, true] {
        second_sync_waits_for_the_lock(pooled);
    }
}

fn second_sync_waits_for_the_lock(pooled: bool) {
    let (_dir, conn, pg) = with_saved_connection(&format!("lock_{pooled}"), pooled);
    let schema = fresh_schema(&pg, &format!("t_lock_{pooled}"));
    conn.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);")
        .unwrap();
    let mut other = admin(&pg);
    let mut holder = other.transaction().unwrap();
    holder
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('cloud_sync:' || current_database() || '.' || $1, 0))",
            &[&schema],
        )
        .unwrap();
    let job = run_dry_run(&conn, &json!({"schema": schema}));
    // The lock is busy: the job is queued again for a retry, with the reason.
    assert_eq!(job["status"], "queued", "{job}");
    assert!(!job["next_attempt_at"].is_null(), "{job}");
    assert!(
        job["error"].as_str().unwrap().contains(&format!(
            "another sync holds the lock on cloud_sync_test.{schema}"
        )),
        "{job}"
    );
    holder.rollback().unwrap();
    let again = run_job(&conn, &job["id"].to_string());
    assert_eq!(again["status"], "succeeded", "{again}");
}

#[test]
fn a_failure_half_way_leaves_the_remote_unchanged() {
    let (_dir, conn, pg, schema) = with_fresh_schema("halfway", "t_halfway");
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE b (id bigint PRIMARY KEY, v bigint CHECK (v < 100));",
    );
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO a VALUES (1, 1);
         CREATE TABLE b (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO b VALUES (1, 5);",
    )
    .unwrap();
    let options = json!({"schema": schema});
    let clean = dry_run(&conn, &options);
    // A row the remote refuses, added after the clean dry run: a dry run now runs the same
    // INSERT and fails as the export will, and the export that confirms the clean one fails
    // half-way.
    conn.execute("INSERT INTO b VALUES (2, 500)", []).unwrap();
    let failed_dry_run = run_dry_run(&conn, &options);
    let job = confirmed_export(&conn, &options, &clean);
    for job in [&failed_dry_run, &job] {
        assert_eq!(job["status"], "failed", "{job}");
        let error = job["error"].as_str().unwrap();
        assert!(
            error.contains("table b: INSERT failed") && error.contains("23514"),
            "{error}"
        );
    }
    assert!(
        !remote_table_exists(&pg, &format!("{schema}.a")),
        "table a was left behind"
    );
    let b_rows: i64 = remote_value(&pg, &format!("SELECT count(*) FROM {schema}.b"));
    assert_eq!(b_rows, 0);
}

#[test]
fn exports_work_through_pgbouncer_in_transaction_mode() {
    let (_dir, conn, pg) = with_saved_connection("pooled", true);
    let schema = fresh_schema(&pg, "t_pooled");
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'x'), (2, 'y');
         CREATE TABLE b (k TEXT PRIMARY KEY, n INTEGER); INSERT INTO b VALUES ('one', 1);",
    )
    .unwrap();
    let options = json!({"schema": schema});
    for round in 0..3 {
        let job = export(&conn, &options);
        assert_eq!(job["status"], "succeeded", "round {round}: {job}");
        conn.execute("UPDATE a SET v = v || '!' WHERE id = 1", [])
            .unwrap();
    }
    let v: String = remote_value(&pg, &format!("SELECT v FROM {schema}.a WHERE id = 1"));
    assert_eq!(v, "x!!");
}

#[test]
fn remote_permission_denied_fails_the_job_with_the_reason() {
    let (_dir, conn, pg) = with_saved_connection("denied", false);
    let limited = format!(
        "postgresql://cloud_sync_limited:limited_pw@localhost:{}/{}?sslmode=require",
        pg.port, pg.db
    );
    save(&conn, "prod", &limited);
    conn.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);")
        .unwrap();
    let job = run_job(&conn, "cloud_sync_export('prod', 1)");
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("permission denied") && error.contains("42501"),
        "{error}"
    );
    assert!(!error.contains("limited_pw"));
}

#[test]
fn booleans_and_timestamps_become_native_where_that_is_lossless_or_asked_for() {
    let (_dir, conn, pg, schema) = with_fresh_schema("native", "t_native");
    conn.execute_batch(
        "CREATE TABLE flags (id INTEGER PRIMARY KEY, ok BOOLEAN, maybe BOOLEAN, at DATETIME,
                             d DATE, loose DATETIME, stamped TEXT);
         INSERT INTO flags VALUES
           (1, 1, 1, '2026-11-26 10:00:00', '2026-11-26', '2026-11-26T10:00:00Z', '2026-11-26T10:00:00Z'),
           (2, 0, 2, '2026-11-27 11:30:05', '2026-11-27', '2026-11-27 11:30', '2026-11-27 10:30:05.25+00');",
    )
    .unwrap();
    let options = json!({"schema": schema, "column_types": {"flags.stamped": "timestamptz"}});
    // timestamptz keeps the instant, not the text: a zone other than +00 would come back in UTC.
    let dry = dry_run(&conn, &options);
    assert_eq!(
        listed_problems(&dry),
        [
            r#""flags" {"id":1} "stamped" "text '2026-11-26T10:00:00Z' would come back from timestamp with time zone as '2026-11-26 10:00:00+00': name a type that keeps it with the column_types option, {\"flags.stamped\":\"text\"}""#
        ]
    );
    conn.execute(
        "UPDATE flags SET stamped = '2026-11-26 10:00:00+00' WHERE id = 1",
        [],
    )
    .unwrap();
    exported(&conn, &options);
    let types: Vec<String> = remote_column(
        &pg,
        &format!(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = to_regclass('{schema}.flags') AND attnum > 0 ORDER BY attnum"
        ),
    );
    assert_eq!(
        types,
        [
            "bigint",
            "boolean",
            "bigint",
            "timestamp(0) without time zone",
            "date",
            "text",
            "timestamp with time zone"
        ]
    );
    let row = admin(&pg)
        .query_one(
            &format!("SELECT ok, at::text, d::text, loose, to_char(stamped AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') FROM {schema}.flags WHERE id = 2"),
            &[],
        )
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), "2026-11-27 11:30:05");
    assert_eq!(row.get::<_, String>(2), "2026-11-27");
    assert_eq!(row.get::<_, String>(3), "2026-11-27 11:30");
    assert_eq!(row.get::<_, String>(4), "2026-11-27 10:30:05.250");
}

/// The log of job `job` (its JSON) holds `message`.
fn logged(conn: &rusqlite::Connection, job: &serde_json::Value, message: &str) -> bool {
    log_messages(conn, job["id"].as_i64().unwrap())
        .iter()
        .any(|m| m == message)
}

#[test]
fn a_missing_schema_is_previewed_by_the_dry_run_and_created_by_the_export() {
    let (_dir, conn, pg) = with_saved_connection("new_schema", false);
    // Mixed case and a space: the name is used exactly as written.
    let schema = missing_schema(&pg, "t_New schema");
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'x'), (2, 'y');",
    )
    .unwrap();
    let options = json!({"schema": schema});
    let dry = dry_run(&conn, &options);
    assert_eq!(summary_of(&dry)["schema_created"], true, "{dry}");
    assert!(logged(&conn, &dry, "would create schema t_New schema"));
    assert_eq!(counts_of(&dry, "a"), counts!(source_rows: 2, inserts: 2));
    assert_eq!(
        schema_owner(&pg, &schema),
        None,
        "the dry run left the schema"
    );

    let job = confirmed_export(&conn, &options, &dry);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(summary_of(&job)["schema_created"], true, "{job}");
    assert!(logged(&conn, &job, "created schema t_New schema"));
    assert_eq!(schema_owner(&pg, &schema), Some(pg.user.clone()));
    let rows: i64 = remote_value(&pg, r#"SELECT count(*) FROM "t_New schema".a"#);
    assert_eq!(rows, 2);

    // Once there, the schema is used as it is.
    let again = exported(&conn, &options);
    assert_eq!(summary_of(&again)["schema_created"], false, "{again}");
}

#[test]
fn a_failed_export_leaves_no_schema_behind() {
    let (_dir, conn, pg) = with_saved_connection("schema_rollback", false);
    let schema = missing_schema(&pg, "t_schema_rollback");
    conn.execute_batch(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, t TEXT); INSERT INTO p VALUES (1, 'a');",
    )
    .unwrap();
    let options = json!({"schema": schema});
    let clean = dry_run(&conn, &options);
    // A value that cannot land, added after the clean dry run, fails the export half-way.
    conn.execute("INSERT INTO p VALUES (2, 'late' || char(0))", [])
        .unwrap();
    let job = confirmed_export(&conn, &options, &clean);
    assert_eq!(job["status"], "failed", "{job}");
    assert!(logged(&conn, &job, "created schema t_schema_rollback"));
    assert_eq!(
        schema_owner(&pg, &schema),
        None,
        "the failed export left the schema"
    );
}

#[test]
fn without_create_tables_a_missing_schema_is_refused_with_the_fix() {
    let (_dir, conn, pg) = with_saved_connection("absent_schema", false);
    let schema = missing_schema(&pg, "t_absent");
    conn.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);")
        .unwrap();
    let job = run_dry_run(&conn, &json!({"schema": schema, "create_tables": false}));
    // Permanent: failed at the first attempt, not queued again.
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["error"],
        "the remote schema t_absent does not exist, and create_tables is false, so no table \
         can be exported there: create the schema (CREATE SCHEMA \"t_absent\"), or leave \
         create_tables out to let the export create it"
    );
    assert_eq!(schema_owner(&pg, &schema), None);
}

#[test]
fn a_user_who_may_not_create_the_schema_is_told_how_to_get_it() {
    let (_dir, conn, pg) = with_saved_connection("schema_denied", false);
    let schema = missing_schema(&pg, "t_denied");
    let limited = format!(
        "postgresql://cloud_sync_limited:limited_pw@localhost:{}/{}?sslmode=require",
        pg.port, pg.db
    );
    save(&conn, "limited", &limited);
    conn.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);")
        .unwrap();
    let job = run_job(
        &conn,
        &format!(
            "cloud_sync_export('limited', 1, {})",
            quoted(&json!({"schema": schema}))
        ),
    );
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    for expected in [
        "the remote schema t_denied does not exist, and user cloud_sync_limited may not create it",
        "(SQLSTATE 42501)",
        "GRANT CREATE ON DATABASE \"cloud_sync_test\" TO \"cloud_sync_limited\"",
        "CREATE SCHEMA \"t_denied\" AUTHORIZATION \"cloud_sync_limited\"",
    ] {
        assert!(error.contains(expected), "{expected}: {error}");
    }
    assert!(!error.contains("limited_pw"));
    assert_eq!(schema_owner(&pg, &schema), None);
}

#[test]
fn temporary_and_system_schemas_are_refused_when_queued() {
    let (_dir, conn) = with_dead_connections("reserved_schemas");
    let cases: Vec<(String, String)> = [
        ("pg_temp", "is a temporary schema"),
        ("pg_temp_1", "is a temporary schema"),
        ("pg_toast", "is reserved for PostgreSQL's system schemas"),
        ("pg_catalog", "is reserved for PostgreSQL's system schemas"),
        (
            "information_schema",
            "holds PostgreSQL's SQL-standard views",
        ),
    ]
    .iter()
    .map(|(schema, why)| {
        (
            format!("SELECT cloud_sync_export('prod', 1, '{{\"schema\": \"{schema}\"}}')"),
            format!("option schema: \"{schema}\" {why}"),
        )
    })
    .collect();
    let cases: Vec<(&str, &str)> = cases
        .iter()
        .map(|(s, e)| (s.as_str(), e.as_str()))
        .collect();
    assert_each_refused(&conn, "cloud_sync_export", &cases);
}
