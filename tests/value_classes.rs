//! Money columns and storage classes both ways, against the real PostgreSQL with the built
//! extension: NUMERIC/DECIMAL columns (integers and reals side by side, as SQLite stores them)
//! export to `numeric` and come back as the integers and reals they were, and every value the
//! mapping would give back in another class or form is a problem the dry run lists, with the
//! option that keeps it.

mod common;

use common::jobs::{dry_run, exported, import};
use common::local::{column_of, with_fresh_schema, with_saved_connection};
use common::remote::{as_test_user, remote_column, remote_value};
use common::summary::{counts, counts_of, listed_problems, problems_total_of};
use rusqlite::Connection;
use serde_json::json;

/// Every row of `table`, each value with its storage class (`integer:18|real:19.5`).
fn classes_and_values(conn: &Connection, table: &str) -> Vec<String> {
    let columns: Vec<String> = column_of(
        conn,
        &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
    );
    let each = columns
        .iter()
        .map(|c| format!("typeof(\"{c}\") || ':' || quote(\"{c}\")"))
        .collect::<Vec<_>>()
        .join(" || '|' || ");
    column_of(conn, &format!("SELECT {each} FROM \"{table}\" ORDER BY 1"))
}

/// The type of remote column `schema.table.column`, as `format_type` spells it.
fn remote_type(pg: &common::Pg, schema: &str, table: &str, column: &str) -> String {
    remote_value(
        pg,
        &format!(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = '\"{schema}\".\"{table}\"'::regclass AND attname = '{column}'"
        ),
    )
}

