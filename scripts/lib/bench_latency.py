#!/usr/bin/python3
"""The latency scenario of scripts/bench.sh (standard library only; run with /usr/bin/python3).

  bench_latency.py run LIB URL ADMIN_URL RTT_MS RUNS OUT.tsv   runs the jobs, direct and through
                                              scripts/lib/delay_proxy.py at RTT_MS, RUNS times;
                                              one line per run: job, direct s, delayed s, turns
  bench_latency.py report OUT.tsv RTT_MS RESULTS.md   writes the section between the latency
                                              markers of RESULTS.md (the rest is kept) and
                                              prints it

The app: TABLES tables of ROWS rows (`id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER
NOT NULL, price REAL, note TEXT`), all tracked. Each job is one sqlite3 shell process running
one statement; its wall time is measured direct and through the proxy, and the proxy counts the
round trips its connection waited for (delay_proxy.py --stats). psql loads the same tables
(CREATE TABLE + \\copy each, one transaction) over the same two links.

Then, once, the steady state of continuous sync over the delayed link: after a full export, the
background worker (in this process, through Python's sqlite3) runs a schedule every PERIOD_S
seconds for QUIET_S seconds with no local change, then for BUSY_S seconds while one row changes
each second. The proxy counts the connections each phase opens; the jobs' summaries say what
each export moved.
"""

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

TABLES = 50
ROWS = 200
PERIOD_S = 5
QUIET_S = 30
BUSY_S = 30
SCHEMA = "cloud_sync_bench_rtt"
HERE = os.path.dirname(os.path.abspath(__file__))

# Job name, what it is, and its round-trip budget as a function of the tables with rows to send.
JOBS = [
    ("dry_full", "dry-run export, empty remote", lambda: 10 + TABLES),
    ("full", "confirmed full export", lambda: 10 + TABLES),
    ("incr_none", "incremental export, nothing to send", lambda: 8),
    ("incr_one", "incremental export, 1 changed row in 1 table", lambda: 11),
    ("import_dry", "import dry run", lambda: 10 + TABLES),
    ("import", "import", lambda: 10 + TABLES),
    ("psql", f"psql: {TABLES} CREATE TABLE + {TABLES} \\copy, one transaction", None),
]

MARK_BEGIN = "<!-- latency: written by scripts/bench.sh --rtt; kept by the throughput run -->"
MARK_END = "<!-- latency end -->"


def create_sql(i):
    return (f"CREATE TABLE t{i:02d} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            f"qty INTEGER NOT NULL, price REAL, note TEXT)")


def make_app(path):
    db = sqlite3.connect(path)
    for i in range(TABLES):
        db.execute(create_sql(i))
        db.executemany(f"INSERT INTO t{i:02d} VALUES (?, ?, ?, ?, ?)",
                       [(r, f"item {i}-{r}", r * 7 % 1000, r * 1.25,
                         None if r % 5 == 0 else f"note, \"{r}\" é") for r in range(1, ROWS + 1)])
    db.commit()
    db.close()


class Proxy:
    def __init__(self, target, rtt):
        self.stats = tempfile.mktemp(prefix="cloud_sync_rtt_stats.")
        open(self.stats, "w").close()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "delay_proxy.py"), "--listen", "0",
             "--target", target, "--rtt", str(rtt), "--stats", self.stats],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            sys.exit("bench: the delay proxy did not start")
        self.port = int(line[1])

    def lines(self):
        """The "turns N" lines, once every connection opened so far has ended (waits up to
        5 s for the proxy to see the last close)."""
        for _ in range(250):
            with open(self.stats, encoding="ascii") as f:
                lines = f.read().splitlines()
            turns = [l for l in lines if l.startswith("turns ")]
            if len(turns) == len(lines) - len(turns):
                break
            time.sleep(0.02)
        return turns

    def opened(self):
        """Connections opened so far."""
        with open(self.stats, encoding="ascii") as f:
            return sum(1 for l in f.read().splitlines() if l == "open")

    def turns_since(self, before):
        """The turns of the connections that ended since `before` turns lines, summed."""
        return sum(int(l.split()[1]) for l in self.lines()[before:])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        os.unlink(self.stats)


