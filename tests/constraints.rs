//! Constraints and indexes of the tables cloud_sync creates, both ways, against the real
//! PostgreSQL with the built extension loaded into a rusqlite host: what translates is created
//! (and checked in the remote catalog or SQLite's pragmas), the rest is a "not created" note.

mod common;

use common::jobs::{dry_run, exported, import};
use common::local::{column_of, rows_of, with_fresh_schema, with_saved_connection};
use common::remote::{as_test_user, remote_column, remote_rows, remote_value};
use common::summary::{listed_problems, table_of};
use serde_json::{json, Value};

/// A parent (artist), a child (album) deleted with it, and a grandchild (track) that keeps its
/// album (NO ACTION): NOT NULL, defaults, UNIQUE, plain and unique indexes, foreign keys, and
/// what does not translate: an expression CHECK, CURRENT_TIMESTAMP, a partial and an
/// expression index.
const SCHEMA: &str = "
    PRAGMA foreign_keys = ON;
    CREATE TABLE artist (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        country TEXT NOT NULL DEFAULT 'it''s unknown',
        rating INTEGER DEFAULT 0 CHECK (rating >= 0),
        added TEXT DEFAULT CURRENT_TIMESTAMP);
    CREATE TABLE album (
        id INTEGER PRIMARY KEY,
        artist_id INTEGER NOT NULL REFERENCES artist (id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        year INTEGER,
        active INTEGER NOT NULL DEFAULT 1);
    CREATE INDEX album_by_year ON album (year DESC, title);
    CREATE UNIQUE INDEX album_artist_title ON album (artist_id, title);
    CREATE INDEX album_active ON album (title) WHERE active = 1;
    CREATE INDEX album_lower ON album (lower(title));
    CREATE TABLE track (
        id INTEGER PRIMARY KEY,
        album_id INTEGER REFERENCES album,
        name TEXT NOT NULL);
    INSERT INTO artist (id, name) VALUES (1, 'Ana'), (2, 'Bo');
    INSERT INTO album (id, artist_id, title, year) VALUES (10, 1, 'First', 2001), (20, 2, 'Second', 2002);
    INSERT INTO track (id, album_id, name) VALUES (100, 10, 'a'), (200, 20, 'b');";

fn notes(job: &Value, table: &str) -> Vec<String> {
    serde_json::from_value(table_of(job, table)["not_created"].clone()).unwrap_or_default()
}

#[test]
fn constraints_are_created_both_ways_and_the_rest_is_noted() {
    let (_dir, conn, pg, schema) = with_fresh_schema("constraints", "t_constraints");
    conn.execute_batch(SCHEMA).unwrap();
    let options = json!({"schema": schema});

    // The dry run lists what will not be created, as notes, not problems.
    let dry = dry_run(&conn, &options);
    assert_eq!(listed_problems(&dry), Vec::<String>::new(), "{dry}");
    assert_eq!(
        notes(&dry, "artist"),
        [
            "column added: DEFAULT CURRENT_TIMESTAMP: only number, string and boolean constants are \
             translated",
            "CHECK (rating >= 0): expression CHECKs are not translated",
        ]
    );
    assert_eq!(
        notes(&dry, "album"),
        [
            "CREATE INDEX album_active ON album (title) WHERE active = 1: partial indexes are \
             not translated",
            "CREATE INDEX album_lower ON album (lower(title)): indexes on expressions are not \
             translated",
        ]
    );
    assert_eq!(notes(&dry, "track"), Vec::<String>::new());
    // The reports show them too.
    let report = |format: &str| -> String {
        conn.query_row(
            &format!("SELECT cloud_sync_report({}, '{format}')", dry["id"]),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let json_report: Value = serde_json::from_str(&report("json")).unwrap();
    let artist = json_report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "artist")
        .unwrap();
    assert_eq!(artist["not_created"], json!(notes(&dry, "artist")));
    assert!(
        report("markdown").contains(
            "| `album` | `CREATE INDEX album_active ON album (title) WHERE active = 1: partial \
             indexes are not translated` |"
        ),
        "{}",
        report("markdown")
    );
    // Nothing of it stays after the dry run.
    let left: i64 = remote_value(
        &pg,
        &format!("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = '{schema}'"),
    );
    assert_eq!(left, 0);

    let job = exported(&conn, &options);
    assert_eq!(notes(&job, "album").len(), 2, "{job}");
    let constraints = remote_rows(
        &pg,
        &format!(
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE connamespace = '{schema}'::regnamespace AND contype <> 'n' ORDER BY 1, 2"
        ),
        |r| format!("{} {} {}", r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2)),
    );
    let s = &schema;
    assert_eq!(
        constraints,
        [
            format!("{s}.album album_artist_id_fkey FOREIGN KEY (artist_id) REFERENCES {s}.artist(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"),
            format!("{s}.album album_pkey PRIMARY KEY (id)"),
            format!("{s}.artist artist_name_key UNIQUE (name)"),
            format!("{s}.artist artist_pkey PRIMARY KEY (id)"),
            format!("{s}.track track_album_id_fkey FOREIGN KEY (album_id) REFERENCES {s}.album(id) DEFERRABLE INITIALLY DEFERRED"),
            format!("{s}.track track_pkey PRIMARY KEY (id)"),
        ]
    );
    let indexes: Vec<String> = remote_column(
        &pg,
        &format!("SELECT indexdef FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'album' ORDER BY indexname"),
    );
    assert_eq!(
        indexes,
        [
            format!("CREATE UNIQUE INDEX album_artist_title ON {s}.album USING btree (artist_id, title)"),
            format!("CREATE INDEX album_by_year ON {s}.album USING btree (year DESC, title)"),
            format!("CREATE UNIQUE INDEX album_pkey ON {s}.album USING btree (id)"),
        ]
    );
    let columns = remote_rows(
        &pg,
        &format!(
            "SELECT attrelid::regclass::text || '.' || attname, attnotnull, pg_get_expr(adbin, adrelid)
             FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
             WHERE attrelid IN ('{s}.artist'::regclass, '{s}.album'::regclass) AND attnum > 0
             ORDER BY attrelid::regclass::text DESC, attnum"
        ),
        |r| format!("{} {} {:?}", r.get::<_, String>(0), r.get::<_, bool>(1), r.get::<_, Option<String>>(2)),
    );
    assert_eq!(
        columns,
        [
            format!("{s}.artist.id true None"),
            format!("{s}.artist.name true None"),
            format!("{s}.artist.country true Some(\"'it''s unknown'::text\")"),
            format!("{s}.artist.rating false Some(\"0\")"),
            format!("{s}.artist.added false None"),
            format!("{s}.album.id true None"),
            format!("{s}.album.artist_id true None"),
            format!("{s}.album.title true None"),
            format!("{s}.album.year false None"),
            format!("{s}.album.active true Some(\"1\")"),
        ]
    );

    // Deletes in parent/child order: album is written before artist and track, so its deleted
    // rows go while their tracks are still there remotely, and a new album comes before its new
    // artist; the foreign keys are checked at commit.
    conn.execute_batch(
        "DELETE FROM track; DELETE FROM album WHERE id = 20; DELETE FROM artist WHERE id = 1;
         INSERT INTO artist (id, name) VALUES (3, 'Cy');
         INSERT INTO album (id, artist_id, title) VALUES (30, 3, 'Third');",
    )
    .unwrap();
    exported(&conn, &json!({"schema": schema, "propagate_deletes": true}));
    let left: Vec<String> = remote_column(
        &pg,
        &format!(
            "SELECT 'artist ' || id FROM {s}.artist UNION ALL SELECT 'album ' || id FROM {s}.album
             UNION ALL SELECT 'track ' || id FROM {s}.track ORDER BY 1"
        ),
    );
    assert_eq!(left, ["album 30", "artist 2", "artist 3"]);

    import_into_an_empty_database(&pg, &schema);
}

/// An import with create_tables into an empty database recreates what the export created,
/// and notes what the remote declares that SQLite cannot.
fn import_into_an_empty_database(pg: &common::Pg, schema: &str) {
    as_test_user(
        pg,
        schema,
        "CREATE TABLE extra (id bigint PRIMARY KEY, n integer CHECK (n > 0), label text,
                             made timestamptz DEFAULT now(), flag boolean NOT NULL DEFAULT true);
         CREATE INDEX extra_partial ON extra (label) WHERE n > 1;
         -- Two names Postgres tells apart and SQLite does not.
         CREATE INDEX \"By_Label\" ON extra (label);
         CREATE INDEX \"by_label\" ON extra (flag);",
    );
    let (_dir, conn, _pg) = with_saved_connection("constraints_import", false);
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let options = json!({"schema": schema, "create_tables": true});
    let job = import(&conn, 0, "skip", &options);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        notes(&job, "extra"),
        [
            format!("CREATE INDEX extra_partial ON {schema}.extra USING btree (label) WHERE (n > 1): only btree indexes on plain columns, without predicate, INCLUDE or collation, are translated"),
            "CHECK ((n > 0)): expression CHECKs are not translated".to_string(),
            "column made: DEFAULT now(): only number, string and boolean constants are translated"
                .to_string(),
            "index by_label: this import creates By_Label already, and SQLite names tables and indexes without regard to case".to_string(),
        ]
    );
    let extra_indexes: Vec<String> = column_of(
        &conn,
        "SELECT name FROM pragma_index_list('extra') WHERE origin = 'c'",
    );
    assert_eq!(extra_indexes, ["By_Label"]);
    assert_eq!(notes(&job, "album"), Vec::<String>::new());

    let indexes: Vec<(String, i64, String)> = rows_of(
        &conn,
        "SELECT name, \"unique\", origin FROM pragma_index_list('album') ORDER BY name",
    );
    assert_eq!(
        indexes,
        [
            ("album_artist_title".to_string(), 1, "c".to_string()),
            ("album_by_year".to_string(), 0, "c".to_string()),
        ]
    );
    let by_year: Vec<(String, i64)> = rows_of(
        &conn,
        "SELECT name, \"desc\" FROM pragma_index_xinfo('album_by_year') WHERE key ORDER BY seqno",
    );
    assert_eq!(by_year, [("year".to_string(), 1), ("title".to_string(), 0)]);
    let unique: Vec<(String, i64, String)> = rows_of(
        &conn,
        "SELECT name, \"unique\", origin FROM pragma_index_list('artist') WHERE origin = 'u'",
    );
    assert_eq!(unique.len(), 1, "{unique:?}");
    let foreign_keys: Vec<(String, String, String, String, String)> = rows_of(
        &conn,
        "SELECT \"table\", \"from\", \"to\", on_delete, on_update FROM pragma_foreign_key_list('album')",
    );
    assert_eq!(
        foreign_keys,
        [(
            "artist".to_string(),
            "artist_id".to_string(),
            "id".to_string(),
            "CASCADE".to_string(),
            "NO ACTION".to_string()
        )]
    );
    let sql: Vec<String> = column_of(
        &conn,
        "SELECT sql FROM sqlite_schema WHERE name IN ('album', 'track') ORDER BY name",
    );
    assert!(
        sql.iter()
            .all(|s| s.contains("DEFERRABLE INITIALLY DEFERRED")),
        "{sql:?}"
    );
    let columns: Vec<(String, i64, Option<String>)> = rows_of(
        &conn,
        "SELECT m.name || '.' || c.name, c.\"notnull\", c.dflt_value
         FROM sqlite_schema m, pragma_table_info(m.name) c
         WHERE m.name IN ('artist', 'extra') ORDER BY m.name, c.cid",
    );
    let shown: Vec<String> = columns
        .iter()
        .map(|(c, n, d)| format!("{c} {n} {d:?}"))
        .collect();
    assert_eq!(
        shown,
        [
            "artist.id 1 None",
            "artist.name 1 None",
            "artist.country 1 Some(\"'it''s unknown'\")",
            "artist.rating 0 Some(\"0\")",
            "artist.added 0 None",
            "extra.id 1 None",
            "extra.n 0 None",
            "extra.label 0 None",
            "extra.made 0 None",
            "extra.flag 1 Some(\"1\")",
        ]
    );
    // The foreign keys hold locally: a child without its parent is refused at commit.
    let orphan =
        conn.execute_batch("INSERT INTO album (id, artist_id, title) VALUES (99, 42, 'x')");
    assert!(
        orphan.is_err_and(|e| e.to_string().contains("FOREIGN KEY constraint failed")),
        "an orphan album was accepted"
    );
}

