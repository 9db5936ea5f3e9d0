//! The built extension in the sqlite3 shell, one process per scenario so each can run with its
//! own key environment: key forms, wrong and missing keys, tampering, rotation; and loads that
//! fail, after which the shell must live on.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use common::{lib_path, pg, shell, sql_str, temp_db, KEY, OTHER_KEY};

const KEY_VAR: &str = "CLOUD_SYNC_ENCRYPTION_KEY";
const FILE_VAR: &str = "CLOUD_SYNC_ENCRYPTION_KEY_FILE";
const PREVIOUS_VAR: &str = "CLOUD_SYNC_ENCRYPTION_KEY_PREVIOUS";

fn save_sql(name: &str) -> String {
    format!(
        "SELECT cloud_sync_save('{name}', {});",
        sql_str(&pg().verified_url())
    )
}

fn count_connections(db: &std::path::Path) -> String {
    shell(db, &[], "SELECT count(*) FROM cloud_sync_connections;").stdout
}

#[test]
fn the_shell_loads_the_extension_and_runs_the_walkthrough_calls() {
    let (_dir, db) = temp_db("shell");
    let run = shell(
        &db,
        &[(KEY_VAR, KEY)],
        &format!(
            "{}\nSELECT json_extract(cloud_sync_test('prod'), '$.verified');\n\
             SELECT display FROM cloud_sync_connections;\nSELECT cloud_sync_delete('prod');",
            save_sql("prod")
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(lines[1], "1", "verified");
    assert!(lines[2].contains(":***@"), "{}", lines[2]);
    assert_eq!(lines[3], "1");
}

#[test]
fn without_a_key_save_refuses_and_stores_nothing() {
    let (_dir, db) = temp_db("nokey");
    shell(&db, &[], &save_sql("prod"))
        .assert_failed_with("no key", "no encryption key is configured");
    assert_eq!(count_connections(&db), "0");
}

#[test]
fn every_malformed_key_form_is_refused_with_the_accepted_forms() {
    let (dir, db) = temp_db("badkeys");
    let b64_31 = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
    let cases: Vec<(&str, String)> = vec![
        ("too short", "short-key".into()),
        ("63 hex digits", KEY[..63].into()),
        ("64 chars, not hex", format!("{}zz", &KEY[..62])),
        ("base64 of 31 bytes", b64_31),
        ("all identical hex", "00".repeat(32)),
        ("all identical raw", "a".repeat(32)),
    ];
    for (what, key) in &cases {
        let run = shell(&db, &[(KEY_VAR, key.as_str())], &save_sql("prod"));
        run.assert_failed_with(what, "accepted forms are 64 hex digits");
        assert!(
            !run.stderr.contains(key.as_str()),
            "{what}: the key was echoed"
        );
    }
    let empty_file = dir.path().join("empty.key");
    std::fs::write(&empty_file, "\n").unwrap();
    let empty_file = empty_file.to_str().unwrap();
    for (case, env, expected) in [
        (
            "an empty key file",
            &[(FILE_VAR, empty_file)][..],
            "it is empty",
        ),
        (
            "a key and a key file",
            &[(KEY_VAR, KEY), (FILE_VAR, empty_file)],
            "set only one of them",
        ),
    ] {
        shell(&db, env, &save_sql("prod")).assert_failed_with(case, expected);
    }
    assert_eq!(count_connections(&db), "0");
}

#[test]
fn key_files_hold_hex_base64_or_raw_bytes() {
    let (dir, db) = temp_db("keyfiles");
    let raw: Vec<u8> = (1u8..=32).map(|b| b.wrapping_mul(37)).collect();
    let forms: Vec<(&str, Vec<u8>)> = vec![
        ("hex", format!("{KEY}\n").into_bytes()),
        (
            "base64",
            format!(
                "{}\n",
                base64::engine::general_purpose::STANDARD.encode(&raw)
            )
            .into_bytes(),
        ),
        ("raw", raw.clone()),
    ];
    for (form, content) in forms {
        let file = dir.path().join(format!("{form}.key"));
        std::fs::write(&file, content).unwrap();
        let file = file.to_str().unwrap();
        let run = shell(
            &db,
            &[(FILE_VAR, file)],
            &format!(
                "{}\nSELECT json_extract(cloud_sync_test('{form}'), '$.ok');",
                save_sql(form)
            ),
        );
        assert!(run.ok, "{form}: {}", run.stderr);
        assert!(run.stdout.ends_with('1'), "{form}: {}", run.stdout);
    }
}

#[test]
fn wrong_missing_tampered_and_swapped_ciphertexts_fail_clearly() {
    let (_dir, db) = temp_db("tamper");
    let saved = shell(
        &db,
        &[(KEY_VAR, KEY)],
        &format!("{}\n{}", save_sql("a"), save_sql("b")),
    );
    assert!(saved.ok, "{}", saved.stderr);

    for (case, env, sql, expected) in [
        (
            "the wrong key",
            &[(KEY_VAR, OTHER_KEY)][..],
            "SELECT cloud_sync_test('a');",
            "was encrypted with key id",
        ),
        (
            "no key",
            &[],
            "SELECT cloud_sync_test('a');",
            "no encryption key is configured",
        ),
        // One flipped character inside the base64 body.
        (
            "a flipped character",
            &[(KEY_VAR, KEY)],
            "UPDATE cloud_sync_connections SET connection_string_encrypted =
               substr(connection_string_encrypted, 1, 30)
               || CASE substr(connection_string_encrypted, 31, 1) WHEN 'A' THEN 'B' ELSE 'A' END
               || substr(connection_string_encrypted, 32)
             WHERE name = 'a';
             SELECT cloud_sync_test('a');",
            "failed its integrity check",
        ),
        // b's ciphertext copied into another row does not open there.
        (
            "b's ciphertext in a's row",
            &[(KEY_VAR, KEY)],
            "UPDATE cloud_sync_connections SET connection_string_encrypted =
               (SELECT connection_string_encrypted FROM cloud_sync_connections WHERE name = 'b')
             WHERE name = 'a';
             SELECT cloud_sync_test('a');",
            "failed its integrity check",
        ),
    ] {
        shell(&db, env, sql).assert_failed_with(case, expected);
    }
    let intact = shell(
        &db,
        &[(KEY_VAR, KEY)],
        "SELECT json_extract(cloud_sync_test('b'), '$.ok');",
    );
    assert_eq!(intact.stdout, "1", "{}", intact.stderr);
}

#[test]
fn rekey_moves_every_connection_to_the_new_key_or_changes_nothing() {
    let (_dir, db) = temp_db("rekey");
    assert!(
        shell(
            &db,
            &[(KEY_VAR, KEY)],
            &format!("{}\n{}", save_sql("a"), save_sql("b"))
        )
        .ok
    );
    let ciphertexts = || {
        shell(
            &db,
            &[],
            "SELECT group_concat(connection_string_encrypted) FROM cloud_sync_connections;",
        )
        .stdout
    };
    let before = ciphertexts();

    // Without the previous key nothing opens: an error naming the connection, nothing changed.
    shell(&db, &[(KEY_VAR, OTHER_KEY)], "SELECT cloud_sync_rekey();")
        .assert_failed_with("rekey without the previous key", "saved connection 'a'");
    assert_eq!(before, ciphertexts());

    let rotated = shell(
        &db,
        &[(KEY_VAR, OTHER_KEY), (PREVIOUS_VAR, KEY)],
        "SELECT cloud_sync_rekey();",
    );
    assert_eq!(rotated.stdout, "2", "{}", rotated.stderr);
    let works = shell(
        &db,
        &[(KEY_VAR, OTHER_KEY)],
        "SELECT json_extract(cloud_sync_test('b'), '$.ok');",
    );
    assert_eq!(works.stdout, "1", "{}", works.stderr);
    shell(&db, &[(KEY_VAR, KEY)], "SELECT cloud_sync_test('b');")
        .assert_failed_with("the old key", "was encrypted with key id");
}

/// Starts the sqlite3 shell on `db` with `.load` and then `SELECT cloud_sync_version()` as
/// start-up commands (whose errors do not stop the shell), reads `SELECT 1;` from standard
/// input, and lets it close the database and exit. A load that fails must leave nothing behind:
/// a function left registered would point into the library SQLite unloads, and the call, or the
/// close, would crash the shell.
fn assert_failed_load_leaves_the_shell_alive(db: &Path, reason: &str) {
    let out = Command::new("sqlite3")
        .arg("-batch")
        .arg("-cmd")
        .arg(format!(".load {}", lib_path().display()))
        .arg("-cmd")
        .arg("SELECT cloud_sync_version();")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"SELECT 1;\n")?;
            child.wait_with_output()
        })
        .expect("the sqlite3 shell runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the shell ended with {:?} (signal {:?}): {stderr}",
        out.status.code(),
        out.status.signal()
    );
    assert!(stderr.contains(reason), "{stderr}");
    assert!(
        stderr.contains("no such function: cloud_sync_version"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

#[test]
fn a_database_set_up_by_a_newer_cloud_sync_fails_the_load_and_the_shell_lives_on() {
    let (_dir, db) = temp_db("newer");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE cloud_sync_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)
               WITHOUT ROWID;
             INSERT INTO cloud_sync_meta VALUES ('schema_version', '99');",
        )
        .unwrap();
    assert_failed_load_leaves_the_shell_alive(
        &db,
        "this database was set up by a newer cloud_sync (schema version 99",
    );
}

