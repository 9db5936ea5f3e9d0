//! Export against the real PostgreSQL (direct and through pgbouncer in transaction mode), with
//! the built extension loaded into a rusqlite host. Each test works in its own remote schema.

mod common;

use common::{admin, quoted, run_job, with_saved_connection, Pg};
use postgres::Client;
use rusqlite::Connection;
use serde_json::{json, Value};

/// A dry run with `options`, which must succeed; returns the job's JSON.
fn dry_run(conn: &Connection, options: &Value) -> Value {
    let job = run_job(
        conn,
        &format!("cloud_sync_export('prod', 1, {})", quoted(options)),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    job
}

/// A dry run, then the full export it confirms; returns the full export's JSON.
fn export(conn: &Connection, options: &Value) -> Value {
    let dry = dry_run(conn, options);
    let mut confirmed = options.clone();
    confirmed["confirm"] = dry["id"].clone();
    run_job(
        conn,
        &format!("cloud_sync_export('prod', 0, {})", quoted(&confirmed)),
    )
}

fn table<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["summary"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {job}"))
}

#[test]
fn every_storage_class_and_edge_value_lands_exactly() {
    let (_dir, conn, pg) = with_saved_connection("edges", false);
    let schema = common::fresh_schema(&pg, "t_edges");
    conn.execute_batch(
        // SQLite stores a REAL-affinity -0.0 as the integer 0 (+0.0 on reading); an untyped
        // column keeps the sign, so `u` holds the same reals to prove -0.0 survives.
        "CREATE TABLE edge (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n NUMERIC, u);",
    )
    .unwrap();
    let reals = [
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.1,
        std::f64::consts::PI,
        5e-324,
        f64::MAX,
    ];
    let texts = [
        "",
        "plain",
        "comma, \"quote\" 'single'",
        "line\nbreak\ttab\\",
        "é😀👩‍👩‍👧 עברית",
        "\u{feff}bom",
    ];
    let ints = [i64::MIN, i64::MAX, 0, -1];
    let mut insert = conn
        .prepare("INSERT INTO edge VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3)")
        .unwrap();
    for (k, real) in reals.iter().enumerate() {
        insert
            .execute(rusqlite::params![
                k as i64 + 1,
                ints.get(k),
                real,
                texts.get(k),
                if k % 2 == 0 {
                    Some(vec![0u8, 255, 1, 0, k as u8])
                } else {
                    None
                },
                ints.get(k).map(|i| i / 3),
            ])
            .unwrap();
    }
    drop(insert);
    let job = export(&conn, &json!({"schema": schema}));
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(table(&job, "edge")["inserts"], 8);

    let mut remote = admin(&pg);
    let types: Vec<(String, String)> = remote
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = 'edge' ORDER BY ordinal_position",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(String, String)> = [
        ("id", "bigint"),
        ("i", "bigint"),
        ("r", "double precision"),
        ("t", "text"),
        ("b", "bytea"),
        ("n", "bigint"),
        ("u", "double precision"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(types, expected);

    let local_reals: Vec<f64> = conn
        .prepare("SELECT r FROM edge ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let rows = remote
        .query(
            &format!("SELECT id, i, r, t, b, u FROM {schema}.edge ORDER BY id"),
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 8);
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row.get::<_, Option<i64>>(1), ints.get(k).copied());
        let r: f64 = row.get(2);
        assert_eq!(
            r.to_bits(),
            local_reals[k].to_bits(),
            "real {k}: {r} vs {}",
            local_reals[k]
        );
        let u: f64 = row.get(5);
        assert_eq!(
            u.to_bits(),
            reals[k].to_bits(),
            "untyped {k}: {u} vs {}",
            reals[k]
        );
        assert_eq!(
            row.get::<_, Option<String>>(3).as_deref(),
            texts.get(k).copied()
        );
        let blob: Option<Vec<u8>> = row.get(4);
        assert_eq!(
            blob,
            if k % 2 == 0 {
                Some(vec![0u8, 255, 1, 0, k as u8])
            } else {
                None
            }
        );
    }
}

#[test]
fn values_that_cannot_land_unchanged_are_listed_and_block_the_full_export() {
    let (_dir, conn, pg) = with_saved_connection("problems", false);
    let schema = common::fresh_schema(&pg, "t_problems");
    conn.execute_batch(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, n INTEGER, t TEXT, mixed);
         INSERT INTO p VALUES (1, 10, 'fine', 1), (2, 'abc', 'fine', 2),
                              (3, 30, 'nul' || char(0) || 'byte', 3),
                              (4, 40, CAST(X'FFFE' AS TEXT), 4);
         CREATE TABLE m (id INTEGER PRIMARY KEY, v);
         INSERT INTO m VALUES (1, 5), (2, 'five');",
    )
    .unwrap();
    let dry = dry_run(&conn, &json!({"schema": schema}));
    let summary = &dry["summary"];
    assert_eq!(summary["problems_total"], 4, "{summary}");
    let listed: Vec<String> = summary["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["table"], p["key"], p["column"], p["problem"]
            )
        })
        .collect();
    let all = listed.join("\n");
    assert!(
        all.contains("\"p\" {\"id\":2} \"n\" \"text cannot become bigint\""),
        "{all}"
    );
    assert!(
        all.contains("{\"id\":3} \"t\" \"text holds a NUL byte"),
        "{all}"
    );
    assert!(
        all.contains("{\"id\":4} \"t\" \"text is not valid UTF-8"),
        "{all}"
    );
    assert!(
        all.contains("\"m\" null null \"column v holds integer and text values"),
        "{all}"
    );
    assert_eq!(table(&dry, "p")["skipped"], 3);
    assert_eq!(table(&dry, "p")["inserts"], 1);
    // Nothing remote: the dry run created no table.
    let exists = |pg: &Pg| -> bool {
        admin(pg)
            .query_one(
                &format!("SELECT to_regclass('{schema}.p') IS NOT NULL"),
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert!(!exists(&pg));

    // A full export cannot confirm a dry run that found problems.
    let options = json!({"schema": schema, "confirm": dry["id"]});
    let refused = conn
        .query_row(
            &format!("SELECT cloud_sync_export('prod', 0, {})", quoted(&options)),
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("4 problems"), "{refused}");

    // A problem that appears after a clean dry run stops the export before anything lands.
    conn.execute_batch("DELETE FROM p WHERE id > 1; DROP TABLE m;")
        .unwrap();
    let clean = dry_run(&conn, &json!({"schema": schema}));
    conn.execute("INSERT INTO p VALUES (5, 50, 'late' || char(0), 5)", [])
        .unwrap();
    let options = json!({"schema": schema, "confirm": clean["id"]});
    let job = run_job(
        &conn,
        &format!("cloud_sync_export('prod', 0, {})", quoted(&options)),
    );
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("table p, key {\"id\":5}, column t: text holds a NUL byte"),
        "{error}"
    );
    assert!(!exists(&pg), "a failed export left a table behind");
}