#[test]
fn foreign_keys_that_cannot_hold_remotely_are_notes() {
    let (_dir, conn, pg, schema) = with_fresh_schema("constraints_fk", "t_constraints_fk");
    conn.execute_batch(
        // An application that never turned foreign keys on, with a child row left behind.
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE parent (id INTEGER PRIMARY KEY, code TEXT);
         CREATE INDEX parent_pkey ON parent (code);
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent,
                             code TEXT REFERENCES parent (code), other_id INTEGER REFERENCES elsewhere);
         INSERT INTO parent VALUES (1, 'a');
         INSERT INTO child VALUES (1, 1, NULL, NULL), (2, 7, NULL, NULL);",
    )
    .unwrap();
    let job = exported(
        &conn,
        &json!({"schema": schema, "tables": ["parent", "child"]}),
    );
    assert_eq!(
        notes(&job, "child"),
        [
            "FOREIGN KEY (other_id) REFERENCES elsewhere: the referenced table does not exist or \
             has no primary key",
            "FOREIGN KEY (parent_id) REFERENCES parent (id): 1 local rows reference no row of \
             parent (PRAGMA foreign_key_check lists them)",
            "FOREIGN KEY (code) REFERENCES parent (code): the referenced columns are not the \
             referenced table's primary key or a unique constraint",
        ]
    );
    let foreign_keys: i64 = remote_value(
        &pg,
        &format!("SELECT count(*) FROM pg_constraint WHERE connamespace = '{schema}'::regnamespace AND contype = 'f'"),
    );
    assert_eq!(foreign_keys, 0);
    // An index named like the primary key Postgres makes gets the next free name.
    let indexes: Vec<String> = remote_column(
        &pg,
        &format!("SELECT indexname::text FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'parent' ORDER BY 1"),
    );
    assert_eq!(indexes, ["parent_pkey", "parent_pkey_2"]);
}
