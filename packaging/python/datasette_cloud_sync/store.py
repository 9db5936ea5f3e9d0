"""Everything the admin page reads or does, as calls of the extension's SQL functions.

Each call opens a connection of its own to the database file, loads the extension, names the
actor (cloud_sync_set_actor) so that jobs and connection changes record who asked, runs, and
closes. These connections carry no guard (guard.py): only the page uses them, after checking the
actor's permission. Every function here blocks; the views run them in a thread.
"""

import contextlib
import json
import sqlite3

import sqlite_cloud_sync

# The confirmation's age limit when the dry run's options name none: the extension's default
# confirm_max_age_s (docs/reference.md, cloud_sync_export).
DEFAULT_CONFIRM_MAX_AGE_S = 3600
ACTIVE_STATUSES = ("queued", "running")
STRATEGIES = {
    "skip": "keeps local rows whose key exists; adds the remote's new rows",
    "overwrite": "replaces local rows whose key exists with the remote's; adds new rows",
    "merge": "updates changed local rows and adds new ones; keeps local-only rows",
}
REPORT_FORMATS = {"json": ("json", "application/json"), "csv": ("csv", "text/csv"),
                  "md": ("markdown", "text/markdown")}
HISTORY_LIMIT = 50


class ActionError(Exception):
    """An action the page refuses before calling the extension (its message is shown)."""


@contextlib.contextmanager
def connect(path, actor_id=None):
    conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        sqlite_cloud_sync.load(conn)
        if actor_id is not None:
            conn.execute("SELECT cloud_sync_set_actor(?)", [str(actor_id)])
        yield conn
    finally:
        conn.close()


def columns_of(conn, table):
    return [row["name"] for row in conn.execute("SELECT name FROM pragma_table_info(?)", [table])]


def scalar(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()[0]


def call(path, actor_id, sql, *params):
    """The one value of `sql` (a cloud_sync_* call), run on a page connection as `actor_id`."""
    with connect(path, actor_id) as conn:
        return scalar(conn, sql, params)


def start_worker(path):
    """Starts the extension's worker for the database file; returns its status."""
    return json.loads(call(path, None, "SELECT cloud_sync_worker_start()"))


# Reading


def overview(path):
    """What the database's page shows."""
    with connect(path) as conn:
        return {
            "debug": json.loads(scalar(conn, "SELECT cloud_sync_debug()")),
            "worker": json.loads(scalar(conn, "SELECT cloud_sync_worker_status()")),
            "connections": connections(conn),
            "connection_events": connection_events(conn),
            "jobs": jobs(conn),
            "tracked": tracked(conn),
            "schedules": [dict(row) for row in conn.execute(
                "SELECT * FROM cloud_sync_schedules ORDER BY name")],
            "local_tables": [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
                "'cloud\\_sync\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY name")],
            "strategies": STRATEGIES,
        }


def connections(conn):
    """The saved connections, every column but the ciphertext, with last_test parsed."""
    shown = [c for c in columns_of(conn, "cloud_sync_connections")
             if c != "connection_string_encrypted"]
    rows = [dict(row) for row in conn.execute(
        "SELECT {} FROM cloud_sync_connections ORDER BY name".format(
            ", ".join(f'"{c}"' for c in shown)))]
    for row in rows:
        row["last_test"] = json.loads(row["last_test"]) if row.get("last_test") else None
    return rows


def connection_events(conn):
    """Who saved, replaced or deleted which connection, newest first."""
    return [dict(row) for row in conn.execute(
        "SELECT * FROM cloud_sync_connection_events ORDER BY id DESC LIMIT ?", [HISTORY_LIMIT])]


def jobs(conn):
    """The newest jobs first, as cloud_sync_jobs_vtab shows them, with their next attempt."""
    rows = [dict(row) for row in conn.execute(
        "SELECT v.*, j.next_attempt_at FROM cloud_sync_jobs_vtab v "
        "JOIN cloud_sync_jobs j ON j.id = v.id ORDER BY v.id DESC LIMIT ?", [HISTORY_LIMIT])]
    for row in rows:
        row.pop("summary", None)
        row.setdefault("requested_by", None)
    return rows


