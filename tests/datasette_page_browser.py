"""The admin page in headless Chromium, against a real Datasette with datasette-cloud-sync
installed from its wheel, and the tests' PostgreSQL.

The admin (Datasette's root) pastes a connection string, tests and saves it, runs an export dry
run and watches it succeed in Job History (which refreshes itself), opens its preview, confirms
the full export by typing the connection's name, downloads the Markdown report (the requester
is in it, the password is not), and runs a merge import dry run. A visitor without the
permission gets 403 on the page and no link to it, and an error from cloud_sync_test() in the
SQL box and the JSON API. Each step leaves a screenshot in CLOUD_SYNC_SCREENSHOTS.

Run by tests/datasette_page.py, inside the venv it prepares.
"""

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_env import pg_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCREENSHOTS = os.environ.get("CLOUD_SYNC_SCREENSHOTS",
                             os.path.join(ROOT, "target", "datasette-page"))
KEY = "9c4e2a7b1d8f3e6a0b5c9d2e7f1a4b8c3d6e9f0a2b5c8d1e4f7a0b3c6d9e2f5a"
PASSWORD = os.environ["CLOUD_SYNC_TEST_PG_PASSWORD"]
WAIT_S = 60
# Datasette's signing secret, so that the test can sign actor cookies as an auth plugin would.
SECRET = "cloud_sync datasette page test, not secret"


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql):
    out = subprocess.run(
        [os.path.join(os.environ["CLOUD_SYNC_TEST_PG_BIN"], "psql"), "-X", "-A", "-t",
         "-v", "ON_ERROR_STOP=1", "-c", sql, os.environ["CLOUD_SYNC_TEST_PG_ADMIN_URL"]],
        capture_output=True, text=True, check=True).stdout
    return out.split()


def signed_in(actor_id):
    """The cookie Datasette reads its actor from, as an authentication plugin sets it."""
    from itsdangerous import URLSafeSerializer

    return "ds_actor=" + URLSafeSerializer(SECRET, "actor").dumps({"a": {"id": actor_id}})


