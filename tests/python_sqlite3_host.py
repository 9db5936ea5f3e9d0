"""The built extension loaded through Python's own sqlite3 module, the host of Datasette and of
most Python applications. Needs no server.

A load that fails runs in a child process of its own: the library is loaded there for the first
time (as in a real application), and a crash shows as the child's exit status (-11) instead of
ending this run.

Run by scripts/test.sh with Debian's Python: /usr/bin/python3 tests/python_sqlite3_host.py
"""

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import unittest

LIB = os.environ["CLOUD_SYNC_LIB"]

# Loads the extension into the database argv[1] and says what happened, one line at a time.
# With argv[2] == "conflict", the application first defines a function of the same name as one
# of cloud_sync's, and loads through SQL, so that SQLite refuses to replace it during the load.
CHILD = r"""
import sqlite3, sys
path, mode, lib = sys.argv[1:4]
conn = sqlite3.connect(path, timeout=0.1)
conn.enable_load_extension(True)
try:
    if mode == "conflict":
        conn.create_function("cloud_sync_worker_status", 0, lambda: "the application's")
        conn.execute("SELECT load_extension(?)", (lib,)).fetchall()
    else:
        conn.load_extension(lib)
    print("loaded")
except sqlite3.Error as e:
    print("load failed:", e)
print("select 1:", conn.execute("SELECT 1").fetchone()[0])
for function in ["cloud_sync_version", "cloud_sync_worker_status"]:
    try:
        print(function + ":", conn.execute(f"SELECT {function}()").fetchone()[0])
    except sqlite3.Error as e:
        print(function + ":", e)
conn.close()
print("closed")
"""


def load(conn):
    conn.enable_load_extension(True)
    conn.load_extension(LIB)
    conn.enable_load_extension(False)


