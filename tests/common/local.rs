//! The application's SQLite database as a test sets it up and reads it: one value, one row or
//! every row of a query, the error of a call that must fail, the saved connections jobs use
//! (and fresh databases that have them), what cloud_sync stores, and how its functions are
//! registered.

use rusqlite::types::FromSql;
use rusqlite::{Connection, Row};
use serde_json::Value;

use super::{open_temp, pg, tempdir, Pg};

/// The one value `sql` returns.
pub fn value_of<T: FromSql>(conn: &Connection, sql: &str) -> T {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The one integer `sql` returns: a count, or the id of a job just queued.
pub fn int_of(conn: &Connection, sql: &str) -> i64 {
    value_of(conn, sql)
}

/// The JSON text `sql` returns, parsed.
pub fn json_of(conn: &Connection, sql: &str) -> Value {
    let text: String = value_of(conn, sql);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{sql} gave {text:?}: {e}"))
}

/// The one row `sql` returns, as a tuple.
pub fn row_of<T>(conn: &Connection, sql: &str) -> T
where
    T: for<'r> TryFrom<&'r Row<'r>, Error = rusqlite::Error>,
{
    conn.query_row(sql, [], |r| T::try_from(r))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row `sql` returns, each as a tuple.
pub fn rows_of<T>(conn: &Connection, sql: &str) -> Vec<T>
where
    T: for<'r> TryFrom<&'r Row<'r>, Error = rusqlite::Error>,
{
    conn.prepare(sql)
        .and_then(|mut stmt| stmt.query_map([], |r| T::try_from(r))?.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of every row `sql` returns.
pub fn column_of<T: FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql)
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The column names of the table or view `table`, in order.
pub fn column_names(conn: &Connection, table: &str) -> Vec<String> {
    column_of(
        conn,
        &format!(
            "SELECT name FROM pragma_table_info({}) ORDER BY cid",
            super::sql_str(table)
        ),
    )
}

/// The error message of `sql` (one value), which must fail.
pub fn error_of(conn: &Connection, sql: &str) -> String {
    match conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)) {
        Ok(v) => panic!("{sql} should fail, gave {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// `cloud_sync_save(name, url)`: the saved connection's id.
pub fn save(conn: &Connection, name: &str, url: &str) -> i64 {
    conn.query_row("SELECT cloud_sync_save(?1, ?2)", [name, url], |r| r.get(0))
        .unwrap_or_else(|e| panic!("cloud_sync_save({name}): {e}"))
}

/// Saves `name` pointing at a closed port (no server needed: saving does not connect).
pub fn save_dead(conn: &Connection, name: &str) -> i64 {
    let url = format!(
        "postgresql://someone:pw@127.0.0.1:{}/db?sslmode=disable&connect_timeout=5",
        super::closed_port()
    );
    save(conn, name, &url)
}

/// The id of the saved connection `name`.
pub fn connection_id(conn: &Connection, name: &str) -> i64 {
    int_of(
        conn,
        &format!(
            "SELECT id FROM cloud_sync_connections WHERE name = {}",
            super::sql_str(name)
        ),
    )
}

/// A database with local tables `items` (two rows) and `notes` (empty), and saved connections
/// `prod` and `other`, both pointing at closed ports: enough to queue jobs, never to run one.
pub fn with_dead_connections(name: &str) -> (tempdir::Dir, Connection) {
    let (dir, conn) = open_temp(name);
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items (name) VALUES ('a'), ('b');
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
    )
    .unwrap();
    save_dead(&conn, "prod");
    save_dead(&conn, "other");
    (dir, conn)
}

/// A fresh database with an empty local table `items` and the saved connection `dead`: the
/// test user's real password (so that a leak would show), on a port where nothing listens.
/// Returns that port too.
pub fn with_dead_server(name: &str) -> (tempdir::Dir, Connection, Pg, u16) {
    let pg = pg();
    let (dir, conn) = open_temp(name);
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    let port = super::closed_port();
    save(&conn, "dead", &pg.closed_port_url(port));
    (dir, conn, pg, port)
}

/// A fresh database whose saved connection `prod` leads to the test server: direct with TLS
/// verified, or through pgbouncer.
pub fn with_saved_connection(name: &str, pooled: bool) -> (tempdir::Dir, Connection, Pg) {
    let pg = pg();
    let (dir, conn) = open_temp(name);
    let url = if pooled {
        pg.pooled_url()
    } else {
        pg.verified_url()
    };
    save(&conn, "prod", &url);
    (dir, conn, pg)
}

/// `with_saved_connection` (direct) and the remote schema `schema`, new and empty.
pub fn with_fresh_schema(name: &str, schema: &str) -> (tempdir::Dir, Connection, Pg, String) {
    let (dir, conn, pg) = with_saved_connection(name, false);
    let schema = super::remote::fresh_schema(&pg, schema);
    (dir, conn, pg, schema)
}

/// Every text value cloud_sync keeps: all its tables and the job history view, to look for leaks.
pub fn all_stored_text(conn: &Connection) -> String {
    let mut tables: Vec<String> = column_of(
        conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'cloud_sync_%'",
    );
    tables.push("cloud_sync_jobs_vtab".into());
    let mut all = String::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                if let Ok(Some(text)) = row.get::<_, Option<String>>(i) {
                    all.push_str(&text);
                    all.push('\n');
                }
            }
        }
    }
    all
}

/// SQLite's function flag: views and triggers cannot call the function.
const DIRECTONLY: i64 = 0x80000;
/// SQLite's function flag: same arguments, same result.
const DETERMINISTIC: i64 = 0x800;

/// The (name, number of arguments) of every registered form of the functions `names`, after
/// checking that each is direct-only and not deterministic (they queue, run or read jobs).
pub fn direct_only_forms(conn: &Connection, names: &[&str]) -> Vec<(String, i64)> {
    let list = names.iter().map(|n| super::sql_str(n)).collect::<Vec<_>>();
    let forms: Vec<(String, i64, i64)> = rows_of(
        conn,
        &format!(
            "SELECT name, narg, flags FROM pragma_function_list WHERE name IN ({})
             ORDER BY name, narg",
            list.join(", ")
        ),
    );
    for (name, narg, flags) in &forms {
        assert!(
            flags & DIRECTONLY != 0 && flags & DETERMINISTIC == 0,
            "{name}/{narg}: {flags:#x}"
        );
    }
    forms
        .into_iter()
        .map(|(name, narg, _)| (name, narg))
        .collect()
}
