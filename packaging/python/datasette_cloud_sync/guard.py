"""The guard on Datasette's own connections.

Datasette runs every visitor's SQL (the SQL box, canned queries, the JSON API) on connections
shared by all actors, and SQLite cannot know who asks. So those connections may call no
cloud_sync_* function but cloud_sync_version() (build information only): the others save,
test, export, import, run jobs or reach the network, and only the admin page, on connections of
its own, calls them. The ciphertext of saved connection strings reads as NULL there too.
"""

import sqlite3

# The one function every visitor may call: it returns the extension's version and nothing else.
ALLOWED_FUNCTIONS = frozenset({"cloud_sync_version"})
CIPHERTEXT = ("cloud_sync_connections", "connection_string_encrypted")


def authorizer(action, arg1, arg2, _database, _trigger_or_view):
    """sqlite3's authorizer callback: for SQLITE_FUNCTION arg2 is the function's name, for
    SQLITE_READ arg1 and arg2 are the table and the column."""
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        if name.startswith("cloud_sync_") and name not in ALLOWED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
    elif (action == sqlite3.SQLITE_READ
          and ((arg1 or "").lower(), (arg2 or "").lower()) == CIPHERTEXT):
        return sqlite3.SQLITE_IGNORE
    return sqlite3.SQLITE_OK


def install(conn):
    """Puts the guard on `conn`, one of Datasette's connections."""
    conn.set_authorizer(authorizer)
