//! Change tracking and incremental export against the real PostgreSQL, with the built extension
//! loaded into a rusqlite host: cloud_sync_track / cloud_sync_untrack, the triggers, the
//! watermarks per connection and remote schema, pruning, and exactly what an incremental export
//! ships (checked remotely, row versions included). Each test works in its own remote schema.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::jobs::{
    confirmed_export, dry_run, exported, exported_on, job_count, job_status,
    queue_confirmed_export, quoted, run_dry_run, run_job,
};
use common::local::{
    column_of, error_of, int_of, json_of, rows_of, save, value_of, with_fresh_schema,
    with_saved_connection,
};
use common::remote::{admin, fresh_schema, locked, remote_rows, remote_table_exists, remote_value};
use common::summary::{
    assert_shipped, counts, full, incremental, shipped, summary_of, watermark_of, Shipped,
};
use common::{open, open_with, sql_str, tempdir, Pg};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Value};

/// `cloud_sync_track(table)`, parsed.
fn track(conn: &Connection, name: &str) -> Value {
    json_of(conn, &format!("SELECT cloud_sync_track({})", sql_str(name)))
}

/// `cloud_sync_untrack(table)`, parsed.
fn untrack(conn: &Connection, name: &str) -> Value {
    json_of(
        conn,
        &format!("SELECT cloud_sync_untrack({})", sql_str(name)),
    )
}

/// The watermark of `table` for the saved connection `connection` and the remote `schema`.
fn watermark(conn: &Connection, name: &str, connection: &str, schema: &str) -> Option<i64> {
    conn.query_row(
        "SELECT w.seq FROM cloud_sync_watermarks w
         JOIN cloud_sync_tracked_tables t ON t.id = w.tracking_id
         JOIN cloud_sync_connections c ON c.id = w.connection_id
         WHERE t.table_name = ?1 AND c.name = ?2 AND w.schema = ?3",
        [name, connection, schema],
        |r| r.get(0),
    )
    .optional()
    .unwrap()
}

/// Every watermark row (any table, connection and schema).
fn watermarks(conn: &Connection) -> i64 {
    int_of(conn, "SELECT count(*) FROM cloud_sync_watermarks")
}

/// The changes recorded for `table`, oldest first: (key, kind).
fn changes(conn: &Connection, name: &str) -> Vec<(String, String)> {
    rows_of(
        conn,
        &format!(
            "SELECT c.key, c.kind FROM cloud_sync_changes c
             JOIN cloud_sync_tracked_tables t ON t.id = c.tracking_id
             WHERE t.table_name = {} ORDER BY c.seq",
            sql_str(name)
        ),
    )
}

/// `changes` as written in a test: (key, kind) pairs.
fn change_list(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, c)| (k.to_string(), c.to_string()))
        .collect()
}

/// How many changes are recorded for `table`.
fn pending(conn: &Connection, name: &str) -> i64 {
    changes(conn, name).len() as i64
}

/// The last change seq ever handed out (pruning does not lower it).
fn last_seq(conn: &Connection) -> i64 {
    int_of(
        conn,
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'cloud_sync_changes'), 0)",
    )
}

/// How many triggers the database holds, those on `table` only if one is named.
fn triggers(conn: &Connection, table: Option<&str>) -> i64 {
    let on = table.map_or(String::new(), |t| format!(" AND tbl_name = {}", sql_str(t)));
    int_of(
        conn,
        &format!("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'{on}"),
    )
}

/// Creates `items(id INTEGER PRIMARY KEY, v TEXT)` with rows 1..=n, `v` = 'v<id>'.
fn items(conn: &Connection, n: i64) {
    conn.execute_batch(&format!(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n})
         INSERT INTO items SELECT x, 'v' || x FROM s;"
    ))
    .unwrap();
}

type Rows = Vec<(i64, Option<String>)>;

/// The (id, v) rows of the local `table`.
fn local_rows(conn: &Connection, name: &str) -> Rows {
    rows_of(conn, &format!("SELECT id, v FROM {name} ORDER BY id"))
}

/// The (id, v) rows of the remote `schema.table`.
fn remote_id_rows(pg: &Pg, schema: &str, name: &str) -> Rows {
    remote_rows(
        pg,
        &format!("SELECT id, v FROM {schema}.{name} ORDER BY id"),
        |r| (r.get(0), r.get(1)),
    )
}

/// The remote table holds exactly the local rows.
fn assert_same_rows(pg: &Pg, schema: &str, conn: &Connection, name: &str) {
    assert_eq!(
        remote_id_rows(pg, schema, name),
        local_rows(conn, name),
        "remote {schema}.{name} against the local table"
    );
}

/// The options of a full export into `schema` that deletes the remote rows gone locally.
fn full_with_deletes(schema: &str) -> Value {
    json!({"schema": schema, "mode": "full", "propagate_deletes": true})
}

/// Exports to `prod` into `schema` (a dry run, then the export it confirms) and checks that it
/// shipped `expected` of `items` and left the remote `items` equal to the local one.
fn exported_items(conn: &Connection, pg: &Pg, schema: &str, expected: Shipped) {
    let job = exported(conn, &json!({"schema": schema}));
    assert_shipped(&job, "items", expected);
    assert_same_rows(pg, schema, conn, "items");
}

/// The row version (xmin) of every remote row, by id.
fn xmins(pg: &Pg, schema: &str, name: &str) -> BTreeMap<i64, String> {
    remote_rows(
        pg,
        &format!("SELECT id, xmin::text FROM {schema}.{name}"),
        |r| (r.get(0), r.get(1)),
    )
    .into_iter()
    .collect()
}

/// `map` without the rows `ids`.
fn without(mut map: BTreeMap<i64, String>, ids: &[i64]) -> BTreeMap<i64, String> {
    for id in ids {
        map.remove(id);
    }
    map
}

