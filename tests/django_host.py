"""A real Django app's database, exported and imported back exactly (issue 12's "Done when").

A pinned Django from PyPI, in a venv cached under tests/.django-venv (keyed by a hash of the
requirement and the interpreter, so a second run installs nothing), runs `makemigrations` and
`migrate` for a small project with one app whose models use every common field type
(DecimalField, FloatField, BooleanField, DateTimeField with microseconds under USE_TZ,
DateField, TimeField, DurationField, JSONField, UUIDField, BinaryField, BigIntegerField,
CharField, ForeignKey), and the ORM inserts rows. Then Debian's Python loads the built
cloud_sync into that database and, against the harness's PostgreSQL, exports every table
(the app's and Django's own auth_*, django_*) into a fresh schema: a dry run with zero problems,
the confirmed export, NOT NULL and foreign keys present remotely, a second export that finds
every row unchanged and rewrites none, and an import into an empty database with
create_tables whose rows are identical, value and typeof(), to the original's.

Run by scripts/test.sh with Debian's Python: /usr/bin/python3 tests/django_host.py
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

from pg_env import pg_url
from venv_cache import cached_venv

LIB = os.environ["CLOUD_SYNC_LIB"]
KEY = "5b2e8c1a7d3f9e0b4c6a8d2f1e3b5c7a9d0f2e4b6c8a1d3f5e7b9c0a2d4f6e8b"
REQUIREMENT = "Django==5.2.19"
CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".django-venv")

SETTINGS = """
SECRET_KEY = "cloud_sync test, not secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATABASE_PATH}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

MODELS = """
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, unique=True)
    public_id = models.UUIDField(unique=True)
    is_active = models.BooleanField(default=True)
    joined_at = models.DateTimeField()
    nickname = models.CharField(max_length=50, null=True, blank=True)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    total = models.DecimalField(max_digits=10, decimal_places=2)
    discount = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    weight = models.FloatField()
    paid = models.BooleanField(default=False)
    placed_at = models.DateTimeField()
    ship_date = models.DateField()
    ship_time = models.TimeField()
    handling = models.DurationField()
    details = models.JSONField(default=dict)
    receipt = models.BinaryField(null=True)
    tracking_number = models.BigIntegerField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["placed_at"])]
"""

POPULATE = """
import datetime
import decimal
import uuid

import django

django.setup()

from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType

from shop.models import Customer, Order

utc = datetime.timezone.utc
ana = Customer.objects.create(
    name="Ana Łukasiewicz ✓", email="ana@example.com",
    public_id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    joined_at=datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=utc),
)
bo = Customer.objects.create(
    name="Bo 😀 日本", email="bo@example.com", public_id=uuid.uuid4(), is_active=False,
    joined_at=datetime.datetime(2023, 1, 2, 3, 4, 5, tzinfo=utc), nickname="bobo",
)
Order.objects.create(
    customer=ana, total=decimal.Decimal("19.50"), discount=None, weight=1.25, paid=True,
    placed_at=datetime.datetime(2024, 5, 6, 7, 8, 9, 654321, tzinfo=utc),
    ship_date=datetime.date(2024, 5, 7), ship_time=datetime.time(13, 14, 15, 500000),
    handling=datetime.timedelta(days=1, hours=2, microseconds=7),
    details={"gift": True, "tags": ["a", "ü"], "n": 1.5}, receipt=b"\\x00\\x01\\xffPDF",
    tracking_number=9007199254740993, note="fragile – handle with care",
)
Order.objects.create(
    customer=ana, total=decimal.Decimal("18.00"), discount=decimal.Decimal("2.50"), weight=0.1,
    placed_at=datetime.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=utc),
    ship_date=datetime.date(2025, 1, 2), ship_time=datetime.time(0, 0),
    handling=datetime.timedelta(0), details=[], receipt=None,
    tracking_number=-9223372036854775808, note="",
)
Order.objects.create(
    customer=bo, total=decimal.Decimal("12345678.99"), discount=decimal.Decimal("0.00"),
    weight=-3.5e-7, paid=True,
    placed_at=datetime.datetime(2000, 2, 29, 12, 0, 0, 1, tzinfo=utc),
    ship_date=datetime.date(2000, 3, 1), ship_time=datetime.time(23, 59, 59, 999999),
    handling=datetime.timedelta(days=-1, seconds=5), details={"nested": {"x": None}},
    receipt=b"", tracking_number=9223372036854775807, note="multi\\nline \\"quoted\\"",
)
user = User.objects.create_user("admin", "admin@example.com", "a password", is_staff=True)
group = Group.objects.create(name="clerks")
group.permissions.add(*Permission.objects.filter(content_type__app_label="shop"))
user.groups.add(group)
LogEntry.objects.create(
    user=user, content_type=ContentType.objects.get_for_model(Customer), object_id=str(ana.pk),
    object_repr=str(ana), action_flag=ADDITION, change_message="[]",
)
"""