def run(lib, url, admin, rtt, runs, out):
    rtt = float(rtt)
    u = urllib.parse.urlsplit(url)
    target = f"127.0.0.1:{u.port or 5432}"
    slow = urllib.parse.urlunsplit((u.scheme, u.netloc.rsplit(":", 1)[0] + ":{port}", u.path,
                                    u.query, u.fragment))
    direct_proxy = Proxy(target, 0)
    delayed_proxy = Proxy(target, rtt)
    work = tempfile.mkdtemp(prefix="cloud_sync_rtt.")
    template = os.path.join(work, "app.sqlite")
    make_app(template)
    csv_dir = os.path.join(work, "csv")
    os.mkdir(csv_dir)
    for i in range(TABLES):
        subprocess.run(["sqlite3", "-csv", template, f"SELECT * FROM t{i:02d}"], check=True,
                       stdout=open(os.path.join(csv_dir, f"t{i:02d}.csv"), "w"))
    try:
        with open(out, "a", encoding="utf-8") as results:
            for round_ in range(1, int(runs) + 1):
                times = {}
                for link, proxy in (("direct", direct_proxy), ("delayed", delayed_proxy)):
                    link_url = slow.replace("{port}", str(proxy.port))
                    for job, seconds, turns in one_round(lib, link_url, admin, work, template,
                                                         csv_dir, proxy):
                        times.setdefault(job, {})[link] = (seconds, turns)
                for job, _, _ in JOBS:
                    (d, _), (s, turns) = times[job]["direct"], times[job]["delayed"]
                    results.write(f"{job}\t{round_}\t{d:.4f}\t{s:.4f}\t{turns}\n")
                    print(f"  {job:<11} direct {d:6.3f} s  delayed {s:6.3f} s  "
                          f"~{(s - d) * 1000 / rtt:5.1f} round trips (counted {turns})",
                          flush=True)
            link_url = slow.replace("{port}", str(delayed_proxy.port))
            for key, value in steady_state(lib, link_url, admin, work, template, delayed_proxy):
                results.write(f"steady\t{key}\t{value}\n")
    finally:
        direct_proxy.stop()
        delayed_proxy.stop()
        shutil.rmtree(work)


