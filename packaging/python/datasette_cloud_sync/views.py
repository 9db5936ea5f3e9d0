"""The admin page's routes: who may see them, which form does what, and what is rendered.

Every route checks the `cloud-sync` permission first (403 otherwise). Forms post to one action
route, which calls store.py in a thread and redirects back with Datasette's message (post,
redirect, get: a reload never posts twice, and no field is ever filled in again, so a pasted
connection string is never sent back).
"""

import asyncio
import sqlite3
import urllib.parse

from datasette import Forbidden, NotFound, Response

from . import store

PERMISSION = "cloud-sync"


async def allowed(datasette, actor):
    return await datasette.permission_allowed(actor, PERMISSION, default=False)


async def require_permission(datasette, request):
    if not await allowed(datasette, request.actor):
        raise Forbidden("You need the cloud-sync permission to see this page")


def managed_databases(datasette):
    """The databases the page manages: file-backed and writable."""
    return [db for name, db in datasette.databases.items()
            if name != "_internal" and db.path and db.is_mutable and not db.is_memory]


def database_path(datasette, name):
    for db in managed_databases(datasette):
        if db.name == name:
            return db.path
    raise NotFound(f"No database {name} that Cloud Sync can manage (file-backed and writable)")


def page_url(datasette, database, *rest):
    return datasette.urls.path("/".join(["/-/cloud-sync", urllib.parse.quote(database), *rest]))


async def index(datasette, request):
    await require_permission(datasette, request)
    databases = managed_databases(datasette)
    if len(databases) == 1:
        return Response.redirect(page_url(datasette, databases[0].name))
    return Response.html(await datasette.render_template(
        "cloud_sync_index.html",
        {"databases": [(db.name, page_url(datasette, db.name)) for db in databases]},
        request=request))


async def database_page(datasette, request):
    await require_permission(datasette, request)
    database = request.url_vars["database"]
    path = database_path(datasette, database)
    page = await asyncio.to_thread(store.overview, path)
    return Response.html(await datasette.render_template(
        "cloud_sync_database.html",
        dict(page, database=database, base=page_url(datasette, database),
             history_url=page_url(datasette, database, "jobs.json"),
             active=any(job["status"] in store.ACTIVE_STATUSES for job in page["jobs"])),
        request=request))


async def history_json(datasette, request):
    """Job History as JSON, with the rendered rows the page swaps in while a job runs."""
    await require_permission(datasette, request)
    database = request.url_vars["database"]
    found = await asyncio.to_thread(store.history, database_path(datasette, database))
    found["html"] = await datasette.render_template(
        "_cloud_sync_history.html",
        {"jobs": found["jobs"], "base": page_url(datasette, database)}, request=request)
    return Response.json(found)


async def job_page(datasette, request):
    await require_permission(datasette, request)
    database = request.url_vars["database"]
    job_id = int(request.url_vars["job_id"])
    found = await asyncio.to_thread(store.job, database_path(datasette, database), job_id)
    if found is None:
        raise NotFound(f"No job {job_id}")
    return Response.html(await datasette.render_template(
        "cloud_sync_job.html",
        {"job": found, "database": database, "base": page_url(datasette, database),
         "strategies": store.STRATEGIES},
        request=request))