#[test]
fn a_money_column_of_integers_and_reals_goes_to_numeric_and_comes_back_exactly() {
    let (_dir, conn, pg, schema) = with_fresh_schema("money", "v_money");
    // Northwind's shape: SQLite stores '18.00' as the integer 18 and '19.50' as the real 19.5.
    conn.execute_batch(
        "CREATE TABLE Products (ProductID INTEGER PRIMARY KEY, ProductName TEXT NOT NULL,
                                UnitPrice NUMERIC DEFAULT 0);
         INSERT INTO Products VALUES (1, 'Chai', '18.00'), (2, 'Chang', '19.50'),
                                     (3, 'Aniseed Syrup', 0), (4, 'Tofu', 23.25),
                                     (5, 'Konbu', 0.1), (6, 'Ikura', NULL);",
    )
    .unwrap();
    let classes: Vec<String> = column_of(
        &conn,
        "SELECT typeof(UnitPrice) FROM Products ORDER BY ProductID",
    );
    assert_eq!(
        classes,
        ["integer", "real", "integer", "real", "real", "null"]
    );
    let options = json!({"schema": schema});
    let dry = dry_run(&conn, &options);
    assert_eq!(problems_total_of(&dry), 0, "{dry}");
    exported(&conn, &options);
    assert_eq!(
        remote_type(&pg, &schema, "Products", "UnitPrice"),
        "numeric"
    );
    let remote: Vec<String> = remote_column(
        &pg,
        &format!(
            "SELECT coalesce(\"UnitPrice\"::text, 'NULL') FROM {schema}.\"Products\" ORDER BY 1"
        ),
    );
    assert_eq!(remote, ["0", "0.1", "18", "19.5", "23.25", "NULL"]);

    // Into an empty database: a NUMERIC column, and the same values in the same classes.
    let (_dir2, fresh, _) = with_saved_connection("money-empty", false);
    let job = import(
        &fresh,
        0,
        "skip",
        &json!({"schema": schema, "create_tables": true}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    let declared: Vec<String> = column_of(
        &fresh,
        "SELECT type FROM pragma_table_info('Products') ORDER BY cid",
    );
    assert_eq!(declared, ["INTEGER", "TEXT", "NUMERIC"]);
    assert_eq!(
        classes_and_values(&fresh, "Products"),
        classes_and_values(&conn, "Products")
    );
}

#[test]
fn a_decimal_column_keeps_its_scale_and_takes_the_first_fraction_later() {
    let (_dir, conn, pg, schema) = with_fresh_schema("decimal", "v_decimal");
    // A Django-style DecimalField(max_digits=10, decimal_places=2) holding whole numbers only.
    conn.execute_batch(
        "CREATE TABLE shop_item (id integer NOT NULL PRIMARY KEY, price decimal(10,2) NOT NULL);
         INSERT INTO shop_item VALUES (1, '18.00'), (2, '20');
         CREATE TABLE shop_wide (id integer PRIMARY KEY, price decimal(5,2));
         INSERT INTO shop_wide VALUES (1, 1.234), (2, 5);",
    )
    .unwrap();
    let options = json!({"schema": schema});
    exported(&conn, &options);
    // Never bigint for whole numbers; a column whose values do not fit numeric(5,2) gets numeric.
    assert_eq!(
        remote_type(&pg, &schema, "shop_item", "price"),
        "numeric(10,2)"
    );
    assert_eq!(remote_type(&pg, &schema, "shop_wide", "price"), "numeric");

    conn.execute("INSERT INTO shop_item VALUES (3, '19.50')", [])
        .unwrap();
    let dry = dry_run(&conn, &options);
    assert_eq!(problems_total_of(&dry), 0, "{dry}");
    exported(&conn, &options);
    let prices: Vec<String> = remote_column(
        &pg,
        &format!("SELECT price::text FROM {schema}.shop_item ORDER BY id"),
    );
    assert_eq!(prices, ["18.00", "20.00", "19.50"]);

    // A value the existing numeric(10,2) would round is a problem naming the fix, with its key.
    conn.execute("INSERT INTO shop_item VALUES (4, 1.234)", [])
        .unwrap();
    let dry = dry_run(&conn, &options);
    let problems = listed_problems(&dry).join("\n");
    assert!(
        problems.contains(&format!(
            r#""shop_item" {{"id":4}} "price" "1.234 has more decimal places than numeric(10,2) keeps: change the value, or the remote column's type (ALTER TABLE \"{schema}\".\"shop_item\" ALTER COLUMN \"price\" TYPE numeric)""#
        )),
        "{problems}"
    );
    assert_eq!(
        counts_of(&dry, "shop_item"),
        counts!(source_rows: 4, unchanged: 3, skipped: 1, problems: 1)
    );

    // Back into the same schema locally: whole numbers as integers, 19.5 as a real.
    let (_dir2, fresh, _) = with_saved_connection("decimal-empty", false);
    let job = import(
        &fresh,
        0,
        "skip",
        &json!({"schema": schema, "create_tables": true}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        classes_and_values(&fresh, "shop_item"),
        [
            "integer:1|integer:18",
            "integer:2|integer:20",
            "integer:3|real:19.5"
        ]
    );
    let declared: Vec<String> = column_of(
        &fresh,
        "SELECT type FROM pragma_table_info('shop_item') ORDER BY cid",
    );
    assert_eq!(declared, ["INTEGER", "NUMERIC(10,2)"]);
}

#[test]
fn text_that_is_no_number_in_a_numeric_column_is_a_problem_until_the_column_is_text() {
    let (_dir, conn, pg, schema) = with_fresh_schema("notnumber", "v_notnumber");
    conn.execute_batch(
        "CREATE TABLE prices (id INTEGER PRIMARY KEY, amount NUMERIC);
         INSERT INTO prices VALUES (1, 18), (2, 'n/a'), (3, 19.5);",
    )
    .unwrap();
    let dry = dry_run(&conn, &json!({"schema": schema}));
    assert_eq!(problems_total_of(&dry), 1, "{dry}");
    assert_eq!(
        listed_problems(&dry),
        [
            r#""prices" {"id":2} "amount" "text is not a decimal number: name a type that keeps it with the column_types option, {\"prices.amount\":\"text\"}""#
        ]
    );
    let options = json!({"schema": schema, "column_types": {"prices.amount": "text"}});
    let dry = dry_run(&conn, &options);
    assert_eq!(problems_total_of(&dry), 0, "{dry}");
    exported(&conn, &options);
    assert_eq!(remote_type(&pg, &schema, "prices", "amount"), "text");
}

#[test]
fn text_in_a_blob_column_is_a_problem_and_goes_as_text_once_named() {
    let (_dir, conn, pg, schema) = with_fresh_schema("blobtext", "v_blobtext");
    // Older applications keep file names or base64 in BLOB columns.
    conn.execute_batch(
        "CREATE TABLE attachments (id INTEGER PRIMARY KEY, data BLOB);
         INSERT INTO attachments VALUES (1, 'invoice.pdf'), (2, 'aGVsbG8='), (3, NULL);",
    )
    .unwrap();
    let dry = dry_run(&conn, &json!({"schema": schema}));
    assert_eq!(problems_total_of(&dry), 2, "{dry}");
    let problems = listed_problems(&dry);
    assert_eq!(
        problems[0],
        r#""attachments" {"id":1} "data" "text would come back from bytea as a blob in an untyped or BLOB column: name a type that keeps it with the column_types option, {\"attachments.data\":\"text\"}""#
    );
    assert!(problems[1].starts_with(r#""attachments" {"id":2} "data""#));

    let options = json!({"schema": schema, "column_types": {"attachments.data": "text"}});
    exported(&conn, &options);
    assert_eq!(remote_type(&pg, &schema, "attachments", "data"), "text");
    let (_dir2, fresh, _) = with_saved_connection("blobtext-empty", false);
    let job = import(
        &fresh,
        0,
        "skip",
        &json!({"schema": schema, "create_tables": true}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        classes_and_values(&fresh, "attachments"),
        classes_and_values(&conn, "attachments")
    );

    // A real blob among them cannot go to text either: listed, never changed.
    conn.execute("INSERT INTO attachments VALUES (4, X'00FF')", [])
        .unwrap();
    let dry = dry_run(&conn, &options);
    let problems = listed_problems(&dry).join("\n");
    assert!(
        problems.contains(r#""attachments" {"id":4} "data" "a blob cannot become text"#),
        "{problems}"
    );
}

#[test]
fn remote_numerics_come_back_as_sqlite_stores_them_or_as_listed_problems() {
    let (_dir, conn, pg, schema) = with_fresh_schema("remote_numeric", "v_remote_numeric");
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE amounts (id integer PRIMARY KEY, amount numeric(12,2));
         INSERT INTO amounts VALUES (1, 18.00), (2, 19.50), (3, -0.25), (4, NULL);
         CREATE TABLE precise (id integer PRIMARY KEY, value numeric);
         INSERT INTO precise VALUES (1, 0.5), (2, 1234567890.123456789);",
    );
    // Into an existing NUMERIC column: as SQLite itself stores '18.00' and '19.50'.
    conn.execute_batch("CREATE TABLE amounts (id INTEGER PRIMARY KEY, amount NUMERIC)")
        .unwrap();
    let job = import(
        &conn,
        0,
        "skip",
        &json!({"schema": schema, "tables": ["amounts"]}),
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        classes_and_values(&conn, "amounts"),
        [
            "integer:1|integer:18",
            "integer:2|real:19.5",
            "integer:3|real:-0.25",
            "integer:4|null:NULL"
        ]
    );

    // More digits than a REAL keeps: a problem with table, key and column, naming the option.
    let options = json!({"schema": schema, "create_tables": true, "tables": ["precise"]});
    let dry = import(&conn, 1, "skip", &options);
    assert_eq!(
        listed_problems(&dry),
        [
            r#""precise" {"id":2} "value" "numeric 1234567890.123456789 has more digits than a REAL keeps, so SQLite has no value that holds it exactly: import it as TEXT with the column_types option, {\"precise.value\":\"TEXT\"}""#
        ]
    );
    let mut options = options;
    options["column_types"] = json!({"precise.value": "TEXT"});
    let job = import(&conn, 0, "skip", &options);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        classes_and_values(&conn, "precise"),
        [
            "integer:1|text:'0.5'",
            "integer:2|text:'1234567890.123456789'"
        ]
    );

    // column_types names only columns of tables the import creates, and SQLite types.
    for (column_types, expected) in [
        (
            json!({"amounts.amount": "TEXT"}),
            "not a column of a table this import creates",
        ),
        (
            json!({"precise.value": "TEXT); DROP TABLE x; --"}),
            "name a SQLite type",
        ),
    ] {
        conn.execute("DROP TABLE IF EXISTS precise", []).unwrap();
        let job = import(
            &conn,
            1,
            "skip",
            &json!({"schema": schema, "create_tables": true, "column_types": column_types}),
        );
        let error = job["error"].as_str().unwrap_or_default();
        assert!(
            job["status"] == "failed" && error.contains(expected),
            "{job}"
        );
    }
}

#[test]
fn text_an_existing_remote_column_would_write_another_way_is_a_problem() {
    let (_dir, conn, pg, schema) = with_fresh_schema("rewritten", "v_rewritten");
    // The remote table exists with types that keep a value, not its text.
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE events (id integer PRIMARY KEY, uid uuid, at timestamptz, data jsonb,
                              price numeric(10,2))",
    );
    let create = "CREATE TABLE events (id INTEGER PRIMARY KEY, uid TEXT, at TEXT, data TEXT,
                                       price TEXT)";
    conn.execute_batch(&format!(
        "{create};
         INSERT INTO events VALUES
           (1, '123E4567-E89B-12D3-A456-426614174000', '2024-01-01T10:00+02:00',
            '{{\"b\":1,\"a\":2}}', '19.5'),
           (2, '123e4567-e89b-12d3-a456-426614174000', '2024-01-01 08:00:00+00',
            '{{\"a\": 2, \"b\": 1}}', '19.50');"
    ))
    .unwrap();
    let options = json!({"schema": schema});
    let dry = dry_run(&conn, &options);
    let fix = |column: &str| {
        format!(
            r#": change the value, or the remote column's type (ALTER TABLE \"{schema}\".\"events\" ALTER COLUMN \"{column}\" TYPE text)"#
        )
    };
    assert_eq!(
        listed_problems(&dry),
        [format!(
            r#""events" {{"id":1}} "uid" "text '123E4567-E89B-12D3-A456-426614174000' would come back from uuid as '123e4567-e89b-12d3-a456-426614174000'{}""#,
            fix("uid")
        )],
        "{dry}"
    );
    // The row's first problem is listed; once fixed, the next column's is.
    for (column, canonical, message) in [
        (
            "uid",
            "123e4567-e89b-12d3-a456-426614174000",
            "text '2024-01-01T10:00+02:00' would come back from timestamp with time zone as '2024-01-01 08:00:00+00'",
        ),
        (
            "at",
            "2024-01-01 08:00:00+00",
            r#"text '{\"b\":1,\"a\":2}' would come back from jsonb as '{\"a\": 2, \"b\": 1}'"#,
        ),
        (
            "data",
            r#"{"a": 2, "b": 1}"#,
            "text '19.5' would come back from numeric(10,2) as '19.50'",
        ),
    ] {
        conn.execute(
            &format!("UPDATE events SET {column} = ?1 WHERE id = 1"),
            [canonical],
        )
        .unwrap();
        let problems = listed_problems(&dry_run(&conn, &options)).join("\n");
        assert!(problems.contains(message), "{problems}");
    }
    conn.execute("UPDATE events SET price = '19.50' WHERE id = 1", [])
        .unwrap();
    let dry = dry_run(&conn, &options);
    assert_eq!(problems_total_of(&dry), 0, "{dry}");
    exported(&conn, &options);

    // Back into the same local schema: the same text, character for character.
    let (_dir2, fresh, _) = with_saved_connection("rewritten-back", false);
    fresh.execute_batch(create).unwrap();
    let job = import(&fresh, 0, "skip", &options);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        classes_and_values(&fresh, "events"),
        classes_and_values(&conn, "events")
    );
}
