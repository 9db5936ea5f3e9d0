//! Export and import against a real Citus cluster (a coordinator and two workers, from the kit
//! that scripts/test.sh starts when CLOUD_SYNC_CITUS_KIT names one), for every kind of Citus
//! table: coordinator-local, hash-distributed, reference, and schema-sharded. Each kind goes
//! through the same flow, with exact values after each step. Without the cluster every test
//! says it was skipped, and why.

mod common;

use common::jobs::{confirmed_export, dry_run, import, quoted, run_dry_run};
use common::local::{error_of, json_of, rows_of, save};
use common::summary::{assert_shipped, counts, full, incremental, Shipped};
use common::{open_temp, tempdir};
use postgres::{Client, NoTls};
use rusqlite::Connection;
use serde_json::{json, Value};

/// The coordinator's port, or `None` (after saying so) when no Citus cluster was started.
fn citus_port(test: &str) -> Option<u16> {
    match std::env::var("CLOUD_SYNC_TEST_CITUS_PORT") {
        Ok(port) => Some(port.parse().expect("CLOUD_SYNC_TEST_CITUS_PORT is a port")),
        Err(_) => {
            println!(
                "{test}: skipped: no Citus cluster (scripts/test.sh starts one when \
                 CLOUD_SYNC_CITUS_KIT names the Citus kit folder)"
            );
            None
        }
    }
}

/// A superuser session on the coordinator, to set up and to look.
fn coordinator(port: u16) -> Client {
    Client::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        NoTls,
    )
    .expect("connection to the Citus coordinator")
}

/// A fresh local database whose saved connection `prod` leads to the coordinator.
fn local_db(name: &str, port: u16) -> (tempdir::Dir, Connection) {
    let (dir, conn) = open_temp(name);
    save(
        &conn,
        "prod",
        &format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
    );
    (dir, conn)
}

/// The kinds of table Citus has, each made from a plain table in the schema.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Local,
    Distributed,
    Reference,
    SchemaSharded,
}

impl Kind {
    /// Creates `schema` and in it `items`, a table of this kind with a serial key.
    fn create(self, citus: &mut Client, schema: &str) {
        let sharded = matches!(self, Kind::SchemaSharded);
        citus
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE;
                 SET citus.enable_schema_based_sharding = {sharded};
                 CREATE SCHEMA {schema};
                 RESET citus.enable_schema_based_sharding;
                 CREATE TABLE {schema}.items (id bigserial PRIMARY KEY, name text NOT NULL,
                                              qty bigint, price double precision);"
            ))
            .unwrap();
        let make = match self {
            Kind::Local | Kind::SchemaSharded => return,
            Kind::Distributed => "create_distributed_table($1::text::regclass, 'id')",
            Kind::Reference => "create_reference_table($1::text::regclass)",
        };
        citus
            .execute(&format!("SELECT {make}"), &[&format!("{schema}.items")])
            .unwrap();
    }

    /// What Citus says the table is: its partition method and replication model, if any.
    fn expected_catalog(self) -> Option<(&'static str, &'static str)> {
        match self {
            Kind::Local => None,
            Kind::Distributed => Some(("h", "s")),
            Kind::Reference => Some(("n", "t")),
            Kind::SchemaSharded => Some(("n", "s")),
        }
    }
}

type Row = (i64, String, Option<i64>, Option<f64>);

fn local_items(conn: &Connection) -> Vec<Row> {
    rows_of(conn, "SELECT id, name, qty, price FROM items ORDER BY id")
}

