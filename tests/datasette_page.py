"""The admin page (issue 17) in a real browser: sets up, then runs tests/datasette_page_browser.py.

A pinned Datasette and Selenium from PyPI, in a venv cached under tests/.datasette-venv
(tests/venv_cache.py: a second run installs nothing). Into it go,
as a user installs them, the two wheels packaging/build_wheel.py makes from packaging/python:
sqlite-cloud-sync holding the freshly built .so for this machine (CLOUD_SYNC_LIB; no
cross-build), and datasette-cloud-sync. The browser is Debian's chromium, driven through
Debian's chromedriver (same version, never downloaded).

Run by scripts/test.sh with Debian's Python: /usr/bin/python3 tests/datasette_page.py
Screenshots of each step go to CLOUD_SYNC_SCREENSHOTS (default target/datasette-page).
"""

import os
import re
import subprocess
import sys
import tempfile

from venv_cache import cached_venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "tests", ".datasette-venv")
REQUIREMENTS = ["datasette==0.65.5", "selenium==4.51.0"]
# What the released plugin wheel requires (scripts/package.sh passes the same range).
PLUGIN_DATASETTE = "datasette>=0.65.1,<0.66"


def run(argv):
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def version():
    with open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8") as cargo:
        return re.search(r'^version = "(.*)"$', cargo.read(), re.MULTILINE).group(1)


def build_wheels(out):
    """The two wheels, as scripts/package.sh builds them, with this machine's .so."""
    wheel = [sys.executable, os.path.join(ROOT, "packaging", "build_wheel.py"),
             "--version", version(), "--out", out]
    python = os.path.join(ROOT, "packaging", "python")
    extension = run(wheel + [
        "--name", "sqlite-cloud-sync", "--tag", "py3-none-linux_" + os.uname().machine,
        "--summary", "cloud_sync", "--package", os.path.join(python, "sqlite_cloud_sync"),
        "--file", os.environ["CLOUD_SYNC_LIB"] + "=sqlite_cloud_sync/cloud_sync.so"]).strip()
    plugin = run(wheel + [
        "--name", "datasette-cloud-sync", "--tag", "py3-none-any", "--summary", "cloud_sync",
        "--package", os.path.join(python, "datasette_cloud_sync"),
        "--requires", PLUGIN_DATASETTE, "--requires", f"sqlite-cloud-sync=={version()}",
        "--entry-point", "datasette:cloud_sync=datasette_cloud_sync"]).strip()
    return [extension, plugin]


def main():
    python = cached_venv(CACHE, REQUIREMENTS)
    with tempfile.TemporaryDirectory() as out:
        # The wheels of this build replace those of the last run; their requirements are in
        # the venv already.
        run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--force-reinstall", "--no-deps", *build_wheels(out)])
        run([python, "-m", "pip", "check"])
    browser_test = os.path.join(ROOT, "tests", "datasette_page_browser.py")
    os.execv(python, [python, browser_test])


if __name__ == "__main__":
    main()
