//! Shared by the integration tests: where the built extension is, the PostgreSQL that
//! scripts/test.sh started, and hosts to load the extension into. The submodules hold what
//! several test files set up, read and check: the local database (`local`), the remote one
//! (`remote`), jobs (`jobs`) and what their summaries say (`summary`), edge values for round
//! trips (`edge`), a TCP proxy to the server that can stall (`proxy`), and one that counts
//! round trips (`counting_proxy`).
#![allow(dead_code)]

pub mod counting_proxy;
pub mod edge;
pub mod jobs;
pub mod local;
pub mod proxy;
pub mod remote;
pub mod summary;

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

    /// The server through pgbouncer (transaction mode), TLS required.
    pub fn pooled_url(&self) -> String {
        self.url("localhost", self.bouncer_port, "sslmode=require")
    }

    /// The test user's real password on `port` of 127.0.0.1, where nothing should listen: what
    /// a refused connection looks like, with a password worth leaking.
    pub fn closed_port_url(&self, port: u16) -> String {
        self.url("127.0.0.1", port, "sslmode=disable&connect_timeout=5")
    }

    /// Panics if `text` (`what` it is) holds the test password, plain or percent-encoded.
    pub fn assert_no_password(&self, text: &str, what: &str) {
        for secret in [self.password.clone(), percent_encode(&self.password)] {
            assert!(
                !text.contains(&secret),
                "{what} shows the password ({secret}):\n{text}"
            );
        }
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

/// A port on 127.0.0.1 on which nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

static KEY_ONCE: Once = Once::new();

/// Opens `path` in a rusqlite host and loads the extension, with `KEY` configured.
pub fn open(path: &Path) -> Connection {
    open_with(path, OpenFlags::default())
}

/// `open` with `flags` (read-only, for instance).
pub fn open_with(path: &Path, flags: OpenFlags) -> Connection {
    KEY_ONCE.call_once(|| std::env::set_var("CLOUD_SYNC_ENCRYPTION_KEY", KEY));
    let conn = Connection::open_with_flags(path, flags).unwrap();
    load(&conn).unwrap();
    conn
}

/// An in-memory database with the extension loaded.
pub fn open_in_memory() -> Connection {
    open(Path::new(":memory:"))
}

/// Loads the extension into `conn` (again, if it already is).
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

/// A fresh database file in its own temporary directory (`Dir::db`), opened with `open`.
pub fn open_temp(name: &str) -> (tempdir::Dir, Connection) {
    let (dir, path) = temp_db(name);
    let conn = open(&path);
    (dir, conn)
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

        /// The database file `temp_db` made in this directory.
        pub fn db(&self) -> PathBuf {
            self.0.join("app.db")
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

impl ShellRun {
    /// Checks that the run (`case`) failed, saying `expected` on stderr.
    pub fn assert_failed_with(&self, case: &str, expected: &str) {
        assert!(!self.ok, "{case}: it succeeded: {}", self.stdout);
        assert!(self.stderr.contains(expected), "{case}: {}", self.stderr);
    }
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
