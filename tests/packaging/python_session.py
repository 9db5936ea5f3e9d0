"""A user's first session with the installed wheel, in a fresh virtual environment:

    python tests/packaging/python_session.py VERSION sqlite3|apsw|sqlite-utils

load, version, save a connection, test it over TLS (verify-full against the test CA), dry-run
export, confirmed export, report. Through `sqlite3` and `apsw` with sqlite_cloud_sync.load(),
or through sqlite-utils, whose plugin loads the extension. Needs the CLOUD_SYNC_TEST_*
variables of scripts/lib/pg.sh and CLOUD_SYNC_ENCRYPTION_KEY. Prints one line per step and
`session <host>: ok`; any failure raises.
"""

import json
import os
import sys
import tempfile
import urllib.parse

import sqlite_cloud_sync


def pg_url():
    env = os.environ
    return "postgresql://{}:{}@{}:{}/{}?sslmode=verify-full&sslrootcert={}".format(
        env["CLOUD_SYNC_TEST_PG_USER"],
        urllib.parse.quote(env["CLOUD_SYNC_TEST_PG_PASSWORD"], safe=""),
        env["CLOUD_SYNC_TEST_PG_HOST"],
        env["CLOUD_SYNC_TEST_PG_PORT"],
        env["CLOUD_SYNC_TEST_PG_DB"],
        env["CLOUD_SYNC_TEST_PG_CA"],
    )


def open_sqlite3(path):
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_cloud_sync.load(conn)
    return lambda sql, *args: conn.execute(sql, args).fetchone()[0], conn.executescript


def open_apsw(path):
    import apsw

    conn = apsw.Connection(path)
    sqlite_cloud_sync.load(conn)
    return lambda sql, *args: conn.cursor().execute(sql, args).fetchone()[0], conn.execute


def open_sqlite_utils(path):
    import sqlite_utils

    # No load call: the sqlite-utils-cloud-sync plugin loads the extension.
    db = sqlite_utils.Database(path)
    return lambda sql, *args: db.execute(sql, args).fetchone()[0], db.executescript


HOSTS = {"sqlite3": open_sqlite3, "apsw": open_apsw, "sqlite-utils": open_sqlite_utils}


def session(version, host):
    schema = "pkg_" + host.replace("-", "_")
    assert os.path.isfile(sqlite_cloud_sync.loadable_path()), sqlite_cloud_sync.loadable_path()
    with tempfile.TemporaryDirectory() as tmp:
        one, script = HOSTS[host](os.path.join(tmp, "app.db"))
        assert one("SELECT cloud_sync_version()") == version
        print(f"{host}: loaded cloud_sync {version}")

        connection_id = one("SELECT cloud_sync_save('pkg', ?)", pg_url())
        assert isinstance(connection_id, int), connection_id
        tested = json.loads(one("SELECT cloud_sync_test('pkg')"))
        assert tested["ok"] and tested["tls"] and tested["verified"], tested
        print(f"{host}: saved and tested a verify-full connection")

        script(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);"
            "INSERT INTO items VALUES (1, 'tea', 3.5), (2, 'coffee', 4.25);"
        )
        options = json.dumps({"schema": schema, "tables": ["items"]})
        dry = json.loads(one("SELECT cloud_sync_run(cloud_sync_export('pkg', 1, ?))", options))
        assert dry["status"] == "succeeded", dry
        confirmed = json.dumps({"schema": schema, "tables": ["items"], "confirm": dry["id"]})
        done = json.loads(one("SELECT cloud_sync_run(cloud_sync_export('pkg', 0, ?))", confirmed))
        assert done["status"] == "succeeded", done
        print(f"{host}: dry run {dry['id']} and export {done['id']} succeeded")

        report = one("SELECT cloud_sync_report(?, 'markdown')", done["id"])
        assert "succeeded" in report and "items" in report, report
        assert os.environ["CLOUD_SYNC_TEST_PG_PASSWORD"] not in report
        print(f"{host}: report of job {done['id']}: {len(report.splitlines())} lines of markdown")
    print(f"session {host}: ok")


if __name__ == "__main__":
    session(sys.argv[1], sys.argv[2])