fn remote_items(citus: &mut Client, schema: &str) -> Vec<Row> {
    citus
        .query(
            &format!("SELECT id, name, qty, price FROM {schema}.items ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// A dry run that must predict `expected` and leave the remote rows as they were, then the
/// export confirming it, which must do `expected`.
fn dry_run_then_export(
    conn: &Connection,
    citus: &mut Client,
    schema: &str,
    options: &Value,
    expected: Shipped,
) {
    let before = remote_items(citus, schema);
    let dry = dry_run(conn, options);
    assert_shipped(&dry, "items", expected.clone());
    assert_eq!(remote_items(citus, schema), before, "the dry run wrote");
    let job = confirmed_export(conn, options, &dry);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_shipped(&job, "items", expected);
}

/// Every step of the flow on a table of `kind`: dry run, export, unchanged re-export, 10%
/// changed, full with deletes, incremental, import; the remote holds the local rows exactly
/// after each export, and an import gives them back exactly.
fn flow(kind: Kind, test: &str) {
    let Some(port) = citus_port(test) else {
        return;
    };
    let schema = format!("t_citus_{}", format!("{kind:?}").to_lowercase());
    let mut citus = coordinator(port);
    kind.create(&mut citus, &schema);
    let catalog: Option<(String, String)> = citus
        .query_opt(
            "SELECT partmethod::text, repmodel::text FROM pg_dist_partition
             WHERE logicalrelid = $1::text::regclass",
            &[&format!("{schema}.items")],
        )
        .unwrap()
        .map(|r| (r.get(0), r.get(1)));
    let expected = kind.expected_catalog();
    assert_eq!(
        catalog.as_ref().map(|(m, r)| (m.as_str(), r.as_str())),
        expected
    );

    let (_dir, conn) = local_db(test, port);
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL);
         WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 200)
         INSERT INTO items SELECT x, 'item ' || x, CASE WHEN x % 7 = 0 THEN NULL ELSE x * 3 END,
                                  x * 0.25 FROM s;",
    )
    .unwrap();
    let options = json!({"schema": schema, "mode": "full"});
    let same = |citus: &mut Client, conn: &Connection, step: &str| {
        assert_eq!(remote_items(citus, &schema), local_items(conn), "{step}");
    };

    dry_run_then_export(
        &conn,
        &mut citus,
        &schema,
        &options,
        full(counts!(source_rows: 200, inserts: 200)),
    );
    same(&mut citus, &conn, "first export");

    // The coordinator's serial moved past the exported keys: its next insert takes the next one.
    let remote_id: i64 = citus
        .query_one(
            &format!("INSERT INTO {schema}.items (name) VALUES ('remote') RETURNING id"),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(remote_id, 201);

    dry_run_then_export(
        &conn,
        &mut citus,
        &schema,
        &options,
        full(counts!(source_rows: 200, unchanged: 200, remote_only: Some(1))),
    );

    conn.execute_batch("UPDATE items SET name = name || ' v2', qty = NULL WHERE id % 10 = 3")
        .unwrap();
    dry_run_then_export(
        &conn,
        &mut citus,
        &schema,
        &options,
        full(counts!(source_rows: 200, updates: 20, unchanged: 180, remote_only: Some(1))),
    );

    conn.execute_batch(
        "DELETE FROM items WHERE id IN (5, 50, 150);
         INSERT INTO items VALUES (300, 'new', 1, 0.5);",
    )
    .unwrap();
    let deleting = json!({"schema": schema, "mode": "full", "propagate_deletes": true});
    dry_run_then_export(
        &conn,
        &mut citus,
        &schema,
        &deleting,
        full(
            counts!(source_rows: 198, inserts: 1, unchanged: 197, deletes: 4, remote_only: Some(4)),
        ),
    );
    same(&mut citus, &conn, "full export with deletes");

    // Tracked and exported once in full, the table then goes incrementally.
    json_of(&conn, "SELECT cloud_sync_track('items')");
    let default = json!({"schema": schema});
    dry_run_then_export(
        &conn,
        &mut citus,
        &schema,
        &default,
        full(counts!(source_rows: 198, unchanged: 198)),
    );
    conn.execute_batch(
        "UPDATE items SET price = -1.5 WHERE id = 7; DELETE FROM items WHERE id = 8;
         INSERT INTO items VALUES (301, 'newer', NULL, NULL);",
    )
    .unwrap();
    dry_run_then_export(
        &conn,
        &mut citus,
        &schema,
        &default,
        incremental(
            3,
            counts!(source_rows: 3, inserts: 1, updates: 1, deletes: 1),
        ),
    );
    same(&mut citus, &conn, "incremental export");

    let (_dir2, fresh) = local_db(&format!("{test}-import"), port);
    let imported = import(
        &fresh,
        0,
        "skip",
        &json!({"schema": schema, "create_tables": true}),
    );
    assert_eq!(imported["status"], "succeeded", "{imported}");
    assert_eq!(local_items(&fresh), local_items(&conn), "import");
}

#[test]
fn a_coordinator_local_table_goes_through_every_step() {
    flow(Kind::Local, "citus_local");
}

#[test]
fn a_distributed_table_goes_through_every_step() {
    flow(Kind::Distributed, "citus_distributed");
}

#[test]
fn a_reference_table_goes_through_every_step() {
    flow(Kind::Reference, "citus_reference");
}

#[test]
fn a_schema_sharded_table_goes_through_every_step() {
    flow(Kind::SchemaSharded, "citus_schema_sharded");
}

/// A dry run's failure on Citus is the export's: both run the same statements.
#[test]
fn a_dry_run_fails_where_the_export_would() {
    let Some(port) = citus_port("citus_dry_run_fails") else {
        return;
    };
    let schema = "t_citus_refused";
    let mut citus = coordinator(port);
    Kind::Reference.create(&mut citus, schema);
    citus
        .batch_execute(&format!(
            "ALTER TABLE {schema}.items ADD CONSTRAINT cheap CHECK (price < 10)"
        ))
        .unwrap();
    let (_dir, conn) = local_db("citus_dry_run_fails", port);
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL);
         INSERT INTO items VALUES (1, 'cheap', 1, 1.0), (2, 'dear', 1, 99.0);",
    )
    .unwrap();
    let job = run_dry_run(&conn, &json!({"schema": schema}));
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("cheap") && error.contains("23514"),
        "{error}"
    );
}

