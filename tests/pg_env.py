"""The test PostgreSQL that scripts/test.sh starts, as the Python host tests reach it: the
CLOUD_SYNC_TEST_* variables it exports, made into a connection string."""

import os
import urllib.parse


def pg_url(host=None, port=None, query="sslmode=verify-full&sslrootcert={ca}"):
    """A URL to the test database as the test user; verify-full against the test CA unless
    `query` says otherwise ({ca} stands for the CA file)."""
    env = os.environ
    return "postgresql://{}:{}@{}:{}/{}?{}".format(
        env["CLOUD_SYNC_TEST_PG_USER"],
        urllib.parse.quote(env["CLOUD_SYNC_TEST_PG_PASSWORD"], safe=""),
        host or env["CLOUD_SYNC_TEST_PG_HOST"],
        port or env["CLOUD_SYNC_TEST_PG_PORT"],
        env["CLOUD_SYNC_TEST_PG_DB"],
        query.format(ca=env["CLOUD_SYNC_TEST_PG_CA"]),
    )