def psql(admin, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", admin, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def one_round(lib, url, admin, work, template, csv_dir, proxy):
    """Every job once over the link `url` leads to; yields (job, wall seconds, turns)."""
    db = os.path.join(work, "round.sqlite")
    imp = os.path.join(work, "import.sqlite")
    for path in (db, imp):
        if os.path.exists(path):
            os.unlink(path)
    shutil.copy(template, db)
    psql(admin, f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; "
                f"CREATE SCHEMA {SCHEMA} AUTHORIZATION {urllib.parse.unquote(urllib.parse.urlsplit(url).username)}")
    opts = f"json_object('schema', '{SCHEMA}')"
    shell(lib, db, f"SELECT cloud_sync_save('b', '{url}');" +
          "".join(f"SELECT cloud_sync_track('t{i:02d}');" for i in range(TABLES)))

    def timed(job, database, sql):
        before = len(proxy.lines())
        started = time.perf_counter()
        result = shell(lib, database, sql)
        took = time.perf_counter() - started
        if '"status":"succeeded"' not in result.replace(" ", ""):
            sys.exit(f"bench: latency job {job} did not succeed: {result[:400]}")
        return took, proxy.turns_since(before), result

    def job_id(result):
        import json
        return json.loads(result)["id"]

    took, turns, dry = timed("dry_full", db, f"SELECT cloud_sync_run(cloud_sync_export('b', 1, {opts}))")
    yield "dry_full", took, turns
    confirm = f"json_object('schema', '{SCHEMA}', 'confirm', {job_id(dry)})"
    took, turns, _ = timed("full", db, f"SELECT cloud_sync_run(cloud_sync_export('b', 0, {confirm}))")
    yield "full", took, turns
    for job, change in (("incr_none", ""), ("incr_one", "UPDATE t07 SET qty = qty + 1 WHERE id = 42;")):
        dry = shell(lib, db, change + f"SELECT cloud_sync_run(cloud_sync_export('b', 1, {opts}))")
        confirm = f"json_object('schema', '{SCHEMA}', 'confirm', {job_id(dry)})"
        took, turns, _ = timed(job, db, f"SELECT cloud_sync_run(cloud_sync_export('b', 0, {confirm}))")
        yield job, took, turns
    sqlite3.connect(imp).executescript(";".join(create_sql(i) for i in range(TABLES))).close()
    shell(lib, imp, f"SELECT cloud_sync_save('b', '{url}')")
    for job, dry_run in (("import_dry", 1), ("import", 0)):
        took, turns, _ = timed(job, imp, f"SELECT cloud_sync_run(cloud_sync_import('b', {dry_run}, 'skip', {opts}))")
        yield job, took, turns
    # psql: the same tables, created and loaded in one transaction, into a schema of its own.
    psql(admin, f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {SCHEMA}_psql CASCADE; "
                f"CREATE SCHEMA {SCHEMA}_psql AUTHORIZATION {urllib.parse.unquote(urllib.parse.urlsplit(url).username)}")
    script = os.path.join(work, "load.sql")
    with open(script, "w", encoding="utf-8") as f:
        f.write(f"SET search_path = {SCHEMA}_psql;\n")
        for i in range(TABLES):
            f.write(f"CREATE TABLE t{i:02d} (id bigint PRIMARY KEY, name text NOT NULL, "
                    f"qty bigint NOT NULL, price double precision, note text);\n")
            f.write(f"\\copy t{i:02d} FROM '{csv_dir}/t{i:02d}.csv' (FORMAT csv)\n")
    before = len(proxy.lines())
    started = time.perf_counter()
    subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", script, url],
                   check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - started
    yield "psql", took, proxy.turns_since(before)


def steady_state(lib, url, admin, work, template, proxy):
    """The schedule's steady state (see the module's documentation); yields (figure, value)."""
    import json
    db = os.path.join(work, "steady.sqlite")
    shutil.copy(template, db)
    psql(admin, f"SET client_min_messages = warning; DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; "
                f"CREATE SCHEMA {SCHEMA} AUTHORIZATION {urllib.parse.unquote(urllib.parse.urlsplit(url).username)}")
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.enable_load_extension(True)
    conn.load_extension(lib)
    conn.enable_load_extension(False)
    conn.execute("PRAGMA busy_timeout = 10000")

    def one(sql, *args):
        return conn.execute(sql, args).fetchone()[0]

    one("SELECT cloud_sync_save('b', ?)", url)
    for i in range(TABLES):
        one(f"SELECT cloud_sync_track('t{i:02d}')")
    opts = json.dumps({"schema": SCHEMA})
    dry = json.loads(one("SELECT cloud_sync_run(cloud_sync_export('b', 1, ?))", opts))
    full = json.loads(one("SELECT cloud_sync_run(cloud_sync_export('b', 0, ?))",
                          json.dumps({"schema": SCHEMA, "confirm": dry["id"]})))
    if full["status"] != "succeeded":
        sys.exit(f"bench: steady state: the full export did not succeed: {str(full)[:400]}")
    last_job = one("SELECT max(id) FROM cloud_sync_jobs")
    one("SELECT cloud_sync_worker_start(json_object('poll_interval_ms', 100))")
    one("SELECT cloud_sync_schedule('steady', ?)",
        json.dumps({"connection": "b", "kind": "export", "every_s": PERIOD_S, "schema": SCHEMA}))
    try:
        # Quiet: no local change.
        opened = proxy.opened()
        runs = one("SELECT runs FROM cloud_sync_schedules WHERE name = 'steady'")
        time.sleep(QUIET_S)
        yield "quiet_s", QUIET_S
        yield "quiet_runs", one("SELECT runs FROM cloud_sync_schedules WHERE name = 'steady'") - runs
        yield "quiet_connections", proxy.opened() - opened
        yield "quiet_jobs", one("SELECT count(*) FROM cloud_sync_jobs WHERE id > ?", last_job)
        # Busy: one row of t07 changes each second, a different row each time.
        opened = proxy.opened()
        ended = len(proxy.lines())
        started = time.monotonic()
        for n in range(BUSY_S):
            time.sleep(max(0.0, started + n + 1 - time.monotonic()))
            conn.execute("UPDATE t07 SET qty = qty + 1 WHERE id = ?", (n + 1,))
        # The changes of the last period go out at its end; wait for that job to finish.
        deadline = time.monotonic() + 4 * PERIOD_S
        while time.monotonic() < deadline and one(
                "SELECT count(*) FROM cloud_sync_changes") > 0:
            time.sleep(0.2)
        while time.monotonic() < deadline and one(
                "SELECT count(*) FROM cloud_sync_jobs WHERE id > ? AND status IN "
                "('queued', 'running')", last_job) > 0:
            time.sleep(0.2)
        jobs = [json.loads(row[0]) for row in conn.execute(
            "SELECT summary FROM cloud_sync_jobs WHERE id > ? AND status = 'succeeded' "
            "ORDER BY id", (last_job,))]
        failed = one("SELECT count(*) FROM cloud_sync_jobs WHERE id > ? AND status <> "
                     "'succeeded'", last_job)
        yield "busy_s", BUSY_S
        yield "busy_changes", BUSY_S
        yield "busy_connections", proxy.opened() - opened
        yield "busy_jobs", len(jobs)
        yield "busy_jobs_not_succeeded", failed
        yield "busy_pending_after", one("SELECT count(*) FROM cloud_sync_changes")
        moved = [sum(t.get("source_rows", 0) for t in j["tables"]) for j in jobs]
        yield "busy_rows_moved", sum(moved)
        yield "busy_rows_per_job", ",".join(str(m) for m in moved)
        yield "busy_tables_touched", max((sum(1 for t in j["tables"] if t.get("source_rows"))
                                          for j in jobs), default=0)
        yield "busy_not_incremental", sum(1 for j in jobs for t in j["tables"]
                                          if t.get("mode") != "incremental")
        trips = [int(l.split()[1]) for l in proxy.lines()[ended:]]
        yield "busy_round_trips_max", max(trips, default=0)
    finally:
        one("SELECT cloud_sync_unschedule('steady')")
        one("SELECT cloud_sync_worker_stop()")
        conn.close()


def shell(lib, db, sql):
    out = subprocess.run(["sqlite3", "-batch", "-bail", db, f".load {lib}", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: sqlite3 failed: {out.stderr.strip()[:400]}")
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def report(tsv, rtt, results_path):
    rtt = float(rtt)
    by_job = {}
    steady = {}
    with open(tsv, encoding="utf-8") as f:
        for line in f:
            if line.startswith("steady\t"):
                _, key, value = line.rstrip("\n").split("\t")
                steady[key] = value
                continue
            job, _, d, s, turns = line.split("\t")
            by_job.setdefault(job, []).append((float(d), float(s), int(turns)))
    out = [MARK_BEGIN, "## Latency: round trips per job", ""]
    out.append(f"An app of {TABLES} tables of {ROWS} rows, all tracked; each job direct and "
               f"through `scripts/lib/delay_proxy.py` adding {rtt:g} ms per round trip "
               f"({rtt / 2:g} ms each way); medians of {len(next(iter(by_job.values())))} "
               f"run(s). Round trips = (delayed - direct) / {rtt:g} ms; counted = the waits "
               f"the proxy saw on the job's connection (the median).")
    out.append("")
    out.append("| job | direct s | delayed s | round trips | counted | budget |")
    out.append("|---|---:|---:|---:|---:|---:|")
    lines = []
    medians = {}
    for job, label, budget in JOBS:
        runs = by_job.get(job)
        if not runs:
            continue
        d = statistics.median(r[0] for r in runs)
        s = statistics.median(r[1] for r in runs)
        counted = int(statistics.median(r[2] for r in runs))
        trips = (s - d) * 1000 / rtt
        medians[job] = s
        limit = budget() if budget else None
        out.append(f"| {label} | {d:.3f} | {s:.3f} | {trips:.1f} | {counted} | "
                   f"{limit if limit is not None else '-'} |")
        if limit is not None:
            lines.append(f"{'PASS' if counted <= limit else 'MISS'}  {label}: at most {limit} "
                         f"round trips: {counted} counted ({trips:.1f} timed)")
    if "full" in medians and "psql" in medians:
        ratio = medians["full"] / medians["psql"]
        lines.append(f"{'PASS' if ratio <= 1 / 3 else 'MISS'}  confirmed full export under a "
                     f"third of psql's time on the same link: {medians['full']:.2f} s vs "
                     f"{medians['psql']:.2f} s ({ratio:.2f}x)")
    out.append("")
    out.append("A target is judged on the counted round trips, which do not depend on the machine; "
               "the timed ones also hold the delayed proxy's own wake-ups (two per round trip), "
               "which a loaded machine makes late.")
    if steady:
        out.append("")
        out.extend(steady_section(steady, rtt, lines))
    out.append("")
    out.append("Targets (issue 14):")
    out.append("")
    out.extend("    " + l for l in lines)
    out.append("")
    out.append(MARK_END)
    section = "\n".join(out)
    write_section(results_path, section)
    print(section)


def steady_section(f, rtt, targets):
    """The continuous-sync table from the steady-state figures `f`; appends its targets."""
    n = {k: int(v) for k, v in f.items() if k != "busy_rows_per_job"}
    out = ["### Continuous sync: a schedule every 5 s, steady state", "",
           f"The same app after its full export, over the {rtt:g} ms link: the worker runs "
           f"`cloud_sync_schedule('steady', '{{\"every_s\": {PERIOD_S}, ...}}')` for "
           f"{n['quiet_s']} s with no local change, then for {n['busy_s']} s while one row of one "
           f"table changes each second (a different row each time).", "",
           "| phase | schedule runs | connections | jobs | rows moved | rows per job |",
           "|---|---:|---:|---:|---:|---|",
           f"| {n['quiet_s']} s, no change | {n['quiet_runs']} | {n['quiet_connections']} | "
           f"{n['quiet_jobs']} | 0 | - |",
           f"| {n['busy_s']} s, {n['busy_changes']} changes | - | {n['busy_connections']} | "
           f"{n['busy_jobs']} | {n['busy_rows_moved']} | {f['busy_rows_per_job'] or '-'} |"]
    quiet_ok = n["quiet_runs"] > 0 and n["quiet_connections"] == 0 and n["quiet_jobs"] == 0
    targets.append(f"{'PASS' if quiet_ok else 'MISS'}  schedule every {PERIOD_S} s, no local "
                   f"change: no connection: {n['quiet_connections']} connection(s) and "
                   f"{n['quiet_jobs']} job(s) in {n['quiet_runs']} runs")
    busy_ok = (n["busy_rows_moved"] == n["busy_changes"] and n["busy_jobs_not_succeeded"] == 0
               and n["busy_pending_after"] == 0 and n["busy_not_incremental"] == 0
               and n["busy_tables_touched"] <= 1 and n["busy_connections"] == n["busy_jobs"])
    targets.append(f"{'PASS' if busy_ok else 'MISS'}  schedule every {PERIOD_S} s, one change "
                   f"per second: each export moves only the changed rows: "
                   f"{n['busy_rows_moved']} rows moved for {n['busy_changes']} changes in "
                   f"{n['busy_jobs']} incremental jobs ({n['busy_jobs_not_succeeded']} not "
                   f"succeeded, {n['busy_pending_after']} changes left), at most "
                   f"{n['busy_tables_touched']} table touched and "
                   f"{n['busy_round_trips_max']} round trips per job")
    return out


def write_section(results_path, section, begin=MARK_BEGIN, end_mark=MARK_END):
    """Puts `section` between the markers (by default the latency section's) of the results
    file, keeping the rest."""
    text = open(results_path, encoding="utf-8").read() if os.path.exists(results_path) else ""
    with open(results_path, "w", encoding="utf-8") as f:
        f.write(replace_section(text, section, begin, end_mark))


def replace_section(text, section, begin=MARK_BEGIN, end_mark=MARK_END):
    """`text` with the section between the markers (by default the latency section's) replaced
    by `section` (appended when it has none)."""
    start, end = text.find(begin), text.find(end_mark)
    if start >= 0 and end > start:
        return text[:start] + section + text[end + len(end_mark):]
    return text.rstrip("\n") + "\n\n" + section + "\n"


def kept_section(path, begin=MARK_BEGIN, end_mark=MARK_END):
    """The section between the markers (by default the latency section) of the results file at
    `path`, or "" (the throughput report keeps it)."""
    if not os.path.exists(path):
        return ""
    text = open(path, encoding="utf-8").read()
    start, end = text.find(begin), text.find(end_mark)
    return text[start:end + len(end_mark)] if start >= 0 and end > start else ""


def main(argv):
    if len(argv) == 8 and argv[1] == "run":
        run(*argv[2:])
    elif len(argv) == 5 and argv[1] == "report":
        report(*argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