/// A fresh database with `items` (n rows) tracked and exported once in full to `schema`.
fn tracked_and_exported(
    name: &str,
    schema: &str,
    n: i64,
) -> (tempdir::Dir, Connection, Pg, String) {
    let (dir, conn, pg, schema) = with_fresh_schema(name, schema);
    items(&conn, n);
    assert_eq!(track(&conn, "items")["status"], "tracked");
    let first = exported(&conn, &json!({"schema": schema}));
    assert_shipped(&first, "items", full(counts!(source_rows: n, inserts: n)));
    (dir, conn, pg, schema)
}

/// The error of the next export covering the tables of `options`: refused when queued, or its
/// dry run failing when it runs. Panics if the dry run succeeds.
fn export_error(conn: &Connection, options: &Value) -> String {
    let queued = conn.query_row(
        &format!("SELECT cloud_sync_export('prod', 1, {})", quoted(options)),
        [],
        |r| r.get::<_, i64>(0),
    );
    match queued {
        Err(e) => e.to_string(),
        Ok(id) => {
            let job = run_job(conn, &id.to_string());
            assert_eq!(job["status"], "failed", "{job}");
            job["error"].as_str().unwrap().to_string()
        }
    }
}

/// The error of `cloud_sync_export('prod', 1, options)`, which must refuse to queue it.
fn refusal_of(conn: &Connection, options: &Value) -> String {
    error_of(
        conn,
        &format!("SELECT cloud_sync_export('prod', 1, {})", quoted(options)),
    )
}

#[test]
fn inserts_updates_and_deletes_after_a_full_export_ship_incrementally_and_nothing_else() {
    let (_dir, conn, pg, schema) = with_fresh_schema("trk_basic", "t_trk_basic");
    items(&conn, 100);
    let tracked = track(&conn, "items");
    assert_eq!(
        (
            &tracked["table"],
            &tracked["key"],
            &tracked["triggers"],
            &tracked["status"]
        ),
        (
            &json!("items"),
            &json!(["id"]),
            &json!([
                "cloud_sync_insert_items",
                "cloud_sync_update_items",
                "cloud_sync_delete_items"
            ]),
            &json!("tracked")
        ),
        "{tracked}"
    );
    assert_eq!(
        int_of(
            &conn,
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'items'
             AND name IN ('cloud_sync_insert_items', 'cloud_sync_update_items', 'cloud_sync_delete_items')"
        ),
        3
    );
    // A change after tracking and before the first export: the full export covers it.
    conn.execute("INSERT INTO items VALUES (101, 'v101')", [])
        .unwrap();
    assert_eq!(changes(&conn, "items"), change_list(&[("101", "insert")]));

    let options = json!({"schema": schema});
    let first = exported(&conn, &options);
    assert_shipped(
        &first,
        "items",
        full(counts!(source_rows: 101, inserts: 101)),
    );
    let seq = last_seq(&conn);
    assert_eq!(watermark_of(&first), Some(seq), "{first}");
    assert_eq!(watermark(&conn, "items", "prod", &schema), Some(seq));
    assert_eq!(
        pending(&conn, "items"),
        0,
        "exported changes were not pruned"
    );
    let before = xmins(&pg, &schema, "items");

    conn.execute_batch(
        "INSERT INTO items VALUES (102, 'new');
         UPDATE items SET v = 'changed' WHERE id = 5;
         UPDATE items SET v = 'changed twice' WHERE id = 5;
         DELETE FROM items WHERE id = 7;
         UPDATE items SET v = v WHERE id = 9;",
    )
    .unwrap();
    assert_eq!(
        changes(&conn, "items"),
        change_list(&[
            ("102", "insert"),
            ("5", "update"),
            ("5", "update"),
            ("7", "delete"),
            ("9", "update")
        ])
    );
    let second = exported(&conn, &options);
    // Four distinct keys: 102 new, 5 changed, 7 gone, 9 touched but equal.
    assert_shipped(
        &second,
        "items",
        incremental(
            5,
            counts!(source_rows: 4, inserts: 1, updates: 1, unchanged: 1, deletes: 1),
        ),
    );
    assert_eq!(watermark_of(&second), Some(last_seq(&conn)));
    assert_eq!(
        watermark(&conn, "items", "prod", &schema),
        Some(last_seq(&conn))
    );
    assert_same_rows(&pg, &schema, &conn, "items");
    let after = xmins(&pg, &schema, "items");
    assert_eq!(
        without(before.clone(), &[5, 7]),
        without(after.clone(), &[5, 102]),
        "rows that did not change were rewritten"
    );
    assert_ne!(before[&5], after[&5]);

    // Nothing changed: nothing is shipped or rewritten.
    let third = exported(&conn, &options);
    assert_shipped(&third, "items", incremental(0, counts!()));
    assert_eq!(after, xmins(&pg, &schema, "items"));
}

