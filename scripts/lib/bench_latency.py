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


def shell(lib, db, sql):
    out = subprocess.run(["sqlite3", "-batch", "-bail", db, f".load {lib}", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: sqlite3 failed: {out.stderr.strip()[:400]}")
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def report(tsv, rtt, results_path):
    rtt = float(rtt)
    by_job = {}
    with open(tsv, encoding="utf-8") as f:
        for line in f:
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
    out.append("")
    out.append("Targets (issue 14):")
    out.append("")
    out.extend("    " + l for l in lines)
    out.append("")
    out.append(MARK_END)
    section = "\n".join(out)
    write_section(results_path, section)
    print(section)


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
