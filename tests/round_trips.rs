//! The round trips of a job, counted on the wire: every job runs through a proxy
//! (scripts/lib/delay_proxy.py) that counts how many times the client waited for the server's
//! answer, and each must stay within its budget (issue 14): a job's round trips grow with the
//! tables that have rows to send, not with the tables tracked. Nothing is timed.

mod common;

use common::counting_proxy::CountingProxy;
use common::jobs::{confirmed_export, dry_run, import, run_job};
use common::local::save;
use common::remote::fresh_schema;
use common::{open_temp, pg, sql_str};
use rusqlite::Connection;
use serde_json::{json, Value};

const TABLES: usize = 10;

/// An app of `TABLES` tracked tables of 20 rows each, saved connection `prod` through `proxy`.
fn app(name: &str, proxy: &CountingProxy) -> (common::tempdir::Dir, Connection) {
    let pg = pg();
    let (dir, conn) = open_temp(name);
    for t in 0..TABLES {
        conn.execute_batch(&format!(
            "CREATE TABLE t{t} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
             INSERT INTO t{t} SELECT i, 'row ' || i, i * 1.5 FROM n;
             SELECT cloud_sync_track('t{t}');"
        ))
        .unwrap();
    }
    save(&conn, "prod", &proxy.url(&pg));
    (dir, conn)
}

/// Runs `job` and returns its result and the round trips its connection made.
fn counted(proxy: &CountingProxy, job: impl FnOnce() -> Value) -> (Value, u64) {
    let before = proxy.closed();
    let result = job();
    assert_eq!(result["status"], "succeeded", "{result}");
    (result, proxy.round_trips_since(before))
}

fn assert_within(what: &str, round_trips: u64, budget: u64) {
    assert!(
        round_trips <= budget,
        "{what}: {round_trips} round trips, budget {budget}"
    );
    eprintln!("{what}: {round_trips} round trips (budget {budget})");
}

#[test]
fn exports_stay_within_their_round_trip_budgets() {
    let pg = pg();
    let proxy = CountingProxy::start(&pg);
    let (_dir, conn) = app("round_trips", &proxy);
    let options = json!({"schema": fresh_schema(&pg, "t_round_trips")});
    let per_table = TABLES as u64;

    let (dry, trips) = counted(&proxy, || dry_run(&conn, &options));
    assert_within("dry run of every table", trips, 10 + per_table);
    let (_, trips) = counted(&proxy, || confirmed_export(&conn, &options, &dry));
    assert_within("confirmed full export", trips, 10 + per_table);

    // Nothing changed: every table idle.
    let dry = dry_run(&conn, &options);
    let (job, trips) = counted(&proxy, || confirmed_export(&conn, &options, &dry));
    assert_within("incremental export with nothing to send", trips, 8);
    let tables = job["summary"]["tables"].as_array().unwrap();
    assert_eq!(tables.len(), TABLES, "{job}");
    assert!(tables
        .iter()
        .all(|t| t["mode"] == "incremental" && t["source_rows"] == 0));

    // One row of one table: only that table is touched.
    conn.execute_batch("UPDATE t3 SET price = price + 1 WHERE id = 7")
        .unwrap();
    let dry = dry_run(&conn, &options);
    let (job, trips) = counted(&proxy, || confirmed_export(&conn, &options, &dry));
    assert_within("incremental export of one changed row", trips, 11);
    assert_eq!(job["summary"]["totals"]["updates"], 1, "{job}");
    let remote: f64 =
        common::remote::remote_value(&pg, "SELECT price FROM t_round_trips.t3 WHERE id = 7");
    assert_eq!(remote, 7.0 * 1.5 + 1.0);
}

#[test]
fn a_full_re_export_of_every_table_stays_within_its_budget_too() {
    let pg = pg();
    let proxy = CountingProxy::start(&pg);
    let (_dir, conn) = app("round_trips_full", &proxy);
    let options = json!({"schema": fresh_schema(&pg, "t_round_trips_full")});
    let dry = dry_run(&conn, &options);
    confirmed_export(&conn, &options, &dry);
    // mode full: every table read, compared and upserted again, every one unchanged.
    let full = json!({"schema": options["schema"], "mode": "full"});
    let (dry, trips) = counted(&proxy, || dry_run(&conn, &full));
    assert_within("dry run of a full re-export", trips, 10 + TABLES as u64);
    let (job, trips) = counted(&proxy, || {
        run_job(
            &conn,
            &format!(
                "cloud_sync_export('prod', 0, {})",
                sql_str(
                    &json!({"schema": full["schema"], "mode": "full", "confirm": dry["id"]})
                        .to_string()
                )
            ),
        )
    });
    assert_within("full re-export", trips, 10 + TABLES as u64);
    assert_eq!(
        job["summary"]["totals"]["unchanged"],
        20 * TABLES as u64,
        "{job}"
    );
}

#[test]
fn imports_stay_within_their_round_trip_budgets() {
    let pg = pg();
    let proxy = CountingProxy::start(&pg);
    let (_dir, source) = app("round_trips_source", &proxy);
    let options = json!({"schema": fresh_schema(&pg, "t_round_trips_import")});
    let dry = dry_run(&source, &options);
    confirmed_export(&source, &options, &dry);

    // A new database with the same tables, empty.
    let (_dir2, conn) = open_temp("round_trips_import");
    for t in 0..TABLES {
        conn.execute_batch(&format!(
            "CREATE TABLE t{t} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);"
        ))
        .unwrap();
    }
    save(&conn, "prod", &proxy.url(&pg));
    let budget = 10 + TABLES as u64;
    let (_, trips) = counted(&proxy, || import(&conn, 1, "skip", &options));
    assert_within("import dry run", trips, budget);
    let (job, trips) = counted(&proxy, || import(&conn, 0, "skip", &options));
    assert_within("import", trips, budget);
    assert_eq!(
        job["summary"]["totals"]["inserts"],
        20 * TABLES as u64,
        "{job}"
    );
    let price: f64 = conn
        .query_row("SELECT price FROM t4 WHERE id = 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(price, 4.5);
}