#[test]
fn a_key_change_deletes_the_old_key_remotely_and_inserts_the_new_one() {
    let (_dir, conn, pg, schema) = tracked_and_exported("trk_keys", "t_trk_keys", 5);
    let options = json!({"schema": schema});
    conn.execute("UPDATE items SET id = 50 WHERE id = 5", [])
        .unwrap();
    assert_eq!(
        changes(&conn, "items"),
        change_list(&[("5", "delete"), ("50", "insert")])
    );
    exported_items(
        &conn,
        &pg,
        &schema,
        incremental(2, counts!(source_rows: 2, inserts: 1, deletes: 1)),
    );

    // A composite key, WITHOUT ROWID, with text that needs quoting in the change records.
    conn.execute_batch(
        "CREATE TABLE pairs (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;
         INSERT INTO pairs VALUES ('x', 1, 'x1'), ('x', 2, 'x2'), ('y', 1, 'y1'), ('y', 2, 'y2'),
                                  ('it''s, odd', 1, 'odd');",
    )
    .unwrap();
    assert_eq!(track(&conn, "pairs")["key"], json!(["a", "b"]));
    let first = exported(&conn, &options);
    assert_eq!(shipped(&first, "pairs").mode, "full", "{first}");
    conn.execute_batch(
        "UPDATE pairs SET b = 3 WHERE a = 'x' AND b = 1;
         DELETE FROM pairs WHERE a = 'y' AND b = 1;
         UPDATE pairs SET b = 1 WHERE a = 'y' AND b = 2;
         UPDATE pairs SET b = 2 WHERE a = 'it''s, odd';",
    )
    .unwrap();
    assert_eq!(
        changes(&conn, "pairs"),
        change_list(&[
            ("'x',1", "delete"),
            ("'x',3", "insert"),
            ("'y',1", "delete"),
            ("'y',2", "delete"),
            ("'y',1", "insert"),
            ("'it''s, odd',1", "delete"),
            ("'it''s, odd',2", "insert"),
        ])
    );
    let job = exported(&conn, &options);
    // Keys: x,1 gone; x,3 new; y,1 now holds y2's row (an update); y,2 gone; odd,1 gone;
    // odd,2 new.
    assert_shipped(
        &job,
        "pairs",
        incremental(
            7,
            counts!(source_rows: 6, inserts: 2, updates: 1, deletes: 3),
        ),
    );
    let remote: Vec<(String, i64, String)> = remote_rows(
        &pg,
        &format!("SELECT a, b, v FROM {schema}.pairs ORDER BY a, b"),
        |r| (r.get(0), r.get(1), r.get(2)),
    );
    let local: Vec<(String, i64, String)> =
        rows_of(&conn, "SELECT a, b, v FROM pairs ORDER BY a, b");
    assert_eq!(remote, local);
    assert_eq!(
        local,
        vec![
            ("it's, odd".to_string(), 2, "odd".to_string()),
            ("x".to_string(), 2, "x2".to_string()),
            ("x".to_string(), 3, "x1".to_string()),
            ("y".to_string(), 1, "y2".to_string()),
        ]
    );
}

#[test]
fn insert_then_delete_is_a_no_op_and_update_then_delete_deletes_remotely() {
    let (_dir, conn, pg, schema) = tracked_and_exported("trk_deleted", "t_trk_deleted", 10);
    let options = json!({"schema": schema});
    let before = xmins(&pg, &schema, "items");

    conn.execute_batch(
        "INSERT INTO items VALUES (500, 'brief'); DELETE FROM items WHERE id = 500;",
    )
    .unwrap();
    let job = exported(&conn, &options);
    assert_shipped(&job, "items", incremental(2, counts!(source_rows: 1)));
    assert_eq!(before, xmins(&pg, &schema, "items"), "the remote changed");

    conn.execute_batch(
        "UPDATE items SET v = 'doomed' WHERE id = 3; DELETE FROM items WHERE id = 3;",
    )
    .unwrap();
    exported_items(
        &conn,
        &pg,
        &schema,
        incremental(2, counts!(source_rows: 1, deletes: 1)),
    );
    assert!(!remote_id_rows(&pg, &schema, "items")
        .iter()
        .any(|r| r.0 == 3));

    // Deleted and inserted again with the same values: the remote row is left alone.
    conn.execute_batch("DELETE FROM items WHERE id = 4; INSERT INTO items VALUES (4, 'v4');")
        .unwrap();
    let job = exported(&conn, &options);
    assert_shipped(
        &job,
        "items",
        incremental(2, counts!(source_rows: 1, unchanged: 1)),
    );
    assert_eq!(
        without(before, &[3]),
        xmins(&pg, &schema, "items"),
        "an unchanged row was rewritten"
    );
}

