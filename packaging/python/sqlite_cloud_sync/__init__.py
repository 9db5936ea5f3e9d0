"""cloud_sync, the SQLite extension that exports and imports tables to and from Postgres.

    import sqlite3, sqlite_cloud_sync
    conn = sqlite3.connect("app.db")
    sqlite_cloud_sync.load(conn)
    conn.execute("SELECT cloud_sync_version()").fetchone()

Works with the standard library's sqlite3 and with apsw connections.
"""

import os

__version__ = "@VERSION@"


def loadable_path():
    """The path of the extension's shared library, for hosts that load it themselves."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "cloud_sync.so")


def load(conn):
    """Loads the extension into `conn` (sqlite3 or apsw). Extension loading is enabled only
    for the duration of the call."""
    # sqlite3 spells it enable_load_extension; apsw has enable_load_extension since 3.44 and
    # enableloadextension before.
    enable = getattr(conn, "enable_load_extension", None) or getattr(
        conn, "enableloadextension", None
    )
    load_extension = getattr(conn, "load_extension", None) or getattr(conn, "loadextension")
    if enable is None:
        raise RuntimeError(
            "this Python's sqlite3 module cannot load extensions (it was built without "
            "--enable-loadable-sqlite-extensions): use apsw, or a Python built with it"
        )
    enable(True)
    try:
        load_extension(loadable_path())
    finally:
        enable(False)