#[test]
fn a_damaged_cloud_sync_meta_fails_the_load_and_the_shell_lives_on() {
    for (case, value) in [("no-version", None), ("not-a-number", Some("two"))] {
        let (_dir, db) = temp_db(case);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE cloud_sync_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)
               WITHOUT ROWID;",
        )
        .unwrap();
        if let Some(value) = value {
            conn.execute(
                "INSERT INTO cloud_sync_meta VALUES ('schema_version', ?1)",
                [value],
            )
            .unwrap();
        }
        let reason = match value {
            None => "cloud_sync_meta is damaged: it records no schema_version".to_string(),
            Some(v) => format!("cloud_sync_meta is damaged: its schema_version is '{v}'"),
        };
        assert_failed_load_leaves_the_shell_alive(&db, &reason);
    }
}

#[test]
fn a_database_locked_by_another_connection_fails_the_load_and_the_shell_lives_on() {
    let (_dir, db) = temp_db("locked");
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("CREATE TABLE app (x); BEGIN EXCLUSIVE; INSERT INTO app VALUES (1);")
        .unwrap();
    assert_failed_load_leaves_the_shell_alive(
        &db,
        "the database is locked by another connection, so cloud_sync cannot check or create \
         its tables",
    );
    holder.execute_batch("COMMIT").unwrap();
    // Once the lock is gone, the same load succeeds.
    let run = shell(&db, &[], "SELECT count(*) FROM app;");
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "1");
}

