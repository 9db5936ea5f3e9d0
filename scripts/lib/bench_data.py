#!/usr/bin/python3
"""Helpers for scripts/bench.sh (standard library only; run with /usr/bin/python3).

  bench_data.py generate ROWS OUT.sqlite      the deterministic dataset (80% items, 20% events)
  bench_data.py checksum DB.sqlite            the data checksum, one line per table
  bench_data.py job RESULT.json               a cloud_sync_run() result: checks it succeeded,
                                              prints "id total_ms inserts updates unchanged"
  bench_data.py job-modes RESULT.json         the same check; prints "id total_ms modes tables
                                              source_rows changes inserts updates unchanged
                                              deletes" (modes: the tables' modes, sorted, joined
                                              by ','; tables: how many)
  bench_data.py overhead SRC EMPTY TRACKED ROWS ROUND   times the same writes into an untracked
                                              and a tracked copy of the schema; prints
                                              "insert|update untracked_s tracked_s"
  bench_data.py pgparts URL                   a postgresql:// URL as shell assignments
  bench_data.py report RAW.tsv META.json OUT.md   the results table and targets

The checksum is computed here with the same definitions as the SQL scripts/bench.sh runs in
Postgres (see CHECKSUM_DOC): SQLite has no md5(), so the ordered concatenation is hashed in
Python while SQLite computes the sums.
"""

import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import time
import urllib.parse

# Bump when the generated data changes: cached files are keyed by it.
DATASET_VERSION = 1
SEED = 20240305

SCHEMA = """
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  price REAL NOT NULL,
  qty INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  payload BLOB NOT NULL,
  note TEXT
);
CREATE TABLE events (
  device TEXT,
  seq INTEGER,
  value REAL,
  PRIMARY KEY (device, seq)
);
"""

ADJECTIVES = ["red", "tiny", "grand", "crème", "smörgås", "blue", "Åland", "naïve", "quick",
              "über", "green", "señor", "old", "fast", "Zürich"]
NOUNS = ["widget", "gadget", "tea", "coffee", "café", "bolt", "nut", "gear", "lamp",
         "crêpe", "kettle", "sprocket", "façade", "cable", "jalapeño"]
# Note words: commas, double and single quotes, non-ASCII (2-, 3- and 4-byte UTF-8).
NOTE_WORDS = ["delivered,", "\"fragile\"", "it's", "naïve", "Grüße", "日本語", "emoji 🙂",
              "ok", "box", "shelf", "left,", "right", "\"quoted, with comma\"", "€12,50",
              "résumé", "Ωmega", "back-order", "see note", "tea & coffee", "l'été"]


def _pick(rng, seq):
    # Only rng.random() and rng.getrandbits() are used: their streams are stable across
    # Python versions for a given seed.
    return seq[int(rng.random() * len(seq))]


def _note(rng):
    if rng.random() < 0.20:
        return None
    target = 80 + int(rng.random() * 41)  # 80..120 characters
    words = []
    length = -1
    while length < target:
        word = _pick(rng, NOTE_WORDS)
        words.append(word)
        length += 1 + len(word)
    return " ".join(words)[:target - 1] + "."


def generate(rows, out):
    rows = int(rows)
    if rows < 10:
        sys.exit("bench_data: at least 10 rows")
    n_items = rows * 8 // 10
    n_events = rows - n_items
    rng = random.Random(SEED)
    tmp = out + ".tmp"
    for path in (tmp, tmp + "-journal"):
        if os.path.exists(path):
            os.remove(path)
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.executescript(SCHEMA)
    base = 1577836800  # 2020-01-01T00:00:00Z
    import time as _time

    def items():
        for i in range(1, n_items + 1):
            name = f"{_pick(rng, ADJECTIVES)} {_pick(rng, NOUNS)} {i:07d}"
            price = round(rng.random() * 1000, 2)
            qty = int(rng.random() * 10000)
            at = _time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                _time.gmtime(base + int(rng.random() * 5 * 365 * 86400)))
            payload = rng.getrandbits(512).to_bytes(64, "little")
            yield (i, name, price, qty, at, payload, _note(rng))

    devices = max(1, n_events // 1000)

    def events():
        for i in range(n_events):
            yield (f"sensor-{i % devices:04d}", i // devices + 1,
                   round((rng.random() - 0.5) * 200, 6))

    with db:
        db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)", items())
        db.executemany("INSERT INTO events VALUES (?, ?, ?)", events())
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("VACUUM")
    db.close()
    os.replace(tmp, out)


