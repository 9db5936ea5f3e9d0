"""Datasette plugin: loads the cloud_sync SQLite extension into every connection Datasette
opens, so its SQL functions (cloud_sync_version(), cloud_sync_report(), ...) work in queries."""

from datasette import hookimpl

import sqlite_cloud_sync


@hookimpl
def prepare_connection(conn):
    sqlite_cloud_sync.load(conn)
