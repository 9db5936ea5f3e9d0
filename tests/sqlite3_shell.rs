//! The built extension in the sqlite3 shell, one process per scenario so each can run with its
//! own key environment: key forms, wrong and missing keys, tampering, rotation.

mod common;

use base64::Engine;
use common::{pg, shell, sql_str, temp_db, KEY, OTHER_KEY};

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