def history(path):
    """Job History alone, for the page's refresh."""
    with connect(path) as conn:
        rows = jobs(conn)
    return {"jobs": rows, "active": any(job["status"] in ACTIVE_STATUSES for job in rows)}


def tracked(conn):
    rows = [dict(row) for row in conn.execute(
        "SELECT * FROM cloud_sync_tracked ORDER BY table_name")]
    for row in rows:
        exports = json.loads(row["exports"] or "[]")
        row["exports"] = exports
        row["last_export"] = max(exports, key=lambda e: e["exported_at"] or "", default=None)
    return rows


def job(path, job_id):
    """One job: its row, options, per-table preview, problems, log, and what can be done next."""
    with connect(path) as conn:
        row = conn.execute(
            "SELECT v.*, j.options, j.next_attempt_at, "
            "(julianday('now') - julianday(j.finished_at)) * 86400.0 AS age_s "
            "FROM cloud_sync_jobs_vtab v JOIN cloud_sync_jobs j ON j.id = v.id WHERE v.id = ?",
            [job_id]).fetchone()
        if row is None:
            return None
        found = dict(row)
        found.setdefault("requested_by", None)
        found["options"] = json.loads(found["options"] or "{}")
        summary = json.loads(found.pop("summary") or "null") or {}
        found["problems"] = summary.get("problems", [])
        found["problems_total"] = summary.get("problems_total", 0)
        found["schema"] = summary.get("schema") or found["options"].get("schema", "public")
        found["tables"] = [dict(r) for r in conn.execute(
            "SELECT * FROM cloud_sync_job_tables(?)", [job_id])]
        found["log"] = [dict(r) for r in conn.execute(
            "SELECT * FROM cloud_sync_job_log(?)", [job_id])]
        found["connection_saved"] = conn.execute(
            "SELECT 1 FROM cloud_sync_connections WHERE name = ?",
            [found["connection_name"]]).fetchone() is not None
    found["max_age_s"] = max_age(found)
    found["confirmable"] = confirmable(found)
    found["can_cancel"] = found["status"] in ACTIVE_STATUSES
    found["can_retry"] = found["status"] in ("failed", "cancelled")
    return found


def max_age(found):
    return int(found["options"].get("confirm_max_age_s") or DEFAULT_CONFIRM_MAX_AGE_S)


def confirmable(found):
    """A succeeded, problem-free dry run younger than the age limit, whose connection is still
    saved: the only jobs a full export or a real import may follow."""
    return (
        found["dry_run"] == 1
        and found["status"] == "succeeded"
        and found["problems_total"] == 0
        and found["age_s"] is not None
        and found["age_s"] < found["max_age_s"]
        and found["connection_saved"]
    )


def report(path, job_id, fmt):
    return call(path, None, "SELECT cloud_sync_report(?, ?)", job_id, REPORT_FORMATS[fmt][0])


# Actions: each returns the message the page shows; an extension error raises sqlite3.Error,
# whose text is the extension's own (it never holds a secret).


def test_connection(path, actor_id, name, connection_string):
    target = connection_string or name
    if not target:
        raise ActionError("Test Connection needs a connection string, or the name of a saved one")
    result = json.loads(call(path, actor_id, "SELECT cloud_sync_test(?)", target))
    return (
        "Connection OK: {target}, PostgreSQL {server_version}, TLS {tls}, certificate {verified}, "
        "round trip {rtt_ms} ms".format(
            target=result.get("target"),
            server_version=result.get("server_version"),
            tls="on" if result.get("tls") else "off",
            verified="verified" if result.get("verified") else "not verified",
            rtt_ms=round(result.get("rtt_ms") or 0, 1),
        )
    )


def save_connection(path, actor_id, name, connection_string):
    if not name or not connection_string:
        raise ActionError("Save Connection needs a name and a connection string")
    call(path, actor_id, "SELECT cloud_sync_save(?, ?)", name, connection_string)
    return f"Saved connection {name}"