#[test]
fn odd_identifiers_composite_keys_without_rowid_and_keyless_tables() {
    let (_dir, conn, pg) = with_saved_connection("identifiers", false);
    let schema = common::fresh_schema(&pg, "t_identifiers");
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
    let dry = dry_run(&conn, &json!({"schema": schema}));
    let problem = dry["summary"]["problems"][0].to_string();
    assert!(
        problem.contains("logbook") && problem.contains("no primary key"),
        "{problem}"
    );

    let job = export(&conn, &json!({"schema": schema, "use_rowid": ["logbook"]}));
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(table(&job, "order")["key"], json!(["user", "Mixed Case"]));
    let mut remote = admin(&pg);
    let n: i64 = remote
        .query_one(
            &format!(
                r#"SELECT count(*) FROM {schema}."order" WHERE "quo""te" = 'x' AND "a.b" = 1.5"#
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let lines: Vec<(i64, String)> = remote
        .query(
            &format!("SELECT rowid, line FROM {schema}.logbook ORDER BY rowid"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        lines,
        vec![(1, "first".to_string()), (2, "second".to_string())]
    );
}

#[test]
fn a_second_export_changes_nothing_and_rewrites_no_row() {
    let (_dir, conn, pg) = with_saved_connection("idempotent", false);
    let schema = common::fresh_schema(&pg, "t_idempotent");
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500)
         INSERT INTO items SELECT x, 'item ' || x, x * 0.5 FROM n;",
    )
    .unwrap();
    let options = json!({"schema": schema});
    assert_eq!(export(&conn, &options)["status"], "succeeded");
    let mut remote = admin(&pg);
    let xmins = |remote: &mut Client| -> Vec<String> {
        remote
            .query(
                &format!("SELECT xmin::text FROM {schema}.items ORDER BY id"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let before = xmins(&mut remote);

    let again = export(&conn, &options);
    let items = table(&again, "items");
    assert_eq!(
        (
            items["inserts"].clone(),
            items["updates"].clone(),
            items["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(500))
    );
    assert_eq!(before, xmins(&mut remote), "unchanged rows were rewritten");

    conn.execute_batch(
        "UPDATE items SET price = price + 1 WHERE id <= 10; INSERT INTO items VALUES (501, 'new', NULL);",
    )
    .unwrap();
    admin(&pg)
        .batch_execute(&format!(
            "INSERT INTO {schema}.items VALUES (9999, 'remote only', 1)"
        ))
        .unwrap();
    let third = export(&conn, &options);
    let items = table(&third, "items");
    assert_eq!(
        (
            items["inserts"].clone(),
            items["updates"].clone(),
            items["unchanged"].clone(),
            items["remote_only"].clone()
        ),
        (json!(1), json!(10), json!(490), json!(1))
    );
    assert_eq!(
        third["summary"]["differences_from_dry_run"],
        json!([]),
        "{third}"
    );

    // The data changes between the dry run and the export it confirms: the export runs, and
    // its summary says what differs from the preview.
    let dry = dry_run(&conn, &options);
    conn.execute("UPDATE items SET name = 'renamed' WHERE id IN (1, 2)", [])
        .unwrap();
    let mut confirmed = options.clone();
    confirmed["confirm"] = dry["id"].clone();
    let changed = run_job(
        &conn,
        &format!("cloud_sync_export('prod', 0, {})", quoted(&confirmed)),
    );
    assert_eq!(changed["status"], "succeeded", "{changed}");
    assert_eq!(changed["summary"]["confirmed_dry_run"], dry["id"]);
    let differences = &changed["summary"]["differences_from_dry_run"];
    assert!(
        differences.as_array().unwrap().contains(&json!(
            {"table": "items", "count": "updates", "dry_run": 0, "export": 2}
        )),
        "{differences}"
    );

    let price: f64 = remote
        .query_one(
            &format!("SELECT price FROM {schema}.items WHERE id = 3"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(price, 2.5);
}

#[test]
fn a_dry_run_writes_nothing_and_predicts_the_export() {
    let (_dir, conn, pg) = with_saved_connection("dryrun", false);
    let schema = common::fresh_schema(&pg, "t_dryrun");
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'x'), (2, 'y');",
    )
    .unwrap();
    let options = json!({"schema": schema});
    let catalog = |pg: &Pg| -> i64 {
        admin(pg)
            .query_one("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1", &[&schema])
            .unwrap()
            .get(0)
    };
    let dry = dry_run(&conn, &options);
    assert_eq!(catalog(&pg), 0, "a dry run created something remotely");
    let full = export(&conn, &options);
    for field in ["inserts", "updates", "unchanged"] {
        assert_eq!(table(&dry, "a")[field], table(&full, "a")[field], "{field}");
    }
    assert!(catalog(&pg) > 0);
}

#[test]
fn existing_remote_tables_keep_their_richer_types() {
    let (_dir, conn, pg) = with_saved_connection("rich", false);
    let schema = common::fresh_schema(&pg, "t_rich");
    admin(&pg)
        .batch_execute(&format!(
            "CREATE TABLE {schema}.rich (id integer PRIMARY KEY, uid uuid, doc jsonb,
               at timestamptz, flag boolean, amount numeric(10,2), label varchar(5),
               note text DEFAULT 'remote default', serial_id bigserial);
             ALTER TABLE {schema}.rich OWNER TO {};",
            pg.user
        ))
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE rich (id INTEGER PRIMARY KEY, uid TEXT, doc TEXT, at TEXT, flag INTEGER,
                            amount TEXT, label TEXT);
         INSERT INTO rich VALUES
           (1, '123e4567-e89b-12d3-a456-426614174000', '{\"a\": [1, 2]}', '2024-05-06T07:08:09Z', 1, '12.50', 'short'),
           (2, NULL, 'null', '2024-05-06 07:08:09.123+02:00', 0, '0.1', NULL);",
    )
    .unwrap();
    let job = export(&conn, &json!({"schema": schema}));
    assert_eq!(job["status"], "succeeded", "{job}");
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
    let dry = run_job(
        &conn,
        &format!(
            "cloud_sync_export('prod', 1, {})",
            quoted(&json!({"schema": schema}))
        ),
    );
    let problem = dry["summary"]["problems"][0].to_string();
    assert!(
        problem.contains("longer than varchar(5)") && problem.contains("\"id\":2"),
        "{problem}"
    );

    // A remote table without a unique constraint on the key, or without a column.
    admin(&pg)
        .batch_execute(&format!(
            "CREATE TABLE {schema}.nokey (id bigint, v text); CREATE TABLE {schema}.nocol (id bigint PRIMARY KEY);
             ALTER TABLE {schema}.nokey OWNER TO {0}; ALTER TABLE {schema}.nocol OWNER TO {0};",
            pg.user
        ))
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE nokey (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE nocol (id INTEGER PRIMARY KEY, v TEXT);",
    )
    .unwrap();
    let dry = dry_run(
        &conn,
        &json!({"schema": schema, "tables": ["nokey", "nocol"]}),
    );
    let problems = dry["summary"]["problems"].to_string();
    assert!(
        problems.contains("no unique constraint on its key (id)"),
        "{problems}"
    );
    assert!(problems.contains("has no column \\\"v\\\""), "{problems}");
}

#[test]
fn serial_keys_move_their_sequence_past_the_exported_ids() {
    let (_dir, conn, pg) = with_saved_connection("sequence", false);
    let schema = common::fresh_schema(&pg, "t_sequence");
    admin(&pg)
        .batch_execute(&format!(
            "CREATE TABLE {schema}.seq (id bigserial PRIMARY KEY, v text); ALTER TABLE {schema}.seq OWNER TO {};",
            pg.user
        ))
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE seq (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO seq VALUES (100, 'a');",
    )
    .unwrap();
    assert_eq!(
        export(&conn, &json!({"schema": schema}))["status"],
        "succeeded"
    );
    let next: i64 = admin(&pg)
        .query_one(
            &format!("INSERT INTO {schema}.seq (v) VALUES ('remote') RETURNING id"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(next, 101);
}

#[test]
fn a_second_sync_waits_for_the_lock_and_never_interleaves() {
    let (_dir, conn, pg) = with_saved_connection("lock", false);
    let schema = common::fresh_schema(&pg, "t_lock");
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
    let job = run_job(
        &conn,
        &format!(
            "cloud_sync_export('prod', 1, {})",
            quoted(&json!({"schema": schema}))
        ),
    );
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
    let (_dir, conn, pg) = with_saved_connection("halfway", false);
    let schema = common::fresh_schema(&pg, "t_halfway");
    admin(&pg)
        .batch_execute(&format!(
            "CREATE TABLE {schema}.b (id bigint PRIMARY KEY, v bigint CHECK (v < 100));
             ALTER TABLE {schema}.b OWNER TO {};",
            pg.user
        ))
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO a VALUES (1, 1);
         CREATE TABLE b (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO b VALUES (1, 5), (2, 500);",
    )
    .unwrap();
    let job = export(&conn, &json!({"schema": schema}));
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("table b: INSERT failed") && error.contains("23514"),
        "{error}"
    );
    let a_exists: bool = admin(&pg)
        .query_one(
            &format!("SELECT to_regclass('{schema}.a') IS NOT NULL"),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!a_exists, "table a was left behind");
    let b_rows: i64 = admin(&pg)
        .query_one(&format!("SELECT count(*) FROM {schema}.b"), &[])
        .unwrap()
        .get(0);
    assert_eq!(b_rows, 0);
}

#[test]
fn exports_work_through_pgbouncer_in_transaction_mode() {
    let (_dir, conn, pg) = with_saved_connection("pooled", true);
    let schema = common::fresh_schema(&pg, "t_pooled");
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
    let v: String = admin(&pg)
        .query_one(&format!("SELECT v FROM {schema}.a WHERE id = 1"), &[])
        .unwrap()
        .get(0);
    assert_eq!(v, "x!!");
}

#[test]
fn remote_permission_denied_fails_the_job_with_the_reason() {
    let (_dir, conn, pg) = with_saved_connection("denied", false);
    let limited = format!(
        "postgresql://cloud_sync_limited:limited_pw@localhost:{}/{}?sslmode=require",
        pg.port, pg.db
    );
    conn.query_row("SELECT cloud_sync_save('prod', ?1)", [limited], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap();
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
    let (_dir, conn, pg) = with_saved_connection("native", false);
    let schema = common::fresh_schema(&pg, "t_native");
    conn.execute_batch(
        "CREATE TABLE flags (id INTEGER PRIMARY KEY, ok BOOLEAN, maybe BOOLEAN, at DATETIME,
                             d DATE, loose DATETIME, stamped TEXT);
         INSERT INTO flags VALUES
           (1, 1, 1, '2026-11-26 10:00:00', '2026-11-26', '2026-11-26T10:00:00Z', '2026-11-26T10:00:00Z'),
           (2, 0, 2, '2026-11-27 11:30:05', '2026-11-27', '2026-11-27 11:30', '2026-11-27T11:30:05.25+01:00');",
    )
    .unwrap();
    let options = json!({"schema": schema, "column_types": {"flags.stamped": "timestamptz"}});
    assert_eq!(export(&conn, &options)["status"], "succeeded");
    let mut remote = admin(&pg);
    let types: Vec<String> = remote
        .query(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 ORDER BY attnum",
            &[&format!("{schema}.flags")],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
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
    let row = remote
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

#[test]
fn identity_columns_take_the_exported_keys_and_move_on() {
    let (_dir, conn, pg) = with_saved_connection("identity", false);
    let schema = common::fresh_schema(&pg, "t_identity");
    admin(&pg)
        .batch_execute(&format!(
            "CREATE TABLE {schema}.ident (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
             ALTER TABLE {schema}.ident OWNER TO {};",
            pg.user
        ))
        .unwrap();
    conn.execute_batch("CREATE TABLE ident (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO ident VALUES (41, 'a'), (42, 'b');")
        .unwrap();
    let job = export(&conn, &json!({"schema": schema}));
    assert_eq!(job["status"], "succeeded", "{job}");
    let next: i64 = admin(&pg)
        .query_one(
            &format!("INSERT INTO {schema}.ident (v) VALUES ('remote') RETURNING id"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(next, 43);
}