def http(url, data=None, cookie=None):
    """(status, body) of a GET, or of a POST of `data`."""
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Server:
    """datasette serve on a fresh database file, with the key, logged-in link for root."""

    def __init__(self, folder):
        self.db = os.path.join(folder, "app.db")
        conn = sqlite3.connect(self.db)
        conn.executescript(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);"
            "INSERT INTO items VALUES (1, 'tea', 3.75), (2, 'coffee', 4.25), (3, 'water', 1.0);")
        conn.close()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Open until stop(): the server writes to it all along.
        self.log = open(os.path.join(folder, "datasette.log"), "w+")  # noqa: SIM115
        # The README's grant: alice has the permission, as root has by default.
        metadata = os.path.join(folder, "metadata.json")
        with open(metadata, "w") as f:
            json.dump({"plugins": {"datasette-cloud-sync": {"allow": {"id": ["root", "alice"]}}}},
                      f)
        env = dict(os.environ, CLOUD_SYNC_ENCRYPTION_KEY=KEY)
        self.process = subprocess.Popen(
            # The venv's scripts name the folder it was built in: run the module instead.
            [sys.executable, "-m", "datasette", "serve", self.db, "-m", metadata,
             "--secret", SECRET, "--root", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        # --root prints the link that logs in as root before the server starts.
        self.root_link = self.process.stdout.readline().strip()
        assert "/-/auth-token?token=" in self.root_link, self.root_link
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                if http(self.url + "/-/versions.json")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("Datasette did not start:\n" + self.output())

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1100"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                              "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


class AdminPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="cloud_sync_datasette.")
        cls.downloads = os.path.join(cls.folder, "downloads")
        os.makedirs(cls.downloads)
        os.makedirs(SCREENSHOTS, exist_ok=True)
        cls.server = Server(cls.folder)
        cls.driver = browser(cls.downloads)
        cls.schema = f"datasette_page_{os.getpid()}"

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.stop()
        psql(f"DROP SCHEMA IF EXISTS {cls.schema} CASCADE")

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(SCREENSHOTS, name + ".png"))

    def wait(self, condition, what):
        # A page that refreshes itself (a job that runs or waits) can replace an element between
        # finding it and reading it: that poll counts as not yet.
        try:
            return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.2,
                                 ignored_exceptions=[StaleElementReferenceException]).until(
                lambda d: condition())
        except TimeoutException:
            self.shot("failed")
            raise AssertionError(f"waited {WAIT_S} s for {what}; Datasette said:\n"
                                 + self.server.output()[-3000:])

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css):
        """The text of the first element `css` selects, read in one go in the page (a page
        that refreshes itself may replace an element found a moment earlier), table cells
        separated by a space as WebDriver's element text has them."""
        return self.driver.execute_script(
            "var e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            css).replace("\t", " ")

    def by_label(self, text):
        """The field whose <label> says `text`: the page is usable by its labels."""
        label = self.driver.find_element(By.XPATH, f"//label[normalize-space()='{text}']")
        return self.driver.find_element(By.ID, label.get_attribute("for"))

    def button(self, text, form):
        """The button labelled `text` of the form whose id is `form`."""
        return self.driver.find_element(
            By.XPATH, f"//form[@id='{form}']//button[normalize-space()='{text}']")

    def message(self, css_class):
        shown = self.driver.find_elements(By.CSS_SELECTOR, "p." + css_class)
        return " ".join(p.text for p in shown)

    def history(self):
        """Job History's rows as (id, status), newest first, read in one go: the page swaps
        the rows while a job runs, so elements found earlier may be gone."""
        rows = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#cloud-sync-history tr[data-job]'))"
            ".map(function (r) { return [Number(r.dataset.job), r.dataset.status]; });")
        return [tuple(row) for row in rows]

    def history_status(self, job_id):
        return dict(self.history()).get(job_id)

    def newest_job(self):
        rows = self.history()
        return rows[0][0] if rows else 0

    def open_page(self):
        self.driver.get(self.server.url + "/-/cloud-sync")
        self.wait(lambda: self.driver.current_url.endswith("/-/cloud-sync/app"), "the page")

    def queue(self, button):
        """Clicks `button`, which queues a job; returns the job's id once Job History shows it."""
        before = self.newest_job()
        button.click()
        self.wait(lambda: self.newest_job() > before, "the job in Job History")
        return self.newest_job()

    def run_and_watch(self, button):
        """Queues a job with `button`, then watches Job History, without reloading, until the
        job ends; it must succeed. Returns its id."""
        job_id = self.queue(button)
        ended = ("succeeded", "failed", "cancelled")
        self.wait(lambda: self.history_status(job_id) in ended, f"job {job_id} to end")
        self.assertEqual(self.history_status(job_id), "succeeded",
                         self.text("#cloud-sync-history"))
        return job_id

    def test_1_admin_saves_exports_confirms_and_imports(self):
        driver = self.driver
        driver.get(self.server.root_link)
        self.open_page()
        self.assertIn("Connections", driver.page_source)
        self.shot("01-page")

        # Test Connection with a pasted string, then Save Connection.
        url = pg_url()
        self.by_label("Name").send_keys("pg")
        self.by_label("Connection string").send_keys(url)
        self.button("Test Connection", "connection-form").click()
        self.wait(lambda: "Connection OK" in self.message("message-info"), "the test's answer")
        answer = self.message("message-info")
        self.assertIn("certificate verified", answer)
        self.assertIn("TLS on", answer)
        self.assertEqual(self.by_label("Connection string").get_attribute("value"), "")
        self.shot("02-test-connection")
        self.by_label("Name").send_keys("pg")
        self.by_label("Connection string").send_keys(url)
        self.button("Save Connection", "connection-form").click()
        self.wait(lambda: "Saved connection pg" in self.message("message-info"), "the save")
        self.assertIn(":***@", self.text("#connections table"))
        self.assertNotIn(PASSWORD, driver.page_source)
        # Testing the saved connection records who tested it and what came back.
        self.button("Test Connection", "test-pg").click()
        self.wait(lambda: "Connection OK" in self.message("message-info"), "the saved test")
        connection = self.text("#connections tbody tr")
        self.assertRegex(connection, r"ok, PostgreSQL \d+")
        self.assertRegex(connection, r"by root")
        self.shot("03-saved")

        # Run Export (dry run) into a schema of its own; Job History shows it succeed.
        self.by_label("Remote schema").send_keys(self.schema)
        dry_run = self.run_and_watch(self.button("Run Export (dry run)", "export-form"))
        self.shot("04-job-history")

        # Its preview, then the full export, confirmed by typing the name.
        self.find(f"tr[data-job='{dry_run}'] a").click()
        self.wait(lambda: "Preview" in driver.page_source, "the job page")
        preview = self.text("#preview table")
        self.assertRegex(preview, r"items 3 3 0 0 0 0 0 0")
        self.shot("05-preview")
        self.by_label_prefix("Type the connection's name").send_keys("not-pg")
        self.button("Full export", "confirm-form").click()
        self.wait(lambda: "to confirm" in self.message("message-error"), "the refusal")
        self.assertEqual(
            psql(f"SELECT count(*) FROM pg_namespace WHERE nspname = '{self.schema}'"), ["0"])
        self.by_label_prefix("Type the connection's name").send_keys("pg")
        self.button("Full export", "confirm-form").click()
        self.wait(lambda: "Queued full export" in self.message("message-info"), "the full export")
        self.wait(lambda: self.history_status(self.newest_job()) == "succeeded",
                  "the full export to end")
        export = self.newest_job()
        self.assertEqual(psql(f"SELECT string_agg(name, ',' ORDER BY id) FROM {self.schema}.items"),
                         ["tea,coffee,water"])
        self.shot("06-full-export")

        # The Markdown report of the full export names the requester and holds no secret.
        self.find(f"tr[data-job='{export}'] a").click()
        self.wait(lambda: "Download report" in driver.page_source, "the job page")
        self.assertIn("Requested by\nroot", self.text("dl"))
        self.driver.find_element(By.LINK_TEXT, "Markdown").click()
        report_path = os.path.join(self.downloads, f"cloud-sync-job-{export}.md")
        self.wait(lambda: os.path.exists(report_path), "the Markdown report")
        with open(report_path, encoding="utf-8") as report:
            markdown = report.read()
        self.assertRegex(markdown, r"(?i)requested[ _]by[^\n]*root")
        self.assertIn(":***@", markdown)
        self.assertNotIn(PASSWORD, markdown)
        self.assertNotIn(urllib.parse.quote(PASSWORD, safe=""), markdown)
        self.shot("07-report")

        # Import (dry run) with the merge strategy.
        self.open_page()
        self.by_label_prefix("merge").click()
        self.by_label_prefix("Tables (comma-separated").send_keys("items")
        self.driver.find_element(By.ID, "cs-import-schema").send_keys(self.schema)
        merge = self.run_and_watch(self.button("Import (dry run)", "import-form"))
        self.find(f"tr[data-job='{merge}'] a").click()
        self.wait(lambda: "Preview" in driver.page_source, "the import's job page")
        self.assertIn("Strategy\nmerge", self.text("dl"))
        self.assertRegex(self.text("#preview table"), r"items 3 0 0 3 0 0 0 0")
        self.shot("08-import-dry-run")
        self.assertNotIn(PASSWORD, driver.page_source)

        # Track a table, see its pending changes, untrack it.
        self.open_page()
        self.by_label_prefix("Track a table").send_keys("items")
        self.driver.find_element(By.XPATH, "//button[normalize-space()='Track']").click()
        self.wait(lambda: "items: tracked" in self.message("message-info"), "the tracking")
        self.assertRegex(self.text("#tracked table"), r"items \[\"id\"\] \S+ 0 never")
        self.shot("09-tracked")
        self.driver.find_element(By.XPATH, "//button[normalize-space()='Untrack']").click()
        self.wait(lambda: "items: untracked" in self.message("message-info"), "the untracking")

        # Schedules: an export of an untracked table is refused with the extension's reason;
        # an hourly merge import is saved, shows who made it, and is removed.
        self.open_page()
        self.by_label("Schedule name").send_keys("sync-items")
        self.by_label("Every (seconds)").send_keys("3600")
        self.by_label("Tables (comma-separated; empty: all)").send_keys("items")
        self.driver.find_element(By.ID, "cs-schedule-schema").send_keys(self.schema)
        self.button("Save Schedule", "schedule-form").click()
        self.wait(lambda: "not tracked" in self.message("message-error"), "the refusal")
        self.assertNotIn("sync-items", self.text("#schedules"))
        self.by_label("Schedule name").send_keys("pull-items")
        self.by_label("Every (seconds)").send_keys("3600")
        self.by_label_prefix("import, with the strategy").click()
        self.driver.find_element(By.ID, "cs-schedule-strategy").send_keys("merge")
        self.by_label("Tables (comma-separated; empty: all)").send_keys("items")
        self.driver.find_element(By.ID, "cs-schedule-schema").send_keys(self.schema)
        self.button("Save Schedule", "schedule-form").click()
        self.wait(lambda: "Schedule pull-items created" in self.message("message-info"),
                  "the schedule")
        self.assertRegex(self.text("#schedules table"),
                         r"pull-items pg import every 3600 s .* root Remove")
        self.shot("10-schedule")
        self.driver.find_element(
            By.XPATH, "//section[@id='schedules']//button[normalize-space()='Remove']").click()
        self.wait(lambda: "Schedule pull-items removed" in self.message("message-info"),
                  "the removal")
        self.assertIn("No schedule.", self.text("#schedules"))

    def by_label_prefix(self, text):
        label = self.driver.find_element(
            By.XPATH, f"//label[starts-with(normalize-space(), \"{text}\")]")
        return self.driver.find_element(By.ID, label.get_attribute("for"))

    def test_2_cancel_retry_and_delete(self):
        """A job whose server does not answer waits for its next attempt: Cancel, Retry,
        Cancel again, then the connection is deleted after its confirmation."""
        driver = self.driver
        driver.get(self.server.root_link)
        self.open_page()
        self.by_label("Name").send_keys("down")
        self.by_label("Connection string").send_keys(
            f"postgresql://nobody:secret@127.0.0.1:{free_port()}/db?sslmode=disable")
        self.button("Save Connection", "connection-form").click()
        self.wait(lambda: "Saved connection down" in self.message("message-info"), "the save")
        driver.find_element(
            By.XPATH, "//select[@id='cs-export-connection']/option[.='down']").click()
        job_id = self.queue(self.button("Run Export (dry run)", "export-form"))
        # Its first attempt fails; Job History shows when the next one is due.
        self.wait(lambda: re.search(r"[1-9] of 5\t\d{4}-", self.row_text(job_id)),
                  "the next attempt")
        self.assertIn("connection refused", self.row_text(job_id))
        driver.get(f"{self.server.url}/-/cloud-sync/app/jobs/{job_id}")
        self.button("Cancel", "cancel-form").click()
        self.wait(lambda: "Cancel requested" in self.message("message-info"), "the cancel")
        self.assertIn("cancelled", self.text("h1"))
        self.button("Retry", "retry-form").click()
        self.wait(lambda: f"Job {job_id} queued again" in self.message("message-info"), "the retry")
        self.button("Cancel", "cancel-form").click()
        self.wait(lambda: "cancelled" in self.text("h1"), "the second cancel")
        self.shot("11-cancelled")
        self.open_page()
        delete = "//tr[td[1][.='down']]"
        driver.find_element(By.XPATH, delete + "//summary").click()
        driver.find_element(By.XPATH, delete + "//button[.='Delete down for good']").click()
        self.wait(lambda: "Deleted connection down" in self.message("message-info"), "the delete")
        self.assertNotIn("down", self.text("#connections table"))
        self.find("#connection-events summary").click()
        events = self.text("#connection-events table")
        self.assertRegex(events, r"down deleted root")
        self.assertRegex(events, r"down created root")

    def row_text(self, job_id):
        return self.driver.execute_script(
            "var r = document.querySelector(\"#cloud-sync-history tr[data-job='\" + arguments[0]"
            " + \"']\"); return r ? r.innerText : '';", job_id)

    def test_3_visitor_without_permission(self):
        driver = self.driver
        driver.delete_all_cookies()
        status, body = http(self.server.url + "/-/cloud-sync/app")
        self.assertEqual(status, 403)
        driver.get(self.server.url + "/-/cloud-sync/app")
        self.assertIn("cloud-sync permission", driver.page_source)
        self.shot("12-visitor-403")
        driver.get(self.server.url + "/app")
        self.assertNotIn("/-/cloud-sync", driver.page_source)

        # The SQL box and the JSON API refuse the extension's functions.
        sql = f"select cloud_sync_test('{pg_url()}')"
        driver.get(self.server.url + "/app?" + urllib.parse.urlencode({"sql": sql}))
        self.assertIn("not authorized to use function: cloud_sync_test", driver.page_source)
        self.shot("13-visitor-sql-box")
        status, body = http(self.server.url + "/app.json?" + urllib.parse.urlencode(
            {"sql": "select cloud_sync_save('x', 'postgresql://u:p@h/d')", "_shape": "objects"}))
        self.assertEqual(json.loads(body)["error"],
                         "not authorized to use function: cloud_sync_save")
        status, body = http(self.server.url + "/app/cloud_sync_connections.json?_shape=array")
        self.assertEqual(status, 200)
        rows = json.loads(body)
        self.assertTrue(rows)
        self.assertEqual({row["connection_string_encrypted"] for row in rows}, {None})
        # The permission is the plugin's allow block: alice has it, bob does not.
        self.assertEqual(http(self.server.url + "/-/cloud-sync/app", cookie=signed_in("alice"))[0],
                         200)
        self.assertEqual(http(self.server.url + "/-/cloud-sync/app", cookie=signed_in("bob"))[0],
                         403)
        self.assertEqual(http(self.server.url + "/-/cloud-sync/app/jobs.json",
                              cookie=signed_in("bob"))[0], 403)
        # Datasette's own pages still work, and forms need the CSRF token.
        self.assertEqual(http(self.server.url + "/app/items.json")[0], 200)
        status, body = http(self.server.url + "/-/cloud-sync/app/action",
                            b"action=delete&name=pg", cookie=signed_in("alice"))
        self.assertEqual(status, 403)
        self.assertIn("POST field did not match cookie", body)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"datasette page: {max(result.testsRun - failed, 0)} passed, {failed} failed")
    sys.exit(1 if failed else 0)
