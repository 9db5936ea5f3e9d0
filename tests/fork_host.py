"""A Python process that forks after loading cloud_sync and starting a worker, as a pre-forking
server (gunicorn --preload) or multiprocessing's "fork" start method does, against the
harness's PostgreSQL.

The child has none of its parent's threads, so it must start with no worker: status says not
running, stop returns at once, start starts one of its own. The parent's worker keeps running,
and the job it is running when the child forks stays the parent's: the child's worker must not
recover it as orphaned, and a cancel from the child reaches it through the database. The child runs its checks and reports a failure through its exit
status; it exits through C's exit(), as a real server's worker process does. A crash shows as a negative status, a hang as a timeout.

Run by scripts/test.sh with Debian's Python: /usr/bin/python3 tests/fork_host.py
"""

import ctypes
import json
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import traceback
import unittest

from pg_env import pg_url

LIB = os.environ["CLOUD_SYNC_LIB"]
KEY = "3f1c6a7e9b2d4c8e0a5f7b1d3e9c2a4b6d8f0e1c3a5b7d9f2e4c6a8b0d1f3e5a"
# How long a stop with no worker of this process to wait for may take: it returns at once, while
# the defect it guards against blocked for 60 s.
PROMPT = 5.0
# How long the test waits for a job, or for the child.
WAIT = 90.0
# The stalled job's connect timeout: it is `running`, claimed by the parent, for this long.
STALL_S = 4


def connect(path):
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    conn.enable_load_extension(True)
    conn.load_extension(LIB)
    conn.enable_load_extension(False)
    return conn


def one(conn, sql, *args):
    return conn.execute(sql, args).fetchone()[0]


def call_json(conn, sql, *args):
    return json.loads(one(conn, sql, *args))


def timed(conn, sql):
    """`sql`'s JSON result and how many seconds it took."""
    began = time.monotonic()
    result = call_json(conn, sql)
    return result, time.monotonic() - began


def job(conn, job_id):
    row = conn.execute(
        "SELECT status, claimed_by, attempts, coalesce(error, '') FROM cloud_sync_jobs"
        " WHERE id = ?",
        (job_id,),
    ).fetchone()
    return dict(zip(["status", "claimed_by", "attempts", "error"], row))


def wait_for(conn, job_id, done):
    deadline = time.monotonic() + WAIT
    while not done(job(conn, job_id)):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id}: {job(conn, job_id)}; worker: "
                f"{one(conn, 'SELECT cloud_sync_worker_status()')}"
            )
        time.sleep(0.05)
    return job(conn, job_id)


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def child_checks(path, inherited, stalled, parent_pid):
    """The forked child's part. A real forking server opens its own connection in each child
    (SQLite's rule: a connection must not be carried across fork()); the inherited connection
    is only asked a read, to show that the answer is this process's whichever connection asks."""
    status = call_json(inherited, "SELECT cloud_sync_worker_status()")
    check(status["running"] is False, f"status through the inherited connection: {status}")
    conn = connect(path)
    status = call_json(conn, "SELECT cloud_sync_worker_status()")
    check(status["running"] is False, f"status: {status}")
    check(status["started_at"] is None, f"the parent's worker in the status: {status}")
    stopped, took = timed(conn, "SELECT cloud_sync_worker_stop()")
    check(stopped == {"stopped": False, "reason": "not running"}, f"stop: {stopped}")
    check(took < PROMPT, f"stop with no worker took {took:.1f} s")
    started = call_json(conn, """SELECT cloud_sync_worker_start('{"poll_interval_ms": 50}')""")
    check(started["running"] is True and started["already_running"] is False, f"{started}")
    # The child's worker recovers orphaned jobs at its first poll; give it a few.
    time.sleep(0.5)
    status = call_json(conn, "SELECT cloud_sync_worker_status()")
    check(status["running"] is True and status["last_error"] is None, f"status: {status}")
    stalled_job = job(conn, stalled)
    check(
        stalled_job["status"] == "running"
        and stalled_job["claimed_by"] == f"pid:{parent_pid}"
        and stalled_job["attempts"] == 1,
        f"the parent's running job was touched by the child: {stalled_job}",
    )
    # A cancel from the child reaches that job through the database, not as if it ran here.
    cancelled = call_json(conn, "SELECT cloud_sync_cancel(?)", stalled)
    check(
        cancelled["stops"]
        == "within a second: the process running it reads the request from the job's row",
        f"cancel: {cancelled}",
    )
    stopped, took = timed(conn, "SELECT cloud_sync_worker_stop()")
    check(stopped == {"stopped": True, "jobs_done": 0}, f"stop: {stopped}")
    check(took < PROMPT, f"stopping the child's idle worker took {took:.1f} s")
    started = call_json(conn, "SELECT cloud_sync_worker_start()")
    check(started["already_running"] is False, f"start again: {started}")
    conn.close()
    # Exits with this worker running: the exit must end it, neither waiting nor crashing.


