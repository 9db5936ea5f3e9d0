"""Calls every SQL function and table-valued function cloud_sync registers with wrong argument
counts and hostile values, in Debian's own Python (its sqlite3 loads extensions), and asserts
that no call crashes or hangs the host and that no message or result holds the password.

The functions are found from SQLite itself (pragma_function_list, pragma_module_list and the
hidden columns of pragma_table_xinfo), so a new function is fuzzed without editing this file.
Each function runs in a child process of its own, on its own copy of a database that holds two
saved connections embedding the real test password (one to the test server, one to a closed
port) and a finished job: a crash shows as a negative exit status, a hang as a timeout, and the
child's last line on stderr names the call. Calls are deterministic (a fixed seed) and reach
only loopback: the test server, or 127.0.0.1 port 1 where nothing listens. No local table but
cloud_sync's own exists, so no export can write to the shared test database.

Run by scripts/test.sh with Debian's Python: /usr/bin/python3 tests/fuzz_host.py
"""

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

LIB = os.environ["CLOUD_SYNC_LIB"]
PASSWORD = os.environ["CLOUD_SYNC_TEST_PG_PASSWORD"]
ENCODED_PASSWORD = urllib.parse.quote(PASSWORD, safe="")
KEY = os.urandom(32).hex()
SECRETS = [PASSWORD, ENCODED_PASSWORD, KEY]
SERVER_URL = (
    f"postgresql://{os.environ['CLOUD_SYNC_TEST_PG_USER']}:{ENCODED_PASSWORD}"
    f"@localhost:{os.environ['CLOUD_SYNC_TEST_PG_PORT']}/{os.environ['CLOUD_SYNC_TEST_PG_DB']}"
    f"?sslmode=verify-full&sslrootcert={os.environ['CLOUD_SYNC_TEST_PG_CA']}&connect_timeout=1"
)
CLOSED_URL = f"postgresql://u:{ENCODED_PASSWORD}@127.0.0.1:1/db?connect_timeout=1"
# Errors cut what they echo at 100 characters; with their advice, the longest stay well under
# this bound, which an echoed 10 MB argument (or a cut that failed) far exceeds.
MESSAGE_BOUND = 1_000
CHILD_TIMEOUT_S = 240

# The child: loads the extension into its copy of the database, makes the calls it is given
# (argv[2], a JSON file), prints one JSON line of findings on stdout, and names each call on
# stderr before making it, so that a crash or hang is traced to its call.
CHILD = r"""
import json, sqlite3, sys
lib, calls_path = sys.argv[1:3]
secrets = json.loads(sys.stdin.read())
with open(calls_path) as f:
    job = json.load(f)
conn = sqlite3.connect(job["database"], timeout=1, isolation_level=None)
conn.text_factory = lambda b: b.decode("utf-8", "replace")
conn.enable_load_extension(True)
conn.load_extension(lib)
found = {"calls": 0, "errors": 0, "leaks": [], "longest": [0, ""], "unexpected": []}

def check(text, what):
    for secret in secrets:
        if secret in text:
            found["leaks"].append(what + ": " + text[:300])

for description, sql, params in job["calls"]:
    sys.stderr.write("call: " + description[:300] + "\n")
    sys.stderr.flush()
    params = [bytes.fromhex(p[1]) if isinstance(p, list) else p for p in params]
    params = ["x" * 10_000_000 if p == "<10 MB>" else p for p in params]
    found["calls"] += 1
    try:
        rows = conn.execute(sql, params).fetchall()
        check(repr(rows), description)
    except sqlite3.Error as e:
        found["errors"] += 1
        message = str(e)
        check(message, description)
        if len(message) > found["longest"][0]:
            found["longest"] = [len(message), description[:200]]
    except Exception as e:
        found["unexpected"].append(f"{description[:200]}: {type(e).__name__}: {str(e)[:300]}")
    if conn.in_transaction:
        conn.execute("ROLLBACK")
try:
    conn.execute("SELECT cloud_sync_worker_stop()").fetchall()
except sqlite3.Error:
    pass
conn.close()
print(json.dumps(found))
"""