/// Waits until a session of the test user waits on a lock; fails if `runner` ends first.
fn wait_for_lock_wait<T>(pg: &Pg, runner: &JoinHandle<T>) {
    let mut watcher = admin(pg);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND usename = $1 AND wait_event_type = 'Lock'",
                &[&pg.user],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(
            !runner.is_finished(),
            "the export finished without waiting for the locked table"
        );
        assert!(
            Instant::now() < deadline,
            "the export never waited on the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn changes_made_while_an_export_runs_are_shipped_by_the_next_one_never_lost() {
    let (dir, conn, pg, schema) = with_fresh_schema("trk_during", "t_trk_during");
    assert_eq!(
        value_of::<String>(&conn, "PRAGMA journal_mode = WAL"),
        "wal"
    );
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    items(&conn, 10);
    track(&conn, "items");
    let options = json!({"schema": schema});
    exported(&conn, &options);

    conn.execute("UPDATE items SET v = 'before' WHERE id = 1", [])
        .unwrap();
    let before_seq = last_seq(&conn);
    let dry = dry_run(&conn, &options);

    let mut locker = locked(&pg, &format!("{schema}.items"));
    let runner = {
        let (path, options) = (dir.db(), options.clone());
        std::thread::spawn(move || {
            let other = open(&path);
            other.busy_timeout(Duration::from_secs(30)).unwrap();
            confirmed_export(&other, &options, &dry)
        })
    };
    wait_for_lock_wait(&pg, &runner);
    // The export is under way (waiting on the remote table): write locally meanwhile.
    conn.execute_batch(
        "UPDATE items SET v = 'during' WHERE id = 2; INSERT INTO items VALUES (11, 'during');",
    )
    .unwrap();
    let during: Vec<i64> = column_of(
        &conn,
        &format!("SELECT seq FROM cloud_sync_changes WHERE seq > {before_seq} ORDER BY seq"),
    );
    assert_eq!(during.len(), 2, "{during:?}");
    locker.batch_execute("COMMIT").unwrap();
    let job = runner.join().unwrap();
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_shipped(
        &job,
        "items",
        incremental(1, counts!(source_rows: 1, updates: 1)),
    );
    let mark = watermark_of(&job).unwrap_or_else(|| panic!("no watermark in {job}"));
    assert!(
        mark >= before_seq && mark < during[0],
        "watermark {mark}: the snapshot held changes through {before_seq}, the concurrent ones are {during:?}"
    );
    assert_eq!(watermark(&conn, "items", "prod", &schema), Some(mark));
    let remote = remote_id_rows(&pg, &schema, "items");
    assert_eq!(remote[0], (1, Some("before".into())));
    assert_eq!(remote[1], (2, Some("v2".into())), "{remote:?}");
    assert_eq!(remote.len(), 10, "{remote:?}");
    assert_eq!(
        pending(&conn, "items"),
        2,
        "the concurrent changes were pruned"
    );

    exported_items(
        &conn,
        &pg,
        &schema,
        incremental(2, counts!(source_rows: 2, inserts: 1, updates: 1)),
    );
    assert_eq!(
        watermark(&conn, "items", "prod", &schema),
        Some(last_seq(&conn))
    );
    assert_eq!(pending(&conn, "items"), 0);
}

/// Another connection writes all the time while exports run one after the other: inserts (some
/// replacing a row), updates, deletes and key changes, a few per transaction, in a seeded random
/// order. Once it stops, one last export leaves the remote equal to the local table: no change
/// made between or during the exports was lost.
#[test]
fn exports_interleaved_with_a_busy_writer_lose_no_change() {
    let (dir, conn, pg, schema) = with_fresh_schema("trk_busy", "t_trk_busy");
    conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
    conn.busy_timeout(Duration::from_secs(20)).unwrap();
    items(&conn, 200);
    track(&conn, "items");
    let options = json!({"schema": schema});
    exported(&conn, &options);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let path = dir.db();
        std::thread::spawn(move || {
            // A plain connection: the triggers record changes without the extension.
            let w = Connection::open(&path).unwrap();
            w.busy_timeout(Duration::from_secs(20)).unwrap();
            let mut seed: u64 = 7;
            let mut next = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed >> 33
            };
            let mut transactions = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut sql = String::from("BEGIN IMMEDIATE;");
                for _ in 0..3 {
                    let (id, other, kind) = (next() % 300 + 1, next() % 300 + 1, next() % 4);
                    sql.push_str(&match kind {
                        0 => format!(
                            "INSERT OR REPLACE INTO items VALUES ({id}, 't{transactions}');"
                        ),
                        1 => format!("UPDATE items SET v = 'u{transactions}' WHERE id = {id};"),
                        2 => format!("DELETE FROM items WHERE id = {id};"),
                        _ => format!("UPDATE OR IGNORE items SET id = {other} WHERE id = {id};"),
                    });
                }
                sql.push_str("COMMIT;");
                w.execute_batch(&sql).unwrap();
                transactions += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            transactions
        })
    };
    for round in 0..6 {
        let job = exported(&conn, &options);
        assert_eq!(
            shipped(&job, "items").mode,
            "incremental",
            "round {round}: {job}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let transactions = writer.join().unwrap();
    assert!(
        transactions >= 20,
        "the writer wrote only {transactions} transactions"
    );

    let last = exported(&conn, &options);
    assert_eq!(shipped(&last, "items").mode, "incremental", "{last}");
    assert_same_rows(&pg, &schema, &conn, "items");
    assert_pruned(&conn, "items");
}

#[test]
fn a_failed_export_moves_no_watermark_and_the_next_one_ships_everything_once() {
    let (_dir, conn, pg, schema) = with_fresh_schema("trk_failed", "t_trk_failed");
    items(&conn, 10);
    track(&conn, "items");
    let options = json!({"schema": schema, "max_attempts": 1});
    exported(&conn, &options);
    let mark = watermark(&conn, "items", "prod", &schema).unwrap();
    let before = xmins(&pg, &schema, "items");

    conn.execute_batch(
        "INSERT INTO items VALUES (11, 'bad'); UPDATE items SET v = 'ok' WHERE id = 2;
         DELETE FROM items WHERE id = 3;",
    )
    .unwrap();
    let clean = dry_run(&conn, &options);
    admin(&pg)
        .batch_execute(&format!(
            "ALTER TABLE {schema}.items ADD CONSTRAINT no_bad CHECK (v <> 'bad')"
        ))
        .unwrap();
    // A dry run now fails as the export will; the export confirming the clean one fails.
    let failed_dry_run = run_dry_run(&conn, &options);
    let failed = confirmed_export(&conn, &options, &clean);
    for job in [&failed_dry_run, &failed] {
        assert_eq!(job["status"], "failed", "{job}");
        let error = job["error"].as_str().unwrap();
        assert!(
            error.contains("items") && error.contains("23514"),
            "{error}"
        );
    }
    assert_eq!(watermark(&conn, "items", "prod", &schema), Some(mark));
    assert_eq!(pending(&conn, "items"), 3);
    assert_eq!(
        before,
        xmins(&pg, &schema, "items"),
        "the failed export left changes behind"
    );

    admin(&pg)
        .batch_execute(&format!(
            "ALTER TABLE {schema}.items DROP CONSTRAINT no_bad"
        ))
        .unwrap();
    exported_items(
        &conn,
        &pg,
        &schema,
        incremental(
            3,
            counts!(source_rows: 3, inserts: 1, updates: 1, deletes: 1),
        ),
    );
    let versions = xmins(&pg, &schema, "items");
    let again = exported(&conn, &options);
    assert_shipped(&again, "items", incremental(0, counts!()));
    assert_eq!(versions, xmins(&pg, &schema, "items"));
}

#[test]
fn two_connections_and_two_schemas_keep_independent_watermarks() {
    let (_dir, conn, pg) = with_saved_connection("trk_two", false);
    let a = fresh_schema(&pg, "t_trk_two_a");
    let b = fresh_schema(&pg, "t_trk_two_b");
    let c = fresh_schema(&pg, "t_trk_two_c");
    save(&conn, "other", &pg.verified_url());
    items(&conn, 5);
    track(&conn, "items");
    let to_a = json!({"schema": a});
    let to_b = json!({"schema": b});
    for (connection, options) in [("prod", &to_a), ("other", &to_b)] {
        let job = exported_on(&conn, connection, options);
        assert_eq!(shipped(&job, "items").mode, "full", "{connection}: {job}");
    }

    conn.execute("UPDATE items SET v = 'one' WHERE id = 1", [])
        .unwrap();
    let job = exported_on(&conn, "prod", &to_a);
    assert_shipped(
        &job,
        "items",
        incremental(1, counts!(source_rows: 1, updates: 1)),
    );
    assert_eq!(watermark(&conn, "items", "prod", &a), Some(last_seq(&conn)));
    assert!(watermark(&conn, "items", "other", &b).unwrap() < last_seq(&conn));

    conn.execute("UPDATE items SET v = 'two' WHERE id = 2", [])
        .unwrap();
    let job = exported_on(&conn, "other", &to_b);
    assert_shipped(
        &job,
        "items",
        incremental(2, counts!(source_rows: 2, updates: 2)),
    );
    let job = exported_on(&conn, "prod", &to_a);
    assert_shipped(
        &job,
        "items",
        incremental(1, counts!(source_rows: 1, updates: 1)),
    );
    assert_same_rows(&pg, &a, &conn, "items");
    assert_same_rows(&pg, &b, &conn, "items");

    // The same connection to a schema it never exported to: a full export there.
    let job = exported_on(&conn, "prod", &json!({"schema": c}));
    assert_eq!(shipped(&job, "items").mode, "full", "{job}");
    assert_same_rows(&pg, &c, &conn, "items");

    let seq = last_seq(&conn);
    let exports = json_of(
        &conn,
        "SELECT exports FROM cloud_sync_tracked WHERE table_name = 'items'",
    );
    let mut exports: Vec<Value> = exports.as_array().unwrap().clone();
    exports.sort_by_key(|e| e["schema"].as_str().unwrap().to_string());
    let seen: Vec<Value> = exports
        .iter()
        .map(|e| {
            json!([
                e["connection"],
                e["schema"],
                e["exported_through"],
                e["pending"]
            ])
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            json!(["prod", a, seq, 0]),
            json!(["other", b, seq, 0]),
            json!(["prod", c, seq, 0])
        ]
    );
    assert_eq!(watermarks(&conn), 3);
}

#[test]
fn a_dry_run_moves_no_watermark_and_predicts_the_incremental_export() {
    let (_dir, conn, pg, schema) = with_fresh_schema("trk_dry", "t_trk_dry");
    items(&conn, 20);
    track(&conn, "items");
    let options = json!({"schema": schema});
    // The dry run of the first export sets no watermark: the next one is still full.
    dry_run(&conn, &options);
    assert_eq!(watermarks(&conn), 0);
    let dry = dry_run(&conn, &options);
    assert_eq!(shipped(&dry, "items").mode, "full", "{dry}");
    exported(&conn, &options);

    conn.execute_batch(
        "INSERT INTO items VALUES (21, 'new'), (22, 'new');
         UPDATE items SET v = 'changed' WHERE id IN (1, 2, 3);
         UPDATE items SET v = v WHERE id = 4;
         DELETE FROM items WHERE id IN (5, 6);",
    )
    .unwrap();
    let stored = || -> Vec<(i64, String, Option<i64>)> {
        rows_of(
            &conn,
            "SELECT seq, exported_at, job_id FROM cloud_sync_watermarks",
        )
    };
    let marks = stored();
    let before = xmins(&pg, &schema, "items");
    let dry = dry_run(&conn, &options);
    let again = dry_run(&conn, &options);
    assert_eq!(marks, stored(), "a dry run moved the watermark");
    assert_eq!(pending(&conn, "items"), 8, "a dry run pruned changes");
    assert_eq!(before, xmins(&pg, &schema, "items"), "a dry run wrote");
    assert_shipped(
        &dry,
        "items",
        incremental(
            8,
            counts!(source_rows: 8, inserts: 2, updates: 3, unchanged: 1, deletes: 2),
        ),
    );
    assert_eq!(shipped(&again, "items"), shipped(&dry, "items"));

    let real = confirmed_export(&conn, &options, &dry);
    assert_eq!(real["status"], "succeeded", "{real}");
    assert_eq!(shipped(&real, "items"), shipped(&dry, "items"), "{real}");
    assert_eq!(
        summary_of(&real)["differences_from_dry_run"],
        json!([]),
        "{real}"
    );
    assert_same_rows(&pg, &schema, &conn, "items");
}

/// Every change kept for `name` is newer than the lowest watermark of that table.
fn assert_pruned(conn: &Connection, name: &str) {
    let older = int_of(
        conn,
        &format!(
            "SELECT count(*) FROM cloud_sync_changes c
             JOIN cloud_sync_tracked_tables t ON t.id = c.tracking_id
             WHERE t.table_name = {0}
               AND c.seq <= (SELECT min(w.seq) FROM cloud_sync_watermarks w WHERE w.tracking_id = t.id)",
            sql_str(name)
        ),
    );
    assert_eq!(older, 0, "{name} keeps changes every connection exported");
}

#[test]
fn changes_are_pruned_once_every_connection_exported_them_and_kept_for_one_lagging_behind() {
    let (_dir, conn, pg) = with_saved_connection("trk_prune", false);
    let p = fresh_schema(&pg, "t_trk_prune_p");
    let o = fresh_schema(&pg, "t_trk_prune_o");
    save(&conn, "other", &pg.verified_url());
    items(&conn, 10);
    conn.execute_batch(
        "CREATE TABLE extra (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO extra VALUES (1, 'e1'), (2, 'e2');",
    )
    .unwrap();
    track(&conn, "items");
    track(&conn, "extra");
    let to_p = json!({"schema": p});
    let to_o = json!({"schema": o});
    exported_on(&conn, "prod", &to_p);
    exported_on(&conn, "other", &to_o);

    conn.execute_batch(
        "UPDATE items SET v = 'a' WHERE id = 1; INSERT INTO items VALUES (11, 'b');
         DELETE FROM items WHERE id = 2;
         UPDATE extra SET v = 'x' WHERE id = 1; DELETE FROM extra WHERE id = 2;",
    )
    .unwrap();
    // Each connection ships the same: first the three changes of items alone, then one more
    // change of items with the two of extra.
    let three_item_changes = incremental(
        3,
        counts!(source_rows: 3, inserts: 1, updates: 1, deletes: 1),
    );
    let one_item_change = incremental(1, counts!(source_rows: 1, updates: 1));
    let two_extra_changes = incremental(2, counts!(source_rows: 2, updates: 1, deletes: 1));
    let job = exported_on(&conn, "prod", &json!({"schema": p, "tables": ["items"]}));
    assert_shipped(&job, "items", three_item_changes.clone());
    // `other` has not exported them yet: every change is kept.
    assert_eq!(pending(&conn, "items"), 3);
    assert_eq!(pending(&conn, "extra"), 2);
    let job = exported_on(&conn, "other", &json!({"schema": o, "tables": ["items"]}));
    assert_shipped(&job, "items", three_item_changes);
    assert_eq!(pending(&conn, "items"), 0, "changes every connection has");
    assert_eq!(
        pending(&conn, "extra"),
        2,
        "a table not exported lost changes"
    );
    assert_pruned(&conn, "items");

    conn.execute("UPDATE items SET v = 'c' WHERE id = 3", [])
        .unwrap();
    let job = exported_on(&conn, "other", &to_o);
    assert_shipped(&job, "items", one_item_change.clone());
    assert_shipped(&job, "extra", two_extra_changes.clone());
    // `prod` lags behind on both tables now.
    assert_eq!(changes(&conn, "items"), change_list(&[("3", "update")]));
    assert_eq!(pending(&conn, "extra"), 2);
    assert_pruned(&conn, "items");
    assert_pruned(&conn, "extra");
    let view: Vec<(String, i64)> = rows_of(
        &conn,
        "SELECT table_name, pending_changes FROM cloud_sync_tracked ORDER BY table_name",
    );
    assert_eq!(view, vec![("extra".into(), 2), ("items".into(), 1)]);

    let job = exported_on(&conn, "prod", &to_p);
    assert_shipped(&job, "items", one_item_change);
    assert_shipped(&job, "extra", two_extra_changes);
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_changes"),
        0,
        "every change is exported everywhere"
    );
    for schema in [&p, &o] {
        assert_same_rows(&pg, schema, &conn, "items");
        assert_same_rows(&pg, schema, &conn, "extra");
    }
}

