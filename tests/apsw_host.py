"""The built extension loaded into Python through apsw, against the harness's PostgreSQL.

Run by scripts/test.sh with Debian's python3-apsw: /usr/bin/python3 tests/apsw_host.py
"""

import json
import os
import sys
import tempfile
import unittest
import urllib.parse

import apsw

from pg_env import pg_url

LIB = os.environ["CLOUD_SYNC_LIB"]
KEY = "3f1c6a7e9b2d4c8e0a5f7b1d3e9c2a4b6d8f0e1c3a5b7d9f2e4c6a8b0d1f3e5a"


def connect(path):
    conn = apsw.Connection(path)
    # apsw < 3.41 names these without underscores.
    enable = getattr(conn, "enable_load_extension", None) or conn.enableloadextension
    load = getattr(conn, "load_extension", None) or conn.loadextension
    enable(True)
    load(LIB)
    return conn


def one(conn, sql, *args):
    return conn.cursor().execute(sql, args).fetchone()[0]


class ApswHost(unittest.TestCase):
    def setUp(self):
        os.environ["CLOUD_SYNC_ENCRYPTION_KEY"] = KEY
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "app.db")

    def tearDown(self):
        self.dir.cleanup()

    def test_save_test_delete_round_trip(self):
        conn = connect(self.path)
        self.assertEqual(one(conn, "SELECT cloud_sync_version()").count("."), 2)
        conn_id = one(conn, "SELECT cloud_sync_save('prod', ?)", pg_url())
        self.assertIsInstance(conn_id, int)
        report = json.loads(one(conn, "SELECT cloud_sync_test('prod')"))
        self.assertTrue(report["ok"])
        self.assertTrue(report["tls"])
        self.assertTrue(report["verified"])
        self.assertIn(":***@", report["target"])
        self.assertEqual(one(conn, "SELECT cloud_sync_delete('prod')"), 1)
        self.assertEqual(one(conn, "SELECT count(*) FROM cloud_sync_connections"), 0)

    def test_errors_are_sql_errors_without_the_password(self):
        conn = connect(self.path)
        password = os.environ["CLOUD_SYNC_TEST_PG_PASSWORD"]
        bad = pg_url(query="sslmode=require").replace(
            urllib.parse.quote(password, safe=""), "wrong-password-123"
        )
        with self.assertRaises(apsw.SQLError) as caught:
            one(conn, "SELECT cloud_sync_test(?)", bad)
        message = str(caught.exception)
        self.assertIn("password authentication failed", message)
        self.assertNotIn("wrong-password-123", message)
        with self.assertRaises(apsw.SQLError) as caught:
            one(conn, "SELECT cloud_sync_save('x', 'postgresql://u@h/d?bogus=1')")
        self.assertIn('unknown connection parameter "bogus"', str(caught.exception))

    def test_pooler_in_transaction_mode(self):
        conn = connect(self.path)
        port = os.environ["CLOUD_SYNC_TEST_PGBOUNCER_PORT"]
        report = json.loads(
            one(conn, "SELECT cloud_sync_test(?)", pg_url(port=port, query="sslmode=require"))
        )
        self.assertTrue(report["tls"])
        self.assertFalse(report["verified"])

    def test_closing_the_connection_keeps_the_process_healthy(self):
        first = connect(self.path)
        one(first, "SELECT cloud_sync_save('prod', ?)", pg_url())
        first.close()
        second = connect(self.path)
        self.assertTrue(json.loads(one(second, "SELECT cloud_sync_test('prod')"))["ok"])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    passed = result.testsRun - len(result.failures) - len(result.errors)
    print(f"apsw: {passed} passed, {len(result.failures) + len(result.errors)} failed")
    sys.exit(0 if result.wasSuccessful() else 1)
