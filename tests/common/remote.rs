//! The PostgreSQL side of a test: a superuser session to set up and look, fresh schemas (exports
//! lock per schema, so each test works in its own), and what landed there.

use postgres::types::FromSqlOwned;
use postgres::{Client, Row};

use super::Pg;

/// A superuser session on the test server, for setting up and checking what landed remotely.
pub fn admin(pg: &Pg) -> Client {
    Client::connect(&pg.admin, postgres::NoTls).expect("admin connection")
}

/// Drops and creates the remote schema `schema`, owned by the test user; returns its name.
pub fn fresh_schema(pg: &Pg, schema: &str) -> String {
    admin(pg)
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema} AUTHORIZATION {};",
            pg.user
        ))
        .unwrap();
    schema.to_string()
}

/// Drops the remote schema `schema` if it exists, so a test starts without it; returns its name.
pub fn missing_schema(pg: &Pg, schema: &str) -> String {
    admin(pg)
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            schema.replace('"', "\"\"")
        ))
        .unwrap();
    schema.to_string()
}

/// The owner of the remote schema `schema`, `None` when there is no such schema.
pub fn schema_owner(pg: &Pg, schema: &str) -> Option<String> {
    admin(pg)
        .query_opt(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .unwrap()
        .map(|row| row.get(0))
}

/// Runs `sql` in `schema` as the test user, so the tables it creates are the user's, as if the
/// application's own migrations had made them.
pub fn as_test_user(pg: &Pg, schema: &str, sql: &str) {
    admin(pg)
        .batch_execute(&format!(
            "SET search_path = {schema}; SET ROLE {}; {sql}",
            pg.user
        ))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every row `sql` returns remotely, each read by `read`.
pub fn remote_rows<T>(pg: &Pg, sql: &str, read: impl Fn(&Row) -> T) -> Vec<T> {
    admin(pg)
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(read)
        .collect()
}

/// The first column of every row `sql` returns remotely.
pub fn remote_column<T: FromSqlOwned>(pg: &Pg, sql: &str) -> Vec<T> {
    remote_rows(pg, sql, |r| r.get(0))
}

/// The one value `sql` returns remotely.
pub fn remote_value<T: FromSqlOwned>(pg: &Pg, sql: &str) -> T {
    admin(pg)
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Whether the remote table `schema.table` exists.
pub fn remote_table_exists(pg: &Pg, table: &str) -> bool {
    remote_value(pg, &format!("SELECT to_regclass('{table}') IS NOT NULL"))
}

/// A session holding an ACCESS EXCLUSIVE lock on the remote `table` until it ends its
/// transaction (ROLLBACK or COMMIT) or is dropped: a sync that needs the table waits meanwhile.
pub fn locked(pg: &Pg, table: &str) -> Client {
    let mut locker = admin(pg);
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;"
        ))
        .unwrap();
    locker
}