def blob(data):
    """A blob parameter, as the call list (JSON) carries it."""
    return ["blob", data.hex()]


# Each value: (label, SQL expression, parameters). Most are bound; text that is not valid UTF-8
# can only be made in SQL.
VALUES = [
    ("NULL", "?", [None]),
    ("0", "?", [0]),
    ("-1", "?", [-1]),
    ("1", "?", [1]),
    ("2", "?", [2]),
    ("3", "?", [3]),
    ("i64::MAX", "?", [2**63 - 1]),
    ("i64::MIN", "?", [-(2**63)]),
    ("1.5", "?", [1.5]),
    ("1.0", "?", [1.0]),
    ("-0.0", "?", [-0.0]),
    ("1e308", "?", [1e308]),
    ("NaN", "?", [float("nan")]),
    ("inf", "?", [float("inf")]),
    ("-inf", "?", [float("-inf")]),
    ("''", "?", [""]),
    ("'1'", "?", ["1"]),
    ("' 1 '", "?", [" 1 "]),
    ("'abc'", "?", ["abc"]),
    ("10 MB text", "?", ["<10 MB>"]),
    ("empty blob", "?", [blob(b"")]),
    ("blob ff fe", "?", [blob(b"\xff\xfe")]),
    ("blob '1'", "?", [blob(b"1")]),
    ("invalid UTF-8 text", "CAST(x'ff' AS TEXT)", []),
    ("text with invalid UTF-8 and NUL", "CAST(x'31ff0032c3' AS TEXT)", []),
    ("text with NUL", "CAST(x'6675007a7a' AS TEXT)", []),
    ("deep JSON [", "?", ["[" * 10_000]),
    ("deep JSON {", "?", ['{"a":' * 10_000]),
    ("deep valid JSON", "?", ["[" * 3_000 + "]" * 3_000]),
    ("{}", "?", ["{}"]),
    ('{"confirm": 1.0}', "?", ['{"confirm": 1.0}']),
    ("duplicate keys", "?", ['{"a":1,"a":2}']),
    ("unknown keys", "?", ['{"no_such_option": true, "poll_interval_ms": 100.0}']),
    ("known keys, bad types", "?", ['{"tables": 1, "schema": [], "confirm": "x"}']),
    ("JSON array", "?", ["[1, 2]"]),
    ("'skip'", "?", ["skip"]),
    ("'overwrite'", "?", ["overwrite"]),
    ("'merge'", "?", ["merge"]),
    ("'markdown'", "?", ["markdown"]),
    ("'csv'", "?", ["csv"]),
    ("saved name 'server'", "?", ["server"]),
    ("saved name 'closed'", "?", ["closed"]),
    ("'cloud_sync_jobs'", "?", ["cloud_sync_jobs"]),
    ("'sqlite_master'", "?", ["sqlite_master"]),
    ("URL with a made-up password", "?", ["postgresql://u:pw@127.0.0.1:1/db?connect_timeout=1"]),
    ("URL to a closed port with the real password", "?", [CLOSED_URL]),
    ("URL to the server with the real password", "?", [SERVER_URL]),
    ("malformed URL ending in the raw password", "?", ["postgresql://u:" + PASSWORD]),
    ("URL with the raw password unencoded", "?", [f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"]),
    ("key=value string with the password", "?",
     [f"host=127.0.0.1 port=1 password='{PASSWORD}' connect_timeout=1"]),
]
# A few values that keep calls plausible, so the fuzzed argument is checked past the others.
PLAUSIBLE = ["server", 1, "skip", "{}", None]
RANDOM_CALLS = 120
WRONG_ARITY_CALLS = 4


def discover(conn):
    """{name: (accepted arities, SQL template)} of every function and table-valued function."""
    found = {}
    rows = conn.execute(
        "SELECT name, narg FROM pragma_function_list WHERE name LIKE 'cloud\\_sync\\_%' ESCAPE '\\'"
    ).fetchall()
    for name, narg in rows:
        arities = range(0, 7) if narg < 0 else [narg]
        found.setdefault(name, (set(), "SELECT {name}({args})"))[0].update(arities)
    modules = conn.execute(
        "SELECT name FROM pragma_module_list WHERE name LIKE 'cloud\\_sync\\_%' ESCAPE '\\'"
    ).fetchall()
    for (name,) in modules:
        hidden = conn.execute(
            "SELECT count(*) FROM pragma_table_xinfo(?) WHERE hidden != 0", (name,)
        ).fetchone()[0]
        found[name] = (set(range(hidden + 1)), "SELECT * FROM {name}({args})")
    return found


def columns(conn, module):
    """Every column of a table-valued function, its hidden argument columns included."""
    return [row[0] for row in conn.execute("SELECT name FROM pragma_table_xinfo(?)", (module,))]


def call(template, name, args):
    """One call: (description, SQL, parameters) for the values `args`."""
    sql = template.format(name=name, args=", ".join(expr for _, expr, _ in args))
    params = [p for _, _, ps in args for p in ps]
    return (f"{name}({', '.join(label for label, _, _ in args)})", sql, params)


def plausible(position):
    value = PLAUSIBLE[position % len(PLAUSIBLE)]
    return (repr(value), "?", [value])


def calls_for(name, arities, template, rng):
    """Every arity from 0 to two past the largest: at an accepted arity, each value in each
    position (once among plausible values, once among random ones) and random combinations; at
    a wrong one, a few random combinations."""
    calls = []
    for arity in range(0, max(arities) + 3):
        if arity not in arities:
            for _ in range(WRONG_ARITY_CALLS if arity else 1):
                calls.append(call(template, name, rng.choices(VALUES, k=arity)))
            continue
        if arity == 0:
            calls.append(call(template, name, []))
            continue
        for position in range(arity):
            for value in VALUES:
                args = [plausible(i) for i in range(arity)]
                args[position] = value
                calls.append(call(template, name, args))
                args = rng.choices(VALUES, k=arity)
                args[position] = value
                calls.append(call(template, name, args))
        for _ in range(RANDOM_CALLS):
            calls.append(call(template, name, rng.choices(VALUES, k=arity)))
    return calls


def constraint_calls(name, cols):
    """Each value as a constraint on each column of a table-valued function."""
    return [
        (f"{name} WHERE {col} {op} {label}", f"SELECT * FROM {name} WHERE {col} {op} {expr}", ps)
        for col in cols
        for op in ["=", ">"]
        for label, expr, ps in VALUES
        if label != "10 MB text"
    ]


class Fuzz(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.template = os.path.join(cls.dir.name, "template.db")
        os.environ["CLOUD_SYNC_ENCRYPTION_KEY"] = KEY
        conn = sqlite3.connect(cls.template, isolation_level=None)
        conn.enable_load_extension(True)
        conn.load_extension(LIB)
        conn.execute("SELECT cloud_sync_save('server', ?)", (SERVER_URL,))
        conn.execute("SELECT cloud_sync_save('closed', ?)", (CLOSED_URL,))
        # Job 1: a finished import dry run, so reports, logs and retries have a job to read.
        job = conn.execute("SELECT cloud_sync_import('server')").fetchone()[0]
        cls.first_run = conn.execute("SELECT cloud_sync_run(?)", (job,)).fetchone()[0]
        cls.functions = discover(conn)
        cls.columns = {
            name: columns(conn, name)
            for name, (_, template) in cls.functions.items()
            if "FROM" in template
        }
        conn.close()

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def run_child(self, index, name, calls):
        database = os.path.join(self.dir.name, f"{index}.db")
        shutil.copyfile(self.template, database)
        calls_path = os.path.join(self.dir.name, f"{index}.json")
        with open(calls_path, "w") as f:
            json.dump({"database": database, "calls": calls}, f)
        try:
            child = subprocess.run(
                [sys.executable, "-c", CHILD, LIB, calls_path],
                input=json.dumps(SECRETS),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=CHILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            last = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()[-1:]
            return name, None, f"hung for {CHILD_TIMEOUT_S} s at {last}"
        if child.returncode != 0:
            last = child.stderr.strip().splitlines()[-5:]
            return name, None, f"exit status {child.returncode}, last output {last}"
        return name, json.loads(child.stdout.strip().splitlines()[-1]), None

    def fuzz_all(self):
        if not hasattr(Fuzz, "results"):
            rng = random.Random(13)
            work = []
            for name in sorted(self.functions):
                arities, template = self.functions[name]
                calls = calls_for(name, arities, template, rng)
                calls += constraint_calls(name, self.columns.get(name, []))
                work.append((name, calls))
            with ThreadPoolExecutor(max_workers=2) as pool:
                Fuzz.results = list(
                    pool.map(lambda w: self.run_child(w[0], *w[1]), enumerate(work))
                )
        return Fuzz.results

    def test_every_function_is_found(self):
        functions = self.functions
        self.assertTrue(any("FROM" not in t for _, t in functions.values()), functions)
        self.assertTrue(any("FROM" in t for _, t in functions.values()), functions)
        self.assertIn("cloud_sync_test", functions)
        self.assertIn("cloud_sync_job_log", functions)
        self.assertEqual(self.functions["cloud_sync_job_log"][0], {0, 1})
        self.assertIn('"status":"succeeded"', self.first_run)

    def test_no_call_crashes_hangs_or_echoes_a_secret(self):
        problems = []
        calls = errors = 0
        for name, found, failure in self.fuzz_all():
            if failure:
                problems.append(f"{name}: {failure}")
                continue
            calls += found["calls"]
            errors += found["errors"]
            problems += [f"{name}: password or key in {leak}" for leak in found["leaks"]]
            problems += [f"{name}: {error}" for error in found["unexpected"]]
        print(
            f"\nfuzz: {calls} calls to {len(self.functions)} functions, {errors} SQL errors",
            file=sys.stderr,
        )
        self.assertEqual(problems, [], "\n".join(problems))

    def test_a_connection_string_given_in_the_wrong_place_is_not_quoted(self):
        conn = sqlite3.connect(os.path.join(self.dir.name, "misplaced.db"))
        conn.enable_load_extension(True)
        conn.load_extension(LIB)
        conn.execute("SELECT cloud_sync_save('server', ?)", (SERVER_URL,))
        for sql in [
            "SELECT cloud_sync_report(?)",
            "SELECT cloud_sync_report(1, ?)",
            "SELECT cloud_sync_track(?)",
            "SELECT cloud_sync_untrack(?)",
            "SELECT cloud_sync_import('server', 1, ?)",
            "SELECT * FROM cloud_sync_job_log(?)",
        ]:
            for url in [CLOSED_URL, f"host=127.0.0.1 password='{PASSWORD}'"]:
                with self.assertRaises(sqlite3.OperationalError, msg=sql) as caught:
                    conn.execute(sql, (url,)).fetchall()
                message = str(caught.exception)
                self.assertIn("a connection string (not shown)", message)
                self.assertNotIn(ENCODED_PASSWORD, message)
                self.assertNotIn(PASSWORD, message)
        conn.close()

    def test_bounded_error_messages(self):
        results = self.fuzz_all()
        self.assertTrue(all(found for _, found, _ in results), "a child failed: see the test above")
        longest = sorted(
            ((found["longest"][0], name, found["longest"][1]) for name, found, _ in results),
            reverse=True,
        )
        print("\nfuzz: longest error message per function:", file=sys.stderr)
        for length, name, where in longest:
            print(f"  {length:>9}  {where}", file=sys.stderr)
        too_long = [entry for entry in longest if entry[0] >= MESSAGE_BOUND]
        self.assertEqual(too_long, [], f"messages of {MESSAGE_BOUND} characters or more")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    passed = result.testsRun - len(result.failures) - len(result.errors)
    print(f"fuzz: {passed} passed, {len(result.failures) + len(result.errors)} failed")
    sys.exit(0 if result.wasSuccessful() else 1)
