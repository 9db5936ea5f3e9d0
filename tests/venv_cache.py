"""Virtual environments for the host tests that need packages from PyPI (Django, Datasette),
cached beside the tests so that a second run installs nothing."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def cached_venv(cache, requirements):
    """The python of a venv under `cache` with `requirements` installed, keyed by a hash of them
    and the interpreter: reused when present, else built beside its final place and renamed
    there, so an interrupted install never leaves a venv that looks ready. Its scripts name the
    folder it was built in: run them as modules (python -m ...)."""
    tag = hashlib.sha256(f"{' '.join(requirements)} {sys.version}".encode()).hexdigest()[:16]
    venv = os.path.join(cache, tag)
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(python):
        return python
    os.makedirs(cache, exist_ok=True)
    building = tempfile.mkdtemp(prefix=tag + ".", dir=cache)
    try:
        for argv in ([sys.executable, "-m", "venv", building],
                     [os.path.join(building, "bin", "python"), "-m", "pip", "install", "-q",
                      "--disable-pip-version-check", *requirements]):
            done = subprocess.run(argv, check=False, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(
                    f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        try:
            os.rename(building, venv)
        except OSError:
            # Another run finished the same venv first; theirs is as good.
            if not os.path.exists(python):
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return python