CHECKSUM_DOC = """items:  count, sum(id), sum(qty), sum(length(name)), count(note), sum(length(note)),
        sum(round(price*100)), sum(length(payload)),
        md5 of the concatenation, ordered by id, of md5(id || name || coalesce(note, '') || hex(payload))
events: count, sum(seq), sum(length(device)), sum(round(value*1000000)),
        md5 of the concatenation, ordered by device (bytewise) and seq, of md5(device || ':' || seq)"""

# The same definitions in Postgres. payload is bytea, hex() in SQLite is upper case.
PG_CHECKSUM_SQL = """
SELECT 'items ' || count(*) || ' ' || coalesce(sum(id), 0) || ' ' || coalesce(sum(qty), 0)
    || ' ' || coalesce(sum(length(name)), 0) || ' ' || count(note)
    || ' ' || coalesce(sum(length(note)), 0) || ' ' || coalesce(sum(round(price * 100)::bigint), 0)
    || ' ' || coalesce(sum(length(payload)), 0) || ' '
    || md5(coalesce(string_agg(md5(id::text || name || coalesce(note, '') || upper(encode(payload, 'hex'))),
                               '' ORDER BY id), ''))
  FROM {schema}.items;
SELECT 'events ' || count(*) || ' ' || coalesce(sum(seq), 0) || ' ' || coalesce(sum(length(device)), 0)
    || ' ' || coalesce(sum(round(value * 1000000)::bigint), 0) || ' '
    || md5(coalesce(string_agg(md5(device || ':' || seq::text), '' ORDER BY device COLLATE "C", seq), ''))
  FROM {schema}.events;
"""