#[test]
fn untracking_drops_the_triggers_and_pending_changes_and_the_next_export_is_full() {
    let (_dir, conn, pg, schema) = tracked_and_exported("trk_untrack", "t_trk_untrack", 5);
    let options = json!({"schema": schema});
    conn.execute_batch("INSERT INTO items VALUES (6, 'six'); DELETE FROM items WHERE id = 1;")
        .unwrap();
    assert_eq!(
        untrack(&conn, "items"),
        json!({"table": "items", "untracked": true, "changes_dropped": 2})
    );
    assert_eq!(
        int_of(
            &conn,
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND (tbl_name = 'items' OR name LIKE 'cloud_sync_%')"
        ),
        0,
        "a trigger is left"
    );
    assert_eq!(int_of(&conn, "SELECT count(*) FROM cloud_sync_changes"), 0);
    assert_eq!(watermarks(&conn), 0);
    assert_eq!(int_of(&conn, "SELECT count(*) FROM cloud_sync_tracked"), 0);
    conn.execute("UPDATE items SET v = 'untracked' WHERE id = 2", [])
        .unwrap();
    assert_eq!(int_of(&conn, "SELECT count(*) FROM cloud_sync_changes"), 0);

    let error = error_of(&conn, "SELECT cloud_sync_untrack('items')");
    assert!(error.contains("not tracked"), "{error}");
    let refused = refusal_of(&conn, &json!({"schema": schema, "mode": "incremental"}));
    assert!(refused.contains("items"), "{refused}");

    // The next export is a full comparison; it propagates no delete unless asked to.
    let job = exported(&conn, &options);
    assert_shipped(
        &job,
        "items",
        full(counts!(source_rows: 5, inserts: 1, updates: 1, unchanged: 3, remote_only: Some(1))),
    );
    let job = exported(&conn, &full_with_deletes(&schema));
    assert_shipped(
        &job,
        "items",
        full(counts!(source_rows: 5, unchanged: 5, deletes: 1, remote_only: Some(1))),
    );
    assert_same_rows(&pg, &schema, &conn, "items");
}

