"""Shared test setup.

- A JAX persistent compilation cache in a fresh temporary folder for this session (removed at the
  end), also inherited by the subprocesses the tests start. Identical programs (the same train.py
  run in a second process, a resumed run, the evaluation classifiers of every method) compile once.
  It changes no number: a cache hit runs the executable compiled from the same HLO.
- `tiny_toy_run`: one tiny train.py run on the moons, shared by the end-to-end, resume and
  determinism tests instead of each training its own.
"""
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_CACHE = tempfile.mkdtemp(prefix="dlsm-jax-cache-")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)  # read when jax is imported (after this file)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

# train.py options of the tiny moons run (every phase, two classifiers, every guidance row)
TINY = ["--score-steps", "30", "--clf-steps", "10", "--losses", "ce", "total", "--samples-per-class", "64",
        "--sample-steps", "10", "--eval-sigmas", "2", "--eval-points", "64", "--cas-steps", "20",
        "--log-every", "10", "--ckpt-every", "10"]


@pytest.fixture(scope="session")
def tiny_toy_run(tmp_path_factory):
    """(results, run_dir, printed output) of one in-process `train.py TINY` run."""
    import io
    from contextlib import redirect_stdout

    import train

    out = io.StringIO()
    with redirect_stdout(out):
        results, run_dir = train.main(train.parse(TINY + ["--out-dir", str(tmp_path_factory.mktemp("tiny"))]))
    return results, run_dir, out.getvalue()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)