def run_child(*args):
    """Runs `child_checks` and ends the process through C's exit() with 0 when every check
    passed, 1 otherwise."""
    code = 1
    try:
        child_checks(*args)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        ctypes.CDLL(None).exit(code)


def wait_child(pid, timeout):
    """The child's exit status (negative: the signal that ended it); kills it past `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the forked child still runs after {timeout} s")
        time.sleep(0.05)


class ForkHost(unittest.TestCase):
    def setUp(self):
        os.environ["CLOUD_SYNC_ENCRYPTION_KEY"] = KEY
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "app.db")
        # Accepts TCP connections and never answers: a job to it stays `running` until its
        # connect timeout.
        self.silent = socket.socket()
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(8)

    def tearDown(self):
        self.silent.close()
        self.dir.cleanup()

    def test_a_forked_child_starts_with_no_worker_and_leaves_the_parent_s_jobs_alone(self):
        conn = connect(self.path)
        conn.executescript(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
            "INSERT INTO items VALUES (1, 'tea', 3.5), (2, 'coffee', 4.25);"
        )
        one(conn, "SELECT cloud_sync_save('prod', ?)", pg_url())
        port = self.silent.getsockname()[1]
        one(
            conn,
            "SELECT cloud_sync_save('silent', ?)",
            f"postgresql://u:p@127.0.0.1:{port}/db?sslmode=disable&connect_timeout={STALL_S}",
        )
        stalled = one(
            conn,
            "SELECT cloud_sync_export('silent', 1, ?)",
            json.dumps({"tables": ["items"], "max_attempts": 1}),
        )
        started = call_json(conn, """SELECT cloud_sync_worker_start('{"poll_interval_ms": 50}')""")
        self.assertTrue(started["running"])
        wait_for(conn, stalled, lambda j: j["status"] == "running")

        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            run_child(self.path, conn, stalled, parent_pid)
        self.assertEqual(wait_child(pid, WAIT), 0, "the child failed a check, or crashed")

        # The stalled job ends in the parent, after its one attempt, cancelled as the child asked
        # while it was still connecting: its guard read the request from the job's row.
        ended = wait_for(conn, stalled, lambda j: j["status"] not in ("queued", "running"))
        self.assertEqual(ended["status"], "cancelled", ended)
        self.assertEqual(ended["attempts"], 1, ended)
        self.assertIn("cancelled while connecting to 127.0.0.1:", ended["error"])
        # The parent's worker still runs and finishes a job queued after the fork.
        dry_run = one(conn, "SELECT cloud_sync_export('prod', 1)")
        ended = wait_for(conn, dry_run, lambda j: j["status"] not in ("queued", "running"))
        self.assertEqual(ended["status"], "succeeded", ended)
        self.assertEqual(ended["claimed_by"], f"pid:{parent_pid}")
        status = call_json(conn, "SELECT cloud_sync_worker_status()")
        self.assertTrue(status["running"], status)
        self.assertEqual(status["jobs_done"], 2, status)
        stopped = call_json(conn, "SELECT cloud_sync_worker_stop()")
        self.assertEqual(stopped, {"stopped": True, "jobs_done": 2})
        conn.close()


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    passed = result.testsRun - len(result.failures) - len(result.errors)
    print(f"fork: {passed} passed, {len(result.failures) + len(result.errors)} failed")
    sys.exit(0 if result.wasSuccessful() else 1)
