//! Shared by the integration tests: where the built extension is, the PostgreSQL that
//! scripts/test.sh started, and hosts to load the extension into.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

use rusqlite::{Connection, OpenFlags};

/// The key the in-process (rusqlite) tests run with.
pub const KEY: &str = "3f1c6a7e9b2d4c8e0a5f7b1d3e9c2a4b6d8f0e1c3a5b7d9f2e4c6a8b0d1f3e5a";
/// Another valid key, for wrong-key and rotation tests.
pub const OTHER_KEY: &str = "a9e1c3b5d7f9021436587a9bcdef0123456789abcdef0123456789abcdef0f1e";

/// The built extension: `CLOUD_SYNC_LIB`, or the .so next to this test binary's profile dir.
pub fn lib_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CLOUD_SYNC_LIB") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let lib = profile_dir.join("libcloud_sync.so");
    assert!(
        lib.exists(),
        "{} is missing: run cargo build first",
        lib.display()
    );
    lib
}

/// The PostgreSQL and pgbouncer started by scripts/test.sh.
pub struct Pg {
    pub host: String,
    pub port: u16,
    pub bouncer_port: u16,
    pub user: String,
    pub password: String,
    pub db: String,
    pub ca: String,
    pub other_ca: String,
    pub admin: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts PostgreSQL")
    })
}

pub fn pg() -> Pg {
    Pg {
        host: var("CLOUD_SYNC_TEST_PG_HOST"),
        port: var("CLOUD_SYNC_TEST_PG_PORT").parse().unwrap(),
        bouncer_port: var("CLOUD_SYNC_TEST_PGBOUNCER_PORT").parse().unwrap(),
        user: var("CLOUD_SYNC_TEST_PG_USER"),
        password: var("CLOUD_SYNC_TEST_PG_PASSWORD"),
        db: var("CLOUD_SYNC_TEST_PG_DB"),
        ca: var("CLOUD_SYNC_TEST_PG_CA"),
        other_ca: var("CLOUD_SYNC_TEST_OTHER_CA"),
        admin: var("CLOUD_SYNC_TEST_PG_ADMIN_URL"),
    }
}

pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Pg {
    /// A URL to `host:port` with the test user's password and extra query parameters.
    pub fn url(&self, host: &str, port: u16, query: &str) -> String {
        format!(
            "postgresql://{}:{}@{host}:{port}/{}?{query}",
            self.user,
            percent_encode(&self.password),
            self.db
        )
    }

    /// The direct server, TLS verified against the test CA.
    pub fn verified_url(&self) -> String {
        self.url(
            &self.host,
            self.port,
            &format!("sslmode=verify-full&sslrootcert={}", self.ca),
        )
    }

    /// Runs SQL as the superuser through psql and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([&self.admin, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

static KEY_ONCE: Once = Once::new();

/// Opens `path` in a rusqlite host and loads the extension, with `KEY` configured.
pub fn open(path: &Path) -> Connection {
    open_with(path, OpenFlags::default())
}

pub fn open_with(path: &Path, flags: OpenFlags) -> Connection {
    KEY_ONCE.call_once(|| std::env::set_var("CLOUD_SYNC_ENCRYPTION_KEY", KEY));
    let conn = Connection::open_with_flags(path, flags).unwrap();
    load(&conn).unwrap();
    conn
}

pub fn load(conn: &Connection) -> rusqlite::Result<()> {
    unsafe {
        conn.load_extension_enable()?;
        let result = conn.load_extension(lib_path(), None::<&str>);
        conn.load_extension_disable()?;
        result
    }
}

/// A fresh database file in its own temporary directory.
pub fn temp_db(name: &str) -> (tempdir::Dir, PathBuf) {
    let dir = tempdir::Dir::new(name);
    let path = dir.path().join("app.db");
    (dir, path)
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed on drop (no extra crate for something this small).
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Dir {
            let path = std::env::temp_dir().join(format!(
                "cloud_sync-{name}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The result of one sqlite3 shell run.
pub struct ShellRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `sql` through the sqlite3 shell on `db` after `.load`-ing the extension, with exactly
/// the key variables given in `env` (the others are removed).
pub fn shell(db: &Path, env: &[(&str, &str)], sql: &str) -> ShellRun {
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-batch").arg(db);
    for var in [
        "CLOUD_SYNC_ENCRYPTION_KEY",
        "CLOUD_SYNC_ENCRYPTION_KEY_FILE",
        "CLOUD_SYNC_ENCRYPTION_KEY_PREVIOUS",
        "CLOUD_SYNC_ENCRYPTION_KEY_PREVIOUS_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let script = format!(".bail on\n.load {}\n{sql}\n", lib_path().display());
    let out = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .expect("the sqlite3 shell runs");
    ShellRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// Single-quotes a string for SQL.
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A superuser session on the test server, for setting up and checking what landed remotely.
pub fn admin(pg: &Pg) -> postgres::Client {
    postgres::Client::connect(&pg.admin, postgres::NoTls).expect("admin connection")
}

/// A JSON value as a SQL string literal.
pub fn quoted(v: &serde_json::Value) -> String {
    sql_str(&v.to_string())
}

/// `SELECT cloud_sync_run(<sql>)`, parsed.
pub fn run_job(conn: &Connection, sql: &str) -> serde_json::Value {
    let text: String = conn
        .query_row(&format!("SELECT cloud_sync_run({sql})"), [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A dry run of an export to `prod` with `options`, then the full export that confirms it,
/// queued and not run; returns the export's job id.
pub fn queue_confirmed_export(conn: &Connection, options: &serde_json::Value) -> i64 {
    let dry = run_job(
        conn,
        &format!("cloud_sync_export('prod', 1, {})", quoted(options)),
    );
    assert_eq!(dry["status"], "succeeded", "{dry}");
    let mut confirmed = options.clone();
    confirmed["confirm"] = dry["id"].clone();
    conn.query_row(
        &format!(
            "SELECT cloud_sync_export('prod', 0, {})",
            quoted(&confirmed)
        ),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// A fresh database whose saved connection `prod` leads to the test server: direct with TLS
/// verified, or through pgbouncer.
pub fn with_saved_connection(name: &str, pooled: bool) -> (tempdir::Dir, Connection, Pg) {
    let pg = pg();
    let (dir, path) = temp_db(name);
    let conn = open(&path);
    let url = if pooled {
        pg.url("localhost", pg.bouncer_port, "sslmode=require")
    } else {
        pg.verified_url()
    };
    conn.query_row("SELECT cloud_sync_save('prod', ?1)", [url], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap();
    (dir, conn, pg)
}

/// Drops and creates the remote schema `schema`, owned by the test user: exports lock per
/// schema, so each test works in its own.
pub fn fresh_schema(pg: &Pg, schema: &str) -> String {
    admin(pg)
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema} AUTHORIZATION {};",
            pg.user
        ))
        .unwrap();
    schema.to_string()
}

/// Every text value cloud_sync keeps: all its tables and the job history view, to look for leaks.
pub fn all_stored_text(conn: &Connection) -> String {
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'cloud_sync_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
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