def run(argv, cwd=None, env=None):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def make_django_database(python, project):
    """Writes the project, migrates it and inserts the rows; returns the database's path."""
    database = os.path.join(project, "app.sqlite3")
    os.makedirs(os.path.join(project, "shop", "migrations"))
    files = {
        "settings.py": f"DATABASE_PATH = {database!r}\n" + SETTINGS,
        "shop/__init__.py": "",
        "shop/migrations/__init__.py": "",
        "shop/models.py": MODELS,
        "populate.py": POPULATE,
        "manage.py": "import sys\nfrom django.core.management import "
        "execute_from_command_line\nexecute_from_command_line(sys.argv)\n",
    }
    for name, text in files.items():
        with open(os.path.join(project, name), "w", encoding="utf-8") as f:
            f.write(text)
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="settings", PYTHONPATH=project)
    run([python, "manage.py", "makemigrations", "shop", "-v", "0"], cwd=project, env=env)
    run([python, "manage.py", "migrate", "-v", "0"], cwd=project, env=env)
    run([python, "populate.py"], cwd=project, env=env)
    return database


def psql(sql):
    """Rows of `sql` run as the cluster's superuser, each a tuple of text fields."""
    out = run([os.path.join(os.environ["CLOUD_SYNC_TEST_PG_BIN"], "psql"), "-X", "-A", "-t",
               "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql,
               os.environ["CLOUD_SYNC_TEST_PG_ADMIN_URL"]])
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def connect(path):
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    conn.enable_load_extension(True)
    conn.load_extension(LIB)
    conn.enable_load_extension(False)
    conn.execute("SELECT cloud_sync_save('prod', ?)", (pg_url(),))
    return conn


def run_job(conn, sql, *args):
    (job_id,) = conn.execute(sql, args).fetchone()
    (result,) = conn.execute("SELECT cloud_sync_run(?)", (job_id,)).fetchone()
    return job_id, json.loads(result)