#[test]
fn a_renamed_or_altered_tracked_table_fails_the_next_export_with_the_fix() {
    let (_dir, conn, pg, schema) = tracked_and_exported("trk_renamed", "t_trk_renamed", 3);
    let options = json!({"schema": schema});
    conn.execute_batch("ALTER TABLE items RENAME TO goods")
        .unwrap();
    let error = export_error(&conn, &options);
    assert!(
        error.contains("items")
            && error.contains("cloud_sync_untrack('items')")
            && error.contains("cloud_sync_track('goods')"),
        "{error}"
    );
    assert!(!remote_table_exists(&pg, &format!("{schema}.goods")));
    assert_eq!(untrack(&conn, "items")["untracked"], true);
    assert_eq!(triggers(&conn, None), 0, "the renamed table kept triggers");
    assert_eq!(track(&conn, "goods")["status"], "tracked");
    let job = exported(&conn, &options);
    assert_eq!(shipped(&job, "goods").mode, "full", "{job}");
    conn.execute("UPDATE goods SET v = 'moved' WHERE id = 1", [])
        .unwrap();
    let job = exported(&conn, &options);
    assert_shipped(
        &job,
        "goods",
        incremental(1, counts!(source_rows: 1, updates: 1)),
    );
    assert_same_rows(&pg, &schema, &conn, "goods");

    // A column added while tracked.
    conn.execute_batch("ALTER TABLE goods ADD COLUMN note TEXT")
        .unwrap();
    let error = export_error(&conn, &options);
    assert!(
        error.contains("goods") && error.contains("cloud_sync_track('goods')"),
        "{error}"
    );
    let retracked = track(&conn, "goods");
    assert_eq!(retracked["status"], "re-tracked", "{retracked}");
    assert_eq!(watermarks(&conn), 0, "re-tracking kept a watermark");
    admin(&pg)
        .batch_execute(&format!("ALTER TABLE {schema}.goods ADD COLUMN note text"))
        .unwrap();
    conn.execute("UPDATE goods SET note = 'noted' WHERE id = 2", [])
        .unwrap();
    let job = exported(&conn, &options);
    assert_shipped(
        &job,
        "goods",
        full(counts!(source_rows: 3, updates: 1, unchanged: 2)),
    );
    let note: Option<String> = remote_value(
        &pg,
        &format!("SELECT note FROM {schema}.goods WHERE id = 2"),
    );
    assert_eq!(note.as_deref(), Some("noted"));

    // A trigger dropped by hand: changes would be missed, so the export refuses.
    let trigger = retracked["triggers"][1].as_str().unwrap().to_string();
    conn.execute_batch(&format!("DROP TRIGGER \"{trigger}\""))
        .unwrap();
    let error = export_error(&conn, &options);
    assert!(
        error.contains("goods") && error.contains("cloud_sync_track('goods')"),
        "{error}"
    );
    assert_eq!(track(&conn, "goods")["status"], "re-tracked");
    assert_eq!(triggers(&conn, Some("goods")), 3);
    assert_eq!(exported(&conn, &options)["status"], "succeeded");
}