#[test]
fn a_crafted_files_check_cannot_call_functions_with_effects_on_debians_sqlite() {
    let (_dir, db) = temp_db("crafted");
    // The crafted file's server: a listener that must never see a connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!(
        "'postgresql://' || x || '@127.0.0.1:{}/d?connect_timeout=1'",
        listener.local_addr().unwrap().port()
    );
    let crafted = shell(
        &db,
        &[],
        &format!(
            "CREATE TABLE notes(x TEXT CHECK (cloud_sync_test({url}) IS NOT NULL));
             CREATE TABLE keys(x TEXT CHECK (cloud_sync_save('stolen', {url}) > 0));
             CREATE TABLE indexed(x TEXT);
             CREATE INDEX indexed_x ON indexed(abs(x));
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = replace(sql, 'abs(', 'cloud_sync_test(')
              WHERE name = 'indexed_x';"
        ),
    );
    assert!(crafted.ok, "{}", crafted.stderr);
    let refused = "can only be called directly in a statement, not from a CHECK constraint or \
                   other schema expression of the database file";
    for table in ["notes", "keys", "indexed"] {
        let run = shell(
            &db,
            &[(KEY_VAR, KEY)],
            &format!("INSERT INTO {table} VALUES ('secret');"),
        );
        run.assert_failed_with(table, refused);
    }
    shell(&db, &[(KEY_VAR, KEY)], &save_sql("prod"))
        .assert_failed_with("a direct save", "table 'keys' of database 'main' calls it");
    let left = shell(
        &db,
        &[],
        "SELECT (SELECT count(*) FROM notes) + (SELECT count(*) FROM keys)
              + (SELECT count(*) FROM indexed) + (SELECT count(*) FROM cloud_sync_connections);",
    );
    assert_eq!(left.stdout, "0", "{}", left.stderr);
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the crafted file's server was contacted"
    );
    // Without the crafted tables, the direct calls work.
    let run = shell(
        &db,
        &[(KEY_VAR, KEY)],
        &format!(
            "DROP TABLE notes; DROP TABLE keys; DROP TABLE indexed;\n{}",
            save_sql("prod")
        ),
    );
    assert_eq!(run.stdout, "1", "{}", run.stderr);
}