async def report_download(datasette, request):
    await require_permission(datasette, request)
    database = request.url_vars["database"]
    job_id = int(request.url_vars["job_id"])
    fmt = request.url_vars["format"]
    try:
        text = await asyncio.to_thread(
            store.report, database_path(datasette, database), job_id, fmt)
    except sqlite3.Error as error:
        raise NotFound(str(error))
    return Response(text, content_type=store.REPORT_FORMATS[fmt][1] + "; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="cloud-sync-job-{job_id}.{fmt}"'})


# Each form's action: the store call it makes, with which of its fields.
def _job_id(form):
    try:
        return int(form.get("job_id", ""))
    except ValueError:
        raise store.ActionError("No job named")


def _tables(form):
    """Checked tables (export) or a comma-separated list (import)."""
    return [t.strip() for text in form.getlist("tables") for t in text.split(",") if t.strip()]


def _schedule_fields(form):
    return {
        "connection": form.get("connection", ""),
        "kind": form.get("kind", ""),
        "strategy": form.get("strategy", ""),
        "every_s": form.get("every_s", "").strip(),
        "on_change": form.get("on_change") == "on",
        "debounce_ms": form.get("debounce_ms", "").strip(),
        "tables": _tables(form),
        "schema": form.get("schema", "").strip(),
    }


ACTIONS = {
    "test": lambda path, actor, form: store.test_connection(
        path, actor, form.get("name", "").strip(), form.get("connection_string", "").strip()),
    "save": lambda path, actor, form: store.save_connection(
        path, actor, form.get("name", "").strip(), form.get("connection_string", "").strip()),
    "delete": lambda path, actor, form: store.delete_connection(path, actor, form.get("name", "")),
    "export": lambda path, actor, form: store.export_dry_run(
        path, actor, form.get("name", ""), _tables(form), form.get("schema", "").strip()),
    "import": lambda path, actor, form: store.import_dry_run(
        path, actor, form.get("name", ""), form.get("strategy", ""), _tables(form),
        form.get("schema", "").strip()),
    "confirm": lambda path, actor, form: store.confirm(
        path, actor, _job_id(form), form.get("confirm_name", "").strip()),
    "cancel": lambda path, actor, form: store.cancel(path, actor, _job_id(form)),
    "retry": lambda path, actor, form: store.retry(path, actor, _job_id(form)),
    "track": lambda path, actor, form: store.track(path, actor, form.get("table", "")),
    "untrack": lambda path, actor, form: store.untrack(path, actor, form.get("table", "")),
    "schedule": lambda path, actor, form: store.schedule(
        path, actor, form.get("name", "").strip(), _schedule_fields(form)),
    "unschedule": lambda path, actor, form: store.unschedule(path, actor, form.get("name", "")),
}


class Form:
    """A posted form; getlist for fields given several times (checked tables)."""

    def __init__(self, body):
        self.fields = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)

    def get(self, key, default=None):
        return self.fields.get(key, [default])[0]

    def getlist(self, key):
        return self.fields.get(key, [])


async def action(datasette, request):
    await require_permission(datasette, request)
    if request.method != "POST":
        return Response.text("POST only", status=405)
    database = request.url_vars["database"]
    path = database_path(datasette, database)
    form = Form(await request.post_body())
    handler = ACTIONS.get(form.get("action", ""))
    back = form.get("back", "")
    redirect = back if back.startswith(page_url(datasette, database)) else page_url(
        datasette, database)
    if handler is None:
        datasette.add_message(request, "Unknown action", datasette.ERROR)
        return Response.redirect(redirect)
    actor_id = (request.actor or {}).get("id")
    try:
        result = await asyncio.to_thread(handler, path, actor_id, form)
    except (sqlite3.Error, store.ActionError) as error:
        datasette.add_message(request, str(error), datasette.ERROR)
        return Response.redirect(redirect)
    if isinstance(result, tuple):
        # A queued job: Job History shows it running.
        _job_id_queued, result = result
        redirect = page_url(datasette, database) + "#job-history"
    datasette.add_message(request, result, datasette.INFO)
    return Response.redirect(redirect)


def routes():
    database = r"(?P<database>[^/]+)"
    job = database + r"/jobs/(?P<job_id>\d+)"
    return [
        (r"^/-/cloud-sync$", index),
        (rf"^/-/cloud-sync/{database}$", database_page),
        (rf"^/-/cloud-sync/{database}/action$", action),
        (rf"^/-/cloud-sync/{database}/jobs\.json$", history_json),
        (rf"^/-/cloud-sync/{job}$", job_page),
        (rf"^/-/cloud-sync/{job}/report\.(?P<format>json|csv|md)$", report_download),
    ]