def user_tables(conn):
    return [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT LIKE 'cloud_sync_%' ORDER BY name")]


def columns(conn, table):
    return [(name, notnull) for (_, name, _, notnull, _, _) in
            conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]


def foreign_keys(conn, table):
    return sorted(conn.execute(
        'SELECT "table", "from", "to" FROM pragma_foreign_key_list(?)', (table,)).fetchall())


def rows(conn, table):
    """Every row, each column as (typeof, quote), ordered by the whole row."""
    cols = [name for name, _ in columns(conn, table)]
    fields = ", ".join(f'typeof("{c}"), quote("{c}")' for c in cols)
    order = ", ".join(f'quote("{c}")' for c in cols)
    return conn.execute(f'SELECT {fields} FROM "{table}" ORDER BY {order}').fetchall()


class DjangoAppRoundTrip(unittest.TestCase):
    def setUp(self):
        os.environ["CLOUD_SYNC_ENCRYPTION_KEY"] = KEY
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.schema = "django_" + os.urandom(6).hex()
        self.addCleanup(psql, f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def export(self, conn, options):
        job_id, dry = run_job(conn, "SELECT cloud_sync_export('prod', 1, ?)", json.dumps(options))
        self.assertEqual(dry["status"], "succeeded", dry["error"])
        self.assertEqual((dry["summary"]["problems_total"], dry["summary"]["problems"]), (0, []),
                         json.dumps(dry["summary"]["problems"], indent=1, ensure_ascii=False))
        _, done = run_job(conn, "SELECT cloud_sync_export('prod', 0, ?)",
                          json.dumps(dict(options, confirm=job_id)))
        self.assertEqual(done["status"], "succeeded", done["error"])
        return dry["summary"], done["summary"]

    def test_a_migrated_django_database_goes_out_and_back_exactly(self):
        database = make_django_database(cached_venv(CACHE, [REQUIREMENT]), os.path.join(self.dir, "project"))
        conn = connect(database)
        self.addCleanup(conn.close)
        tables = user_tables(conn)
        for expected in ("shop_customer", "shop_order", "auth_user", "auth_permission",
                         "django_migrations", "django_content_type", "django_admin_log"):
            self.assertIn(expected, tables)
        options = {"schema": self.schema}

        dry, first = self.export(conn, options)
        self.assertEqual(sorted(t["table"] for t in first["tables"]), tables)
        self.assertEqual(first["totals"]["inserts"], first["totals"]["source_rows"], first)
        self.assertGreater(first["totals"]["source_rows"], 20)

        # NOT NULL and foreign keys as SQLite declares them, on the remote tables.
        remote_notnull = {(t, c) for t, c in psql(
            "SELECT table_name, column_name FROM information_schema.columns"
            f" WHERE table_schema = '{self.schema}' AND is_nullable = 'NO'")}
        remote_fks = {(t, ref) for t, ref in psql(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
            f" WHERE contype = 'f' AND connamespace = '{self.schema}'::regnamespace")}
        for table in tables:
            for column, notnull in columns(conn, table):
                if notnull:
                    self.assertIn((table, column), remote_notnull, "NOT NULL missing remotely")
            for (parent,) in conn.execute(
                    'SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)', (table,)):
                self.assertIn((f'{self.schema}.{table}', f'{self.schema}.{parent}'),
                              remote_fks, f"foreign key {table} -> {parent} missing remotely")
        self.assertIn((f"{self.schema}.shop_order", f"{self.schema}.shop_customer"), remote_fks)

        # Nothing changed locally: every row unchanged, none rewritten remotely.
        def row_versions():
            return {t: psql(f'SELECT ctid::text, xmin::text FROM "{self.schema}"."{t}"')
                    for t in tables}
        before = row_versions()
        again_dry, again = self.export(conn, options)
        for summary in (again_dry, again):
            totals = summary["totals"]
            self.assertEqual((totals["inserts"], totals["updates"], totals["deletes"]),
                             (0, 0, 0), totals)
            self.assertEqual(totals["unchanged"], totals["source_rows"], totals)
        self.assertEqual(row_versions(), before, "the unchanged export rewrote rows")

        # Into an empty database: the same tables, values and storage classes.
        copy = connect(os.path.join(self.dir, "copy.sqlite3"))
        self.addCleanup(copy.close)
        _, imported = run_job(copy, "SELECT cloud_sync_import('prod', 0, 'skip', ?)",
                              json.dumps(dict(options, create_tables=True)))
        self.assertEqual(imported["status"], "succeeded", imported["error"])
        self.assertEqual(imported["summary"]["problems"], [], imported["summary"]["problems"])
        self.assertEqual(user_tables(copy), tables)
        for table in tables:
            with self.subTest(table=table):
                self.assertEqual([c for c, _ in columns(copy, table)],
                                 [c for c, _ in columns(conn, table)])
                self.assertEqual(rows(copy, table), rows(conn, table))
                self.assertEqual(foreign_keys(copy, table), foreign_keys(conn, table))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    passed = result.testsRun - len(result.failures) - len(result.errors)
    print(f"django: {passed} passed, {len(result.failures) + len(result.errors)} failed")
    sys.exit(0 if result.wasSuccessful() else 1)