/// Where each table of `schema` stands in Citus: (table, partition method, replication model,
/// distribution column, colocation id); a table Citus does not know is not listed.
fn citus_tables(
    citus: &mut Client,
    schema: &str,
) -> Vec<(String, String, String, Option<String>, i32)> {
    citus
        .query(
            "SELECT c.relname::text, p.partmethod::text, p.repmodel::text,
                    column_to_column_name(p.logicalrelid, p.partkey), p.colocationid
             FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
             WHERE c.relnamespace = $1::text::regnamespace ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// Local tables for the creation tests: `items` (keyed by id, with a unique name), `events`
/// (keyed by device and seq) and `countries`.
fn creation_tables(conn: &Connection) {
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER);
         INSERT INTO items VALUES (1, 'tea', 3), (2, 'coffee', NULL), (3, 'juice', 7);
         CREATE TABLE events (device INTEGER, seq INTEGER, body TEXT, PRIMARY KEY (device, seq));
         INSERT INTO events VALUES (1, 1, 'on'), (1, 2, 'off'), (2, 1, 'on');
         CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT);
         INSERT INTO countries VALUES ('fr', 'France'), ('jp', 'Japan');",
    )
    .unwrap();
}

/// An empty remote `schema` (a plain one), and a local database with `creation_tables`.
fn creation_setup(port: u16, test: &str, schema: &str) -> (Client, tempdir::Dir, Connection) {
    let mut citus = coordinator(port);
    citus
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .unwrap();
    let (dir, conn) = local_db(test, port);
    creation_tables(&conn);
    (citus, dir, conn)
}