class Sqlite3Host(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "app.db")

    def tearDown(self):
        self.dir.cleanup()

    def run_child(self, mode="load"):
        child = subprocess.run(
            [sys.executable, "-c", CHILD, self.path, mode, LIB],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(child.returncode, 0, f"{child.returncode}: {child.stdout}{child.stderr}")
        self.assertIn("select 1: 1\n", child.stdout)
        self.assertTrue(child.stdout.endswith("closed\n"), child.stdout)
        return child.stdout

    def assert_failed_load_leaves_nothing(self, reason):
        out = self.run_child()
        self.assertIn("load failed: ", out)
        self.assertIn(reason, out)
        self.assertIn("cloud_sync_version: no such function: cloud_sync_version", out)

    def test_a_database_set_up_by_a_newer_cloud_sync_fails_the_load_and_python_lives_on(self):
        with sqlite3.connect(self.path) as conn:
            conn.executescript(
                "CREATE TABLE cloud_sync_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)"
                " WITHOUT ROWID;"
                "INSERT INTO cloud_sync_meta VALUES ('schema_version', '99');"
            )
        conn.close()
        self.assert_failed_load_leaves_nothing(
            "this database was set up by a newer cloud_sync (schema version 99"
        )

    def test_a_database_locked_by_another_connection_fails_the_load_and_python_lives_on(self):
        holder = sqlite3.connect(self.path, isolation_level=None)
        holder.executescript("CREATE TABLE app (x); BEGIN EXCLUSIVE; INSERT INTO app VALUES (1);")
        try:
            self.assert_failed_load_leaves_nothing(
                "the database is locked by another connection, so cloud_sync cannot check or "
                "create its tables"
            )
        finally:
            holder.execute("COMMIT")
            holder.close()
        self.assertIn("loaded\n", self.run_child())

    def test_a_load_that_cannot_undo_its_registrations_keeps_them_working(self):
        # SQLite refuses to replace the application's function while the loading statement
        # runs, and for the same reason to remove the functions registered before it: they must
        # keep working, so the library must stay loaded.
        out = self.run_child("conflict")
        self.assertIn("load failed: ", out)
        self.assertIn("cannot register cloud_sync_worker_status", out)
        self.assertIn("stay usable on this connection", out)
        self.assertIn("cloud_sync_worker_status: the application's", out)
        self.assertRegex(out, r"cloud_sync_version: \d+\.\d+\.\d+\n")

    def test_a_query_only_in_memory_database_loads_like_a_read_only_one(self):
        # Datasette's internal database.
        conn = sqlite3.connect(":memory:")
        conn.execute("PRAGMA query_only = 1")
        load(conn)
        self.assertEqual(conn.execute("SELECT cloud_sync_version()").fetchone()[0].count("."), 2)
        with self.assertRaises(sqlite3.OperationalError) as caught:
            conn.execute("SELECT cloud_sync_delete('prod')")
        self.assertIn(
            "the connection is query-only (PRAGMA query_only = 1), so cloud_sync cannot delete "
            "a connection",
            str(caught.exception),
        )
        conn.close()

    def test_integer_arguments_bound_as_python_floats_or_strings(self):
        conn = sqlite3.connect(self.path)
        load(conn)
        for given in [0, 0.0, "0", " 0 "]:
            ran = conn.execute("SELECT cloud_sync_run_jobs(?)", (given,)).fetchone()[0]
            self.assertIn('"ran":0', ran, repr(given))
        for given, shown in [(1.5, "1.5"), ("x", "'x'"), (1e300, "1e300"), (float("inf"), "inf")]:
            with self.assertRaises(sqlite3.OperationalError) as caught:
                conn.execute("SELECT cloud_sync_report(?)", (given,))
            self.assertIn(
                f"argument 1 (job id) must be an integer, not {shown}", str(caught.exception)
            )
        conn.close()

    def test_a_crafted_files_check_cannot_call_functions_with_effects(self):
        # The crafted file's server: a listener that must never see a connection.
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        url = (
            "'postgresql://' || x || "
            f"'@127.0.0.1:{server.getsockname()[1]}/d?connect_timeout=1'"
        )
        crafter = sqlite3.connect(self.path)
        load(crafter)
        crafter.executescript(
            f"CREATE TABLE notes(x TEXT CHECK (cloud_sync_test({url}) IS NOT NULL));"
            f"CREATE TABLE keys(x TEXT CHECK (cloud_sync_save('stolen', {url}) > 0));"
        )
        crafter.close()
        conn = sqlite3.connect(self.path)
        load(conn)
        for table in ["notes", "keys"]:
            with self.assertRaises(sqlite3.OperationalError) as caught:
                conn.execute(f"INSERT INTO {table} VALUES ('secret')")
            self.assertIn(
                "can only be called directly in a statement, not from a CHECK constraint or "
                "other schema expression of the database file",
                str(caught.exception),
            )
        with self.assertRaises(sqlite3.OperationalError) as caught:
            conn.execute("SELECT cloud_sync_test('prod')")
        self.assertIn("table 'notes' of database 'main' calls it", str(caught.exception))
        count = "SELECT (SELECT count(*) FROM notes) + (SELECT count(*) FROM keys)"
        self.assertEqual(conn.execute(count).fetchone()[0], 0)
        self.assertEqual(
            conn.execute("SELECT count(*) FROM cloud_sync_connections").fetchone()[0], 0
        )
        with self.assertRaises(BlockingIOError):
            server.accept()
        server.close()
        # Without the crafted tables, the direct calls work.
        conn.executescript("DROP TABLE notes; DROP TABLE keys;")
        with self.assertRaises(sqlite3.OperationalError) as caught:
            conn.execute("SELECT cloud_sync_test('prod')")
        self.assertIn("unknown connection 'prod'", str(caught.exception))
        conn.close()


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    passed = result.testsRun - len(result.failures) - len(result.errors)
    print(f"python sqlite3: {passed} passed, {len(result.failures) + len(result.errors)} failed")
    sys.exit(0 if result.wasSuccessful() else 1)