def delete_connection(path, actor_id, name):
    call(path, actor_id, "SELECT cloud_sync_delete(?)", name)
    return f"Deleted connection {name}"


def export_dry_run(path, actor_id, name, tables, schema):
    options = selection(tables, schema)
    job_id = call(path, actor_id, "SELECT cloud_sync_export(?, 1, ?)", name, json.dumps(options))
    return job_id, f"Queued export dry run {job_id} to {name}"


def import_dry_run(path, actor_id, name, strategy, tables, schema):
    if strategy not in STRATEGIES:
        raise ActionError(f"Import (dry run) needs a strategy: {', '.join(STRATEGIES)}")
    options = selection(tables, schema)
    job_id = call(path, actor_id, "SELECT cloud_sync_import(?, 1, ?, ?)",
                  name, strategy, json.dumps(options))
    return job_id, f"Queued import dry run {job_id} from {name} ({strategy})"


def selection(tables, schema):
    options = {}
    if tables:
        options["tables"] = tables
    if schema:
        options["schema"] = schema
    return options


def confirm(path, actor_id, job_id, typed_name):
    """The full export or real import that follows dry run `job_id`, once the admin has typed
    its connection's name. The same options (tables, schema, strategy); an export confirms the
    dry run, which the extension checks again."""
    found = job(path, job_id)
    if found is None or not found["confirmable"]:
        raise ActionError(f"Job {job_id} cannot be confirmed: it must be a succeeded dry run "
                          "with no problems, at most {} s old".format(
                              found["max_age_s"] if found else DEFAULT_CONFIRM_MAX_AGE_S))
    name = found["connection_name"]
    if typed_name != name:
        raise ActionError(f"Type the connection's name, {name}, to confirm")
    options = {k: v for k, v in found["options"].items() if k not in ("confirm", "requested_by")}
    if found["kind"] == "export":
        options["confirm"] = job_id
        new_id = call(path, actor_id, "SELECT cloud_sync_export(?, 0, ?)",
                      name, json.dumps(options))
        return new_id, f"Queued full export {new_id} to {name}, confirming dry run {job_id}"
    new_id = call(path, actor_id, "SELECT cloud_sync_import(?, 0, ?, ?)",
                  name, options.get("strategy", "skip"), json.dumps(options))
    return new_id, f"Queued import {new_id} from {name}, after dry run {job_id}"


def cancel(path, actor_id, job_id):
    answer = json.loads(call(path, actor_id, "SELECT cloud_sync_cancel(?)", job_id))
    return f"Cancel requested for job {job_id}: it stops {answer.get('stops') or 'now'}"


def retry(path, actor_id, job_id):
    call(path, actor_id, "SELECT cloud_sync_retry(?)", job_id)
    return f"Job {job_id} queued again"


def track(path, actor_id, table):
    answer = json.loads(call(path, actor_id, "SELECT cloud_sync_track(?)", table))
    return f"{table}: {answer['status']}"


def untrack(path, actor_id, table):
    answer = json.loads(call(path, actor_id, "SELECT cloud_sync_untrack(?)", table))
    return f"{table}: untracked, {answer['changes_dropped']} pending changes dropped"


def schedule(path, actor_id, name, fields):
    """Creates or replaces schedule `name` from the form's fields (given as typed: the
    extension checks each, and its message names the one that is wrong)."""
    options = {"connection": fields["connection"], "kind": fields["kind"]}
    if fields["every_s"]:
        options["every_s"] = fields["every_s"]
    if fields["on_change"]:
        options["on_change"] = True
        if fields["debounce_ms"]:
            options["debounce_ms"] = fields["debounce_ms"]
    if fields["kind"] == "import":
        options["strategy"] = fields["strategy"]
    options.update(selection(fields["tables"], fields["schema"]))
    answer = json.loads(call(path, actor_id, "SELECT cloud_sync_schedule(?, ?)",
                             name, json.dumps(options)))
    return f"Schedule {name} {'replaced' if answer['replaced'] else 'created'}"


def unschedule(path, actor_id, name):
    call(path, actor_id, "SELECT cloud_sync_unschedule(?)", name)
    return f"Schedule {name} removed"