#[test]
fn an_export_creates_distributed_and_reference_tables() {
    let Some(port) = citus_port("citus_create") else {
        return;
    };
    let schema = "t_citus_create";
    let (mut citus, _dir, conn) = creation_setup(port, "citus_create", schema);
    let options = json!({
        "schema": schema,
        "distribute": {"items": "id", "events": "device"},
        "reference": ["countries"],
        "colocate_with": {"items": "events"},
    });
    let dry = dry_run(&conn, &options);
    assert!(
        citus_tables(&mut citus, schema).is_empty(),
        "the dry run left Citus tables"
    );
    let note = "unique index on (name): Citus requires the distribution column id in every \
                unique constraint";
    assert_eq!(
        common::summary::table_of(&dry, "items")["not_created"],
        json!([note])
    );
    // The dry run previewed these Citus tables, not others.
    let mut other = options.clone();
    other["reference"] = json!([]);
    other["confirm"] = dry["id"].clone();
    let refused = error_of(
        &conn,
        &format!("SELECT cloud_sync_export('prod', 0, {})", quoted(&other)),
    );
    assert!(
        refused.contains("other distribute, reference or colocate_with options"),
        "{refused}"
    );
    let job = confirmed_export(&conn, &options, &dry);
    assert_eq!(job["status"], "succeeded", "{job}");
    let tables = citus_tables(&mut citus, schema);
    let kinds: Vec<(&str, &str, &str, Option<&str>)> = tables
        .iter()
        .map(|t| (t.0.as_str(), t.1.as_str(), t.2.as_str(), t.3.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("countries", "n", "t", None),
            ("events", "h", "s", Some("device")),
            ("items", "h", "s", Some("id")),
        ]
    );
    assert_eq!(tables[1].4, tables[2].4, "items is colocated with events");

    let remote: Vec<(i64, String, Option<i64>)> = citus
        .query(
            &format!("SELECT id, name, qty FROM {schema}.items ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let local: Vec<(i64, String, Option<i64>)> =
        rows_of(&conn, "SELECT id, name, qty FROM items ORDER BY id");
    assert_eq!(remote, local);
    let events: i64 = citus
        .query_one(&format!("SELECT count(*) FROM {schema}.events"), &[])
        .unwrap()
        .get(0);
    assert_eq!(events, 3);

    // The tables exist now: the next export upserts into them as they are.
    let again = dry_run(&conn, &options);
    assert_shipped(
        &again,
        "countries",
        full(counts!(source_rows: 2, unchanged: 2)),
    );
}

#[test]
fn a_distribution_column_outside_the_key_is_a_problem_of_the_dry_run() {
    let Some(port) = citus_port("citus_bad_column") else {
        return;
    };
    let schema = "t_citus_bad_column";
    let (mut citus, _dir, conn) = creation_setup(port, "citus_bad_column", schema);
    let dry = dry_run(
        &conn,
        &json!({"schema": schema, "tables": ["events"], "distribute": {"events": "body"}}),
    );
    let problems = common::summary::listed_problems(&dry);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("\"body\"")
            && problems[0]
                .contains("the distribution column body is not part of the key (device, seq)"),
        "{problems:?}"
    );
    assert!(citus_tables(&mut citus, schema).is_empty());
}

/// Runs on the plain PostgreSQL of scripts/test.sh, Citus kit or not.
#[test]
fn citus_options_on_a_plain_postgres_are_refused() {
    let (_dir, conn, _pg, schema) =
        common::local::with_fresh_schema("citus_refused_plain", "t_citus_plain");
    creation_tables(&conn);
    for options in [
        json!({"schema": schema, "distribute": {"items": "id"}}),
        json!({"schema": schema, "reference": ["countries"]}),
    ] {
        let job = run_dry_run(&conn, &options);
        assert_eq!(job["status"], "failed", "{job}");
        let error = job["error"].as_str().unwrap();
        assert!(
            error.contains("the remote database has no citus extension"),
            "{error}"
        );
    }
}