def checksum(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sums = db.execute(
        "SELECT count(*), coalesce(sum(id), 0), coalesce(sum(qty), 0),"
        " coalesce(sum(length(name)), 0), count(note), coalesce(sum(length(note)), 0),"
        " coalesce(sum(CAST(round(price * 100) AS INTEGER)), 0),"
        " coalesce(sum(length(payload)), 0) FROM items").fetchone()
    md5 = hashlib.md5()
    for (piece,) in db.execute(
            "SELECT id || name || coalesce(note, '') || hex(payload) FROM items ORDER BY id"):
        md5.update(hashlib.md5(piece.encode("utf-8")).hexdigest().encode("ascii"))
    print("items", *sums, md5.hexdigest())
    sums = db.execute(
        "SELECT count(*), coalesce(sum(seq), 0), coalesce(sum(length(device)), 0),"
        " coalesce(sum(CAST(round(value * 1000000) AS INTEGER)), 0) FROM events").fetchone()
    md5 = hashlib.md5()
    for (piece,) in db.execute(
            "SELECT device || ':' || seq FROM events ORDER BY device, seq"):
        md5.update(hashlib.md5(piece.encode("utf-8")).hexdigest().encode("ascii"))
    print("events", *sums, md5.hexdigest())


def _succeeded_job(path):
    """A cloud_sync_run() result read from PATH: exits unless the job succeeded."""
    with open(path, encoding="utf-8") as f:
        text = f.read().strip()
    try:
        result = json.loads(text)
    except ValueError:
        sys.exit(f"bench: not a cloud_sync_run result: {text[:500]}")
    if result.get("status") != "succeeded":
        sys.exit(f"bench: job {result.get('id')} {result.get('status')}: {result.get('error')}")
    return result


def job(path):
    result = _succeeded_job(path)
    summary = result.get("summary") or {}
    totals = summary.get("totals") or {}
    print(result["id"], summary.get("timings", {}).get("total_ms", ""),
          totals.get("inserts", 0), totals.get("updates", 0), totals.get("unchanged", 0))


def job_modes(path):
    """Like job(), for the change-tracking steps: the export's mode per table and its counts."""
    result = _succeeded_job(path)
    summary = result.get("summary") or {}
    tables = summary.get("tables") or []
    totals = summary.get("totals") or {}
    modes = ",".join(sorted({str(t.get("mode")) for t in tables})) or "-"
    print(result["id"], summary.get("timings", {}).get("total_ms", ""), modes, len(tables),
          totals.get("source_rows", 0), sum(int(t.get("changes") or 0) for t in tables),
          totals.get("inserts", 0), totals.get("updates", 0), totals.get("unchanged", 0),
          totals.get("deletes", 0))


# The writes timed by `overhead`, the same into both databases, each in one transaction, in
# this order: set-based INSERT, UPDATE and DELETE of every row, then the rows inserted again one
# statement per row, as an application writes them.
OVERHEAD_WRITES = {
    "insert": ["INSERT INTO items SELECT * FROM src.items ORDER BY id LIMIT {n_items}",
               "INSERT INTO events SELECT * FROM src.events ORDER BY rowid LIMIT {n_events}"],
    "update": ["UPDATE items SET qty = qty + 1",
               "UPDATE events SET value = value + 1"],
    "delete": ["DELETE FROM items", "DELETE FROM events"],
    "insert_each": [],
}
# The change records each write leaves, and the rows the tables then hold (in units of rows).
OVERHEAD_EFFECTS = {
    "insert": ({"insert": 1}, 1),
    "update": ({"insert": 1, "update": 1}, 1),
    "delete": ({"insert": 1, "update": 1, "delete": 1}, 0),
    "insert_each": ({"insert": 2, "update": 1, "delete": 1}, 1),
}


def overhead(src, plain, tracked, rows, round_):
    """Times OVERHEAD_WRITES into PLAIN (untracked) and TRACKED (both tables tracked
    beforehand by cloud_sync_track, through the sqlite3 shell): Python's sqlite3 module, no
    extension loaded, so the triggers run as any other writer's would. The order of the two
    databases alternates with the round. Checks the data and the recorded changes."""
    rows, round_ = int(rows), int(round_)
    n_items = rows * 8 // 10
    n_events = rows - n_items
    conns = {}
    for name, path in (("untracked", plain), ("tracked", tracked)):
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("ATTACH ? AS src", (f"file:{urllib.parse.quote(src)}?mode=ro",))
        conns[name] = db
    order = ["untracked", "tracked"] if round_ % 2 else ["tracked", "untracked"]
    # The rows inserted one by one, read before any timing.
    source = conns["untracked"]
    each_rows = {
        "items": source.execute(f"SELECT * FROM src.items ORDER BY id LIMIT {n_items}").fetchall(),
        "events": source.execute(
            f"SELECT * FROM src.events ORDER BY rowid LIMIT {n_events}").fetchall(),
    }
    for op, (changes, held) in OVERHEAD_EFFECTS.items():
        took = {}
        for name in order:
            db = conns[name]
            start = time.perf_counter()
            db.execute("BEGIN")
            for sql in OVERHEAD_WRITES[op]:
                db.execute(sql.format(n_items=n_items, n_events=n_events))
            if op == "insert_each":
                for table, values in each_rows.items():
                    marks = ", ".join("?" * len(values[0]))
                    db.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
            db.execute("COMMIT")
            took[name] = time.perf_counter() - start
        # Both databases hold the same data.
        sums = {name: db.execute(
            "SELECT (SELECT count(*) FROM items) + (SELECT count(*) FROM events),"
            " (SELECT total(qty) FROM items), (SELECT total(value) FROM events)").fetchone()
            for name, db in conns.items()}
        if sums["untracked"] != sums["tracked"] or sums["untracked"][0] != rows * held:
            sys.exit(f"bench: tracking overhead, after {op}: expected {rows * held} equal rows in"
                     f" both databases, got untracked {sums['untracked']}, tracked"
                     f" {sums['tracked']}")
        # The tracked database recorded one change per row written, the other none.
        expected_changes = {kind: rows * n for kind, n in changes.items()}
        got = dict(conns["tracked"].execute(
            "SELECT kind, count(*) FROM cloud_sync_changes GROUP BY kind").fetchall())
        if got != expected_changes:
            sys.exit(f"bench: tracking overhead, after {op}: cloud_sync_changes holds {got},"
                     f" expected {expected_changes}")
        if conns["untracked"].execute("SELECT count(*) FROM sqlite_schema"
                                      " WHERE name LIKE 'cloud_sync%'").fetchone()[0]:
            sys.exit("bench: tracking overhead: the untracked database has cloud_sync objects")
        print(op, f"{took['untracked']:.6f}", f"{took['tracked']:.6f}")
    for db in conns.values():
        db.close()


def pgparts(url):
    """A postgresql:// URL as shell assignments (values quoted for eval)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("postgres", "postgresql") or not u.hostname or not u.username:
        sys.exit("bench: CLOUD_SYNC_BENCH_PG_URL must be a postgresql://user:password@host/db URL")
    q = dict(urllib.parse.parse_qsl(u.query))
    parts = {
        "host": u.hostname, "port": str(u.port or 5432),
        "user": urllib.parse.unquote(u.username),
        "password": urllib.parse.unquote(u.password or ""),
        "dbname": urllib.parse.unquote(u.path.lstrip("/")) or urllib.parse.unquote(u.username),
        "sslmode": q.get("sslmode", "prefer"),
        "sslrootcert": q.get("sslrootcert", ""),
    }
    # The URL without its password, for psql (which then reads PGPASSWORD).
    netloc = u.netloc.rsplit("@", 1)
    user_part = netloc[0].split(":", 1)[0]
    parts["url_nopw"] = urllib.parse.urlunsplit(
        (u.scheme, user_part + "@" + netloc[1], u.path, u.query, u.fragment))
    for k, v in parts.items():
        print(f"pg_{k}='" + v.replace("'", "'\\''") + "'")


# ---------------------------------------------------------------------------------------------
# Report

WAYS = [
    ("copy_csv", "psql `\\copy` from a ready CSV (COPY limit)"),
    ("copy_pipe", "`sqlite3 -csv` \\| `psql \\copy FROM STDIN`"),
    ("pgloader", "pgloader, defaults"),
    ("cs_dry", "cloud_sync (a) dry run, empty remote"),
    ("cs_full", "cloud_sync (b) first full export"),
    ("cs_same", "cloud_sync (c) re-export, no change"),
    ("cs_10pct", "cloud_sync (d) re-export, 10% changed"),
    ("cs_import", "cloud_sync (e) import into an empty db"),
    ("cs_incr", "cloud_sync (f) incremental export, 1% changed"),
]
CLOUD_SYNC_WAYS = [w for w, _ in WAYS if w.startswith("cs_")]

NOTES = [
    "Every run starts from an empty remote schema of its own (dropped and created again, "
    "untimed); the local dataset is generated once per size (seeded PRNG) and cached under "
    "`bench/.data/`.",
    "psql `\\copy` from CSV: one psql, one transaction (`-1`), both tables, into tables created "
    "beforehand with the types and primary keys cloud_sync creates. The CSV files are written once "
    "per size by `sqlite3 -csv` (blobs as bytea hex input `\\x...`).",
    "`sqlite3 -csv | psql \\copy FROM STDIN`: one pipeline per table, into the same tables.",
    "pgloader: `pgloader --set search_path='<fresh schema>' sqlite://<file> postgresql://...`, "
    "otherwise its defaults: it creates the tables itself (it maps `REAL` to `real`, float4), "
    "loads with its default workers and builds the primary keys after the data.",
    "cloud_sync: the sqlite3 shell, `.load` of the built extension, one statement per process: "
    "`SELECT cloud_sync_run(cloud_sync_export(...))` or `cloud_sync_import(...)`; the saved "
    "connection is made beforehand (untimed) in a fresh copy of the dataset. (a) is a dry run "
    "into the empty schema; (b) is the full export confirming (a); the remote tables are then "
    "vacuumed and analyzed (untimed, the state autovacuum leaves); (c) and (d) are full exports "
    "each confirming a fresh untimed dry run; (d) follows `UPDATE items SET price = price + 1 "
    "WHERE id % 10 = 0` and `UPDATE events SET value = value + 1 WHERE seq % 10 = 0`; (e) imports "
    "with strategy skip into a new database file holding only the two CREATE TABLEs and the "
    "saved connection.",
    "cloud_sync (f), on the database (d) left: `cloud_sync_track('items')` and "
    "`cloud_sync_track('events')`, an untimed dry run and full export (mode automatic: full, "
    "which sets the watermarks), the remote tables vacuumed and analyzed, then `UPDATE items SET "
    "qty = qty + 1 WHERE id % 100 = 0` and `UPDATE events SET value = value + 1 WHERE seq % 100 = "
    "0` (1% of the rows, by the sqlite3 shell without the extension: the triggers record them), "
    "an untimed dry run, and the timed export confirming it, mode automatic: incremental. Every "
    "round starts from a fresh copy of the dataset and an empty remote schema, so every round "
    "tracks, exports and changes the same rows.",
    "Tracking overhead: two new database files with the dataset's two CREATE TABLEs, both "
    "tables of one of them tracked (`cloud_sync_track` through the sqlite3 shell, untimed); "
    "then Python's `sqlite3` module (the same SQLite library, no extension loaded, default "
    "settings: rollback journal, synchronous FULL) times, in each database, one transaction "
    "each, COMMIT included: `INSERT INTO items SELECT * FROM src.items` and `INSERT INTO events "
    "SELECT * FROM src.events` from the dataset attached read-only; `UPDATE items SET qty = qty "
    "+ 1` and `UPDATE events SET value = value + 1`; `DELETE FROM items` and `DELETE FROM "
    "events`; then the same rows inserted again one statement per row (`executemany`, rows read "
    "before the timing), as an application writes them. The set-based statements show the "
    "triggers' cost undiluted (an upper bound); the row-by-row insert what an application sees. The untracked database goes first "
    "in odd rounds, the tracked one in even rounds.",
]


def _fmt_int(n):
    return f"{n:,.0f}"


def _s(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def _overhead_order(item):
    """Overhead results by size, then in the order the writes run."""
    (rows, op), _ = item
    return rows, list(OVERHEAD_EFFECTS).index(op)


def _read_meta(path):
    """bench.sh's meta.tsv: 'key<TAB>value' lines; 'check', 'rewritten', 'changed', 'incr' and
    'overhead' repeat."""
    meta = {"checks": [], "rewritten": {}, "changed": {}, "failed": [], "incr": {},
            "overhead": {}}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            key = fields[0]
            if key == "check":
                meta["checks"].append(fields[1])
            elif key == "rewritten":
                rows, _round, newer, upd, dead, counts = fields[1:]
                meta["rewritten"].setdefault(int(rows), []).append(
                    (int(newer), int(upd), int(dead), counts))
            elif key == "failed":
                meta["failed"].append((int(fields[1]), int(fields[2]), fields[3], fields[4]))
            elif key == "changed":
                meta["changed"].setdefault(int(fields[1]), []).append(int(fields[3]))
            elif key == "incr":
                # rows round changed source_rows changes n_tup_ins n_tup_upd n_tup_del newer counts
                meta["incr"].setdefault(int(fields[1]), []).append(
                    tuple(int(x) for x in fields[3:10]) + (fields[10],))
            elif key == "overhead":
                # rows round op untracked_s tracked_s
                meta["overhead"].setdefault((int(fields[1]), fields[3]), []).append(
                    (float(fields[4]), float(fields[5])))
            elif len(fields) == 2:
                meta[key] = fields[1]
    return meta


def report(raw_path, meta_path, out_path):
    meta = _read_meta(meta_path)
    runs = {}  # (rows, way) -> list of (wall_s, rss_kib, job_ms)
    with open(raw_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("rows\t"):
                continue
            rows, _round, way, wall, rss, job_ms = line.rstrip("\n").split("\t")
            runs.setdefault((int(rows), way), []).append(
                (float(wall), int(rss), float(job_ms) if job_ms else None))
    sizes = sorted({r for r, _ in runs})
    stats = {}
    for key, values in runs.items():
        walls = [v[0] for v in values]
        jobs = [v[2] for v in values if v[2] is not None]
        stats[key] = {
            "n": len(values),
            "median": statistics.median(walls),
            "min": min(walls),
            "max": max(walls),
            "rss_mib": max(v[1] for v in values) / 1024,
            "job_median_s": statistics.median(jobs) / 1000 if jobs else None,
        }

    out = []
    out.append("# cloud_sync benchmark")
    out.append("")
    out.append(f"- date: {meta['date']}")
    out.append(f"- machine: {meta['nproc']} CPUs ({meta['cpu']}), {meta['mem']} memory, "
               f"Linux {meta['kernel']}")
    out.append(f"- PostgreSQL {meta['pg_version']} ({meta['pg_where']}); sqlite3 {meta['sqlite']}; "
               f"{meta['pgloader']}; cloud_sync {meta['cloud_sync']}")
    out.append(f"- sizes: {', '.join(_fmt_int(s) for s in sizes)} rows (80% `items`, 20% `events`); "
               f"{meta['runs']} run(s) per way and size, the ways alternating within each round; "
               f"the whole benchmark took {int(meta['elapsed']) // 60} min {int(meta['elapsed']) % 60} s")
    out.append(f"- transport: {meta['transport']}")
    out.append("- wall = GNU time's elapsed seconds of the process doing the work (psql; the "
               "`sqlite3 -csv | psql` pipelines; pgloader; the sqlite3 shell running one cloud_sync "
               "statement); peak RSS = GNU time's maximum resident set size of that process, "
               "the largest of all runs; job = the cloud_sync job's own `$.timings.total_ms`")
    out.append("")
    out.append("| rows | way | rows/s | x COPY | median s | min-max s | job median s | peak RSS MiB |")
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|")
    for rows in sizes:
        limit = stats.get((rows, "copy_csv"))
        for way, label in WAYS:
            st = stats.get((rows, way))
            failed = sum(1 for f in meta["failed"] if f[0] == rows and f[2] == way)
            if failed:
                label += f" ({failed} of {failed + (st['n'] if st else 0)} runs failed)"
            if not st:
                if failed:
                    out.append(f"| {_fmt_int(rows)} | {label} | - | - | - | - | - | - |")
                continue
            ratio = f"{limit['median'] / st['median']:.2f}" if limit else "-"
            job_s = _s(st["job_median_s"]) if st["job_median_s"] is not None else "-"
            out.append(f"| {_fmt_int(rows)} | {label} | {_fmt_int(rows / st['median'])} | {ratio} "
                       f"| {_s(st['median'])} | {_s(st['min'])}-{_s(st['max'])} | {job_s} "
                       f"| {st['rss_mib']:.1f} |")
    out.append("")
    out.append("x COPY = the `psql \\copy` from CSV median divided by the way's median "
               "(rows/s relative to the COPY limit). Every way but (f) reads or writes all rows: "
               "the rows/s of (c) and (d) count every row compared, not only the rows that "
               "changed. (f) reads and ships only the 1% that changed; its rows/s still counts "
               "every row of the dataset, the rate a full export would need to match it.")
    out.append("")

    overheads = {}
    for (rows, op), values in sorted(meta["overhead"].items(), key=_overhead_order):
        plain = [v[0] for v in values]
        tracked = [v[1] for v in values]
        overheads[(rows, op)] = {
            "n": len(values), "plain": statistics.median(plain),
            "plain_range": (min(plain), max(plain)), "tracked": statistics.median(tracked),
            "tracked_range": (min(tracked), max(tracked)),
            "ratios": [t / p for p, t in values]}
    if overheads:
        out.append("## Change tracking: local write overhead")
        out.append("")
        out.append("| rows | write | untracked rows/s | tracked rows/s | untracked median s (min-max) "
                   "| tracked median s (min-max) | tracked / untracked | per round |")
        out.append("|---:|---|---:|---:|---:|---:|---:|---:|")
        for (rows, op), o in overheads.items():
            what = {"insert": "INSERT ... SELECT of every row",
                    "update": "UPDATE of every row",
                    "delete": "DELETE of every row",
                    "insert_each": "INSERT row by row (executemany)"}[op]
            out.append(
                f"| {_fmt_int(rows)} | {what} | {_fmt_int(rows / o['plain'])} "
                f"| {_fmt_int(rows / o['tracked'])} "
                f"| {_s(o['plain'])} ({_s(o['plain_range'][0])}-{_s(o['plain_range'][1])}) "
                f"| {_s(o['tracked'])} ({_s(o['tracked_range'][0])}-{_s(o['tracked_range'][1])}) "
                f"| {o['tracked'] / o['plain']:.2f} "
                f"| {min(o['ratios']):.2f}-{max(o['ratios']):.2f} |")
        out.append("")
        out.append("tracked / untracked = the tracked median divided by the untracked median "
                   "(1.00 = no overhead); per round = the smallest and largest ratio of one "
                   "round's pair. Python's `time.perf_counter()` around BEGIN ... COMMIT; see "
                   "\"How each way runs\".")
        out.append("")

    rewritten = {}
    for rows in sizes:
        reports = meta["rewritten"].get(rows, [])
        if reports:
            newer = max(r[0] for r in reports)
            upd = max(r[1] for r in reports)
            dead = max(r[2] for r in reports)
            rewritten[rows] = (newer + upd + max(dead, 0),
                               f"rows with a newer xmin {newer}, n_tup_upd {upd:+d}, n_dead_tup {dead:+d}")

    out.append("## Targets")
    out.append("")
    largest, smallest = sizes[-1], sizes[0]
    lines = []

    def target(ok, text):
        lines.append(("PASS" if ok else "MISS") + "  " + text)

    def ratio(rows, way):
        return stats[(rows, "copy_csv")]["median"] / stats[(rows, way)]["median"]

    note = "" if largest == 1_000_000 else f" (largest size run: {_fmt_int(largest)}; the target names 1,000,000)"
    for rows in sizes:
        if (rows, "copy_csv") not in stats:
            continue
        r = ratio(rows, "cs_full")
        target(r >= 0.80, f"{_fmt_int(rows)} rows: first full export >= 0.80x COPY: {r:.2f}x")
        r = ratio(rows, "cs_same")
        bad, detail = rewritten.get(rows, (None, "not measured"))
        target(r >= 0.70 and bad == 0,
               f"{_fmt_int(rows)} rows: re-export unchanged >= 0.70x COPY and no row rewritten: "
               f"{r:.2f}x; {detail}")
        r = ratio(rows, "cs_10pct")
        target(r >= 0.60, f"{_fmt_int(rows)} rows: re-export 10% changed >= 0.60x COPY: {r:.2f}x")
        d, b = stats[(rows, "cs_dry")]["median"], stats[(rows, "cs_full")]["median"]
        # The dry run sends the export's own writes and rolls them back (so a dry run that
        # passes predicts an export that passes, on Citus too): it costs what the export costs
        # but the commit, and 10% covers the machine's noise between two equal jobs.
        target(d <= 1.10 * b, f"{_fmt_int(rows)} rows: dry run within 10% of the full export "
                              f"(it runs the same writes, then rolls back): "
                              f"{_s(d)} s vs {_s(b)} s ({d / b:.2f}x)")
    for rows in sizes:
        reports = meta["incr"].get(rows, [])
        if (rows, "cs_incr") not in stats or (rows, "copy_csv") not in stats or not reports:
            continue
        only = all(c == src == chg == upd == newer and ins == 0 and dele == 0
                   for c, src, chg, ins, upd, dele, newer, _ in reports)
        changed = "/".join(_fmt_int(c) for c in sorted({r[0] for r in reports}))
        versus = ""
        if (rows, "cs_10pct") in stats:
            versus = (f"; {_s(stats[(rows, 'cs_incr')]['median'])} s vs "
                      f"{_s(stats[(rows, 'cs_10pct')]['median'])} s for the full re-export (d)")
        target(only, f"{_fmt_int(rows)} rows: incremental export after changing {changed} rows "
                     f"(1%) moves only those rows: {ratio(rows, 'cs_incr'):.2f}x COPY{versus}")
    r = ratio(largest, "cs_import")
    target(r >= 0.80, f"import of {_fmt_int(largest)} rows >= 0.80x COPY: {r:.2f}x{note}")
    for way in CLOUD_SYNC_WAYS:
        label = dict(WAYS)[way]
        big = stats[(largest, way)]["rss_mib"]
        small = stats[(smallest, way)]["rss_mib"]
        if largest == smallest:
            target(big <= 64, f"{label}: peak RSS <= 64 MiB at {_fmt_int(largest)}: "
                              f"{big:.1f} MiB{note}")
            continue
        within = abs(big - small) <= 0.10 * small
        target(big <= 64 and within,
               f"{label}: peak RSS <= 64 MiB at {_fmt_int(largest)} and within 10% of "
               f"{_fmt_int(smallest)}: {big:.1f} MiB vs {small:.1f} MiB "
               f"({(big / small - 1) * 100:+.1f}%){note}")
    if largest != smallest:
        allowed = 1.1 * largest / smallest
        for way in CLOUD_SYNC_WAYS:
            label = dict(WAYS)[way]
            t = stats[(largest, way)]["median"] / stats[(smallest, way)]["median"]
            target(t <= allowed,
                   f"{label}: {_fmt_int(largest)} rows take <= {allowed:.1f}x the time of "
                   f"{_fmt_int(smallest)}: {t:.2f}x{note}")
    out.extend("    " + l for l in lines)
    out.append("")

    out.append("## Checks")
    out.append("")
    for rows, round_, way, reason in meta["failed"]:
        out.append(f"- {_fmt_int(rows)} rows, round {round_}: {way} FAILED: {reason}")
    for rows in sizes:
        for line in meta["checks"]:
            if line.startswith(f"{rows} rows "):
                out.append(f"- {_fmt_int(rows)}{line[len(str(rows)):]}")
        reports = meta["rewritten"].get(rows, [])
        if reports:
            newer = max(r[0] for r in reports)
            upd = max(r[1] for r in reports)
            dead = max(r[2] for r in reports)
            counts = sorted({r[3] for r in reports})
            out.append(f"- {_fmt_int(rows)} rows, (c) re-export with no change: the job reported "
                       f"inserts/updates/unchanged {', '.join(counts)}; across the run, largest over "
                       f"the {len(reports)} rounds: {rewritten[rows][1]} "
                       f"({'no row rewritten' if rewritten[rows][0] == 0 else 'ROWS REWRITTEN'})")
        changed = meta["changed"].get(rows, [])
        if changed:
            out.append(f"- {_fmt_int(rows)} rows, (d): {', '.join(sorted({_fmt_int(c) for c in changed}))} "
                       f"rows updated locally (`id % 10 = 0` in items, `seq % 10 = 0` in events); "
                       f"the job reported exactly that many updates and no inserts, every round")
        incr = meta["incr"].get(rows, [])
        if incr:
            vals = lambda i: ", ".join(sorted({_fmt_int(r[i]) for r in incr}))
            out.append(f"- {_fmt_int(rows)} rows, (f) incremental: {vals(0)} rows updated locally "
                       f"(`id % 100 = 0` in items, `seq % 100 = 0` in events); every round the "
                       f"dry run and the export ran in mode incremental for both tables, reported "
                       f"source_rows {vals(1)}, changes {vals(2)}, inserts/updates/unchanged/"
                       f"deletes {', '.join(sorted({r[7] for r in incr}))} (the dry run the same); "
                       f"on the remote, across the export, n_tup_ins +{vals(3)}, n_tup_upd "
                       f"+{vals(4)}, n_tup_del +{vals(5)}, rows with a newer xmin {vals(6)}; the "
                       f"remote data equalled the local data after it and cloud_sync_changes was "
                       f"empty (pruned)")
    out.append("")

    out.append("## How each way runs")
    out.append("")
    out.extend("- " + n for n in NOTES)
    out.append("")

    out.append("## Runs (wall seconds, in round order)")
    out.append("")
    for rows in sizes:
        for way, label in WAYS:
            if (rows, way) in runs:
                walls = " ".join(f"{v[0]:.2f}" for v in runs[(rows, way)])
                out.append(f"- {_fmt_int(rows)} {way}: {walls}")
    for (rows, op), values in sorted(meta["overhead"].items(), key=_overhead_order):
        for i, name in ((0, "untracked"), (1, "tracked")):
            out.append(f"- {_fmt_int(rows)} {op} {name}: " + " ".join(f"{v[i]:.3f}" for v in values))
    out.append("")
    out.append("Checksum definitions:")
    out.append("")
    out.extend("    " + l for l in CHECKSUM_DOC.splitlines())
    out.append("")
    text = "\n".join(out)
    # The sections of the latency and Citus scenarios (scripts/bench.sh --latency, --citus)
    # are kept.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_citus
    import bench_latency
    for markers in ((), (bench_citus.MARK_BEGIN, bench_citus.MARK_END)):
        kept = bench_latency.kept_section(out_path, *markers)
        if kept:
            text = text.rstrip("\n") + "\n\n" + kept + "\n"
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "generate" and len(args) == 2:
        generate(*args)
    elif cmd == "checksum" and len(args) == 1:
        checksum(*args)
    elif cmd == "pg-checksum-sql" and len(args) == 1:
        print(PG_CHECKSUM_SQL.format(schema=args[0]))
    elif cmd == "job" and len(args) == 1:
        job(*args)
    elif cmd == "job-modes" and len(args) == 1:
        job_modes(*args)
    elif cmd == "overhead" and len(args) == 5:
        overhead(*args)
    elif cmd == "pgparts" and len(args) == 1:
        pgparts(*args)
    elif cmd == "report" and len(args) == 3:
        report(*args)
    elif cmd == "version":
        print(DATASET_VERSION)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
