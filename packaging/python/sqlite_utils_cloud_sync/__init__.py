"""sqlite-utils plugin: loads the cloud_sync SQLite extension into every connection sqlite-utils
opens, so `sqlite-utils query app.db "SELECT cloud_sync_version()"` works."""

import sqlite_utils

import sqlite_cloud_sync


@sqlite_utils.hookimpl
def prepare_connection(conn):
    sqlite_cloud_sync.load(conn)