#[test]
fn track_refuses_what_it_cannot_track_and_tracking_twice_changes_nothing() {
    let (dir, conn, _pg) = with_saved_connection("trk_errors", false);
    conn.execute_batch(
        "CREATE TABLE logbook (line TEXT);
         CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);
         CREATE VIRTUAL TABLE docs USING fts5(body);",
    )
    .unwrap();
    let nothing_tracked = |conn: &Connection| {
        assert_eq!(
            int_of(conn, "SELECT count(*) FROM cloud_sync_tracked_tables"),
            0
        );
        assert_eq!(triggers(conn, None), 0);
    };
    let e = error_of(&conn, "SELECT cloud_sync_track('logbook')");
    assert!(
        e.contains("logbook") && e.contains("needs a primary key"),
        "{e}"
    );
    let e = error_of(&conn, "SELECT cloud_sync_track('nope')");
    assert!(
        e.contains("nope") && (e.contains("no such table") || e.contains("does not exist")),
        "{e}"
    );
    for name in [
        "cloud_sync_jobs",
        "cloud_sync_changes",
        "sqlite_sequence",
        "docs",
        "docs_content",
    ] {
        let e = error_of(&conn, &format!("SELECT cloud_sync_track('{name}')"));
        // cloud_sync_track has no `tables` option: the reason must be the table's own.
        assert!(e.contains(name) && !e.contains("option"), "{name}: {e}");
    }
    let e = error_of(&conn, "SELECT cloud_sync_track('docs')");
    assert!(e.contains("virtual"), "{e}");
    nothing_tracked(&conn);

    let first = track(&conn, "items");
    assert_eq!(first["status"], "tracked");
    conn.execute("INSERT INTO items VALUES (1, 'kept')", [])
        .unwrap();
    let trigger_sql = || -> Vec<(String, String)> {
        rows_of(
            &conn,
            "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name",
        )
    };
    let before = trigger_sql();
    let again = track(&conn, "items");
    assert_eq!(again["status"], "already tracked", "{again}");
    assert_eq!(again["tracking_id"], first["tracking_id"]);
    assert_eq!(before, trigger_sql());
    assert_eq!(changes(&conn, "items"), change_list(&[("1", "insert")]));

    // A read-only connection cannot start tracking.
    conn.execute_batch("CREATE TABLE later (id INTEGER PRIMARY KEY)")
        .unwrap();
    let readonly = open_with(&dir.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY);
    let e = error_of(&readonly, "SELECT cloud_sync_track('later')");
    assert!(e.contains("read-only"), "{e}");
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_tracked_tables"),
        1
    );
}

#[test]
fn export_modes_are_validated_and_full_exports_propagate_deletes_when_asked() {
    let (_dir, conn, pg, schema) = with_fresh_schema("trk_modes", "t_trk_modes");
    items(&conn, 4);
    conn.execute_batch(
        "CREATE TABLE plain (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO plain VALUES (1, 'p');",
    )
    .unwrap();
    let queued = job_count(&conn);
    for (options, says) in [
        (
            json!({"schema": schema, "mode": "incremental", "tables": ["items"]}),
            "items",
        ),
        (json!({"schema": schema, "mode": "partial"}), "mode"),
        (
            json!({"schema": schema, "propagate_deletes": "yes"}),
            "propagate_deletes",
        ),
    ] {
        let e = refusal_of(&conn, &options);
        assert!(e.contains(says), "{options}: {e}");
    }
    assert_eq!(job_count(&conn), queued, "a refused export was queued");

    // Tracked but never exported: incremental is impossible, and says so when it runs.
    track(&conn, "items");
    let job = run_dry_run(
        &conn,
        &json!({"schema": schema, "mode": "incremental", "tables": ["items"], "max_attempts": 1}),
    );
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("items"), "{job}");
    // Still untracked tables in an incremental export are refused when queued.
    let e = refusal_of(&conn, &json!({"schema": schema, "mode": "incremental"}));
    assert!(e.contains("plain"), "{e}");

    let options = json!({"schema": schema});
    exported(&conn, &options);
    admin(&pg)
        .batch_execute(&format!(
            "INSERT INTO {schema}.items VALUES (99, 'remote only');
             INSERT INTO {schema}.plain VALUES (99, 'remote only');"
        ))
        .unwrap();

    // Incremental without propagate_deletes: the local delete stays local.
    conn.execute("DELETE FROM items WHERE id = 1", []).unwrap();
    let job = exported(
        &conn,
        &json!({"schema": schema, "propagate_deletes": false}),
    );
    assert_shipped(&job, "items", incremental(1, counts!(source_rows: 1)));
    let ids: Vec<i64> = remote_id_rows(&pg, &schema, "items")
        .iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 99]);

    // An explicit full export of a tracked table with a watermark, deleting what is only remote.
    let job = exported(&conn, &full_with_deletes(&schema));
    assert_shipped(
        &job,
        "items",
        full(counts!(source_rows: 3, unchanged: 3, deletes: 2, remote_only: Some(2))),
    );
    assert_shipped(
        &job,
        "plain",
        full(counts!(source_rows: 1, unchanged: 1, deletes: 1, remote_only: Some(1))),
    );
    assert_same_rows(&pg, &schema, &conn, "items");
    assert_same_rows(&pg, &schema, &conn, "plain");
    assert_eq!(
        watermark(&conn, "items", "prod", &schema),
        Some(last_seq(&conn))
    );
}

