//! A hot standby of the test server (pg_basebackup -R, streaming from it): an export to it is
//! refused for good with a message that says it is a read replica, and an import from it works.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::jobs::{import, job_row, run_dry_run};
use common::local::{rows_of, save};
use common::remote::{admin, as_test_user, fresh_schema};
use common::Pg;
use postgres::{Client, NoTls};
use serde_json::json;

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().unwrap().stdout == b"0\n"
}

/// Runs `args` as the user postgres when this test runs as root (PostgreSQL refuses root).
fn as_postgres(args: &[&str]) {
    let mut command = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", args[0]]);
        c
    } else {
        Command::new(args[0])
    };
    let out = command.args(&args[1..]).current_dir("/").output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A standby of the test server on a free port, stopped and removed on drop.
struct Standby {
    dir: PathBuf,
    bin: String,
    port: u16,
}

impl Standby {
    fn start(pg: &Pg) -> Standby {
        let bin = std::env::var("CLOUD_SYNC_TEST_PG_BIN").expect("CLOUD_SYNC_TEST_PG_BIN");
        let test_dir = std::env::var("CLOUD_SYNC_TEST_DIR").expect("CLOUD_SYNC_TEST_DIR");
        let dir = Path::new(&test_dir).join(format!("standby-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        if running_as_root() {
            let chown = Command::new("chown").arg("postgres").arg(&dir).status();
            assert!(chown.unwrap().success());
        }
        let data = dir.join("data");
        let port = common::closed_port();
        as_postgres(&[
            &format!("{bin}/pg_basebackup"),
            "-D",
            data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            // Not the default spread checkpoint, which can take minutes.
            "--checkpoint=fast",
            "-h",
            &test_dir,
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
        ]);
        as_postgres(&[
            &format!("{bin}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-l",
            dir.join("log").to_str().unwrap(),
            "-o",
            &format!("-p {port} -k {}", dir.display()),
            "-w",
            "start",
        ]);
        Standby { dir, bin, port }
    }

    fn client(&self) -> Client {
        Client::connect(
            &format!(
                "host={} port={} user=postgres dbname=cloud_sync_test",
                self.dir.display(),
                self.port
            ),
            NoTls,
        )
        .expect("connection to the standby")
    }

    /// Waits until the standby has replayed the primary's current WAL position.
    fn catch_up(&self, pg: &Pg) {
        let lsn: String = admin(pg)
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .unwrap()
            .get(0);
        let mut standby = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !standby
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&lsn],
            )
            .unwrap()
            .get::<_, bool>(0)
        {
            assert!(Instant::now() < deadline, "the standby did not catch up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        as_postgres(&[
            &format!("{}/pg_ctl", self.bin),
            "-D",
            data.to_str().unwrap(),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_read_replica_is_refused_for_export_and_serves_imports() {
    let pg = common::pg();
    let schema = fresh_schema(&pg, "t_replica");
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE items (id bigint PRIMARY KEY, name text);
         INSERT INTO items VALUES (1, 'tea'), (2, NULL), (3, 'juice');",
    );
    let standby = Standby::start(&pg);
    standby.catch_up(&pg);
    let in_recovery: bool = standby
        .client()
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(in_recovery);
    let (_dir, conn) = common::open_temp("replica");
    save(
        &conn,
        "prod",
        &pg.url("localhost", standby.port, "sslmode=require"),
    );
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items VALUES (9, 'local');",
    )
    .unwrap();

    let job = run_dry_run(&conn, &json!({"schema": schema}));
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("read replica"), "{error}");
    assert_eq!(job_row(&conn, job["id"].as_i64().unwrap())["attempts"], 1);

    conn.execute("DELETE FROM items", []).unwrap();
    let imported = import(&conn, 0, "overwrite", &json!({"schema": schema}));
    assert_eq!(imported["status"], "succeeded", "{imported}");
    let rows: Vec<(i64, Option<String>)> = rows_of(&conn, "SELECT id, name FROM items ORDER BY id");
    assert_eq!(
        rows,
        [
            (1, Some("tea".into())),
            (2, None),
            (3, Some("juice".into()))
        ]
    );
}
