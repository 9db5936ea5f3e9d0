"""Datasette plugin: loads the cloud_sync SQLite extension into every connection Datasette
opens, and adds the admin page, Cloud Sync, at /-/cloud-sync (views.py).

Datasette's own connections are shared by every visitor, so they get a guard (guard.py) that
refuses every cloud_sync_* function but cloud_sync_version(); the page, for actors with the
`cloud-sync` permission only, works on connections of its own (store.py). At startup the plugin
starts the extension's worker for each file-backed writable database, so queued jobs run.
"""

import asyncio
import sqlite3
import sys

import sqlite_cloud_sync
from datasette import hookimpl
from datasette.utils import actor_matches_allow

from . import guard, store, views

# Who has the permission unless the plugin's configuration says otherwise.
DEFAULT_ALLOW = {"id": "root"}


@hookimpl
def prepare_connection(conn):
    sqlite_cloud_sync.load(conn)
    guard.install(conn)


@hookimpl
def permission_allowed(datasette, actor, action):
    if action != views.PERMISSION:
        return None
    config = datasette.plugin_config("datasette-cloud-sync") or {}
    return actor_matches_allow(actor, config.get("allow", DEFAULT_ALLOW))


@hookimpl
def register_routes():
    return views.routes()


@hookimpl
def menu_links(datasette, actor):
    async def inner():
        if await views.allowed(datasette, actor):
            return [{"href": datasette.urls.path("/-/cloud-sync"), "label": "Cloud Sync"}]
        return []

    return inner


@hookimpl
def database_actions(datasette, actor, database):
    async def inner():
        managed = [db.name for db in views.managed_databases(datasette)]
        if database in managed and await views.allowed(datasette, actor):
            return [{"href": views.page_url(datasette, database), "label": "Cloud Sync"}]
        return []

    return inner


@hookimpl
def startup(datasette):
    async def inner():
        for db in views.managed_databases(datasette):
            try:
                await asyncio.to_thread(store.start_worker, db.path)
            except sqlite3.Error as error:
                # A read-only file, say: Datasette still serves it; the page says so.
                print(f"datasette-cloud-sync: no worker for {db.name}: {error}", file=sys.stderr)

    return inner