#[test]
fn writers_without_the_extension_record_changes_and_the_triggers_survive_reopening() {
    let (dir, conn, pg, schema) = tracked_and_exported("trk_plain", "t_trk_plain", 3);
    let path = dir.db();
    drop(conn);

    let plain = Connection::open(&path).unwrap();
    plain
        .execute_batch(
            "INSERT INTO items VALUES (4, 'plain'); UPDATE items SET v = 'edited' WHERE id = 1;
             DELETE FROM items WHERE id = 2; VACUUM;",
        )
        .unwrap();
    drop(plain);

    let conn = open(&path);
    assert_eq!(
        changes(&conn, "items"),
        change_list(&[("4", "insert"), ("1", "update"), ("2", "delete")])
    );
    drop(conn);
    let plain = Connection::open(&path).unwrap();
    plain
        .execute("UPDATE items SET v = 'again' WHERE id = 3", [])
        .unwrap();
    drop(plain);

    let conn = open(&path);
    assert_eq!(triggers(&conn, Some("items")), 3);
    exported_items(
        &conn,
        &pg,
        &schema,
        incremental(
            4,
            counts!(source_rows: 4, inserts: 1, updates: 2, deletes: 1),
        ),
    );
}

#[test]
fn jobs_refuse_to_run_inside_an_open_transaction_and_tracking_follows_it() {
    let (_dir, conn, pg, schema) = with_fresh_schema("trk_txn", "t_trk_txn");
    items(&conn, 2);
    let id = queue_confirmed_export(&conn, &json!({"schema": schema}));

    for begin in ["BEGIN", "SAVEPOINT outer_work"] {
        conn.execute_batch(begin).unwrap();
        for sql in [
            format!("SELECT cloud_sync_run({id})"),
            "SELECT cloud_sync_run_jobs()".to_string(),
        ] {
            let e = error_of(&conn, &sql);
            assert!(e.contains("transaction"), "{begin}; {sql}: {e}");
        }
        assert_eq!(job_status(&conn, id), "queued");
        conn.execute_batch("ROLLBACK").unwrap();
    }
    assert!(!remote_table_exists(&pg, &format!("{schema}.items")));
    let job = run_job(&conn, &id.to_string());
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_same_rows(&pg, &schema, &conn, "items");

    // Tracking is local: it commits or rolls back with the application's transaction.
    conn.execute_batch("BEGIN").unwrap();
    assert_eq!(track(&conn, "items")["status"], "tracked");
    conn.execute_batch("ROLLBACK").unwrap();
    assert_eq!(triggers(&conn, None), 0);
    assert_eq!(int_of(&conn, "SELECT count(*) FROM cloud_sync_tracked"), 0);
    conn.execute_batch("BEGIN").unwrap();
    assert_eq!(track(&conn, "items")["status"], "tracked");
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(int_of(&conn, "SELECT count(*) FROM cloud_sync_tracked"), 1);
}

#[test]
fn re_saving_a_connection_elsewhere_or_deleting_it_drops_its_watermarks() {
    let (_dir, conn, pg) = with_saved_connection("trk_resave", false);
    let p = fresh_schema(&pg, "t_trk_resave_p");
    let o = fresh_schema(&pg, "t_trk_resave_o");
    save(&conn, "other", &pg.verified_url());
    items(&conn, 3);
    track(&conn, "items");
    exported_on(&conn, "prod", &json!({"schema": p}));
    exported_on(&conn, "other", &json!({"schema": o}));
    assert_eq!(watermarks(&conn), 2);

    // The same target saved again keeps the watermark.
    save(&conn, "prod", &pg.verified_url());
    assert!(watermark(&conn, "items", "prod", &p).is_some());
    // Another target (the pooler's port): the watermark no longer says what is there.
    save(
        &conn,
        "other",
        &pg.url("localhost", pg.bouncer_port, "sslmode=require"),
    );
    assert_eq!(watermark(&conn, "items", "other", &o), None);
    assert!(watermark(&conn, "items", "prod", &p).is_some());
    conn.execute("UPDATE items SET v = 'x' WHERE id = 1", [])
        .unwrap();
    let job = exported_on(&conn, "other", &json!({"schema": o}));
    assert_eq!(shipped(&job, "items").mode, "full", "{job}");
    let job = exported_on(&conn, "prod", &json!({"schema": p}));
    assert_shipped(
        &job,
        "items",
        incremental(1, counts!(source_rows: 1, updates: 1)),
    );

    int_of(&conn, "SELECT cloud_sync_delete('other')");
    assert_eq!(watermark(&conn, "items", "other", &o), None);
    assert_eq!(watermarks(&conn), 1);
    // With only `prod` left, its exports alone decide what is pruned.
    conn.execute("UPDATE items SET v = 'y' WHERE id = 2", [])
        .unwrap();
    exported_on(&conn, "prod", &json!({"schema": p}));
    assert_eq!(pending(&conn, "items"), 0);
}
