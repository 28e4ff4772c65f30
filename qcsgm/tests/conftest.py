"""Shared test setup.

- XLA:CPU at backend optimisation level 0 (LLVM's optimisation passes off), for this process and every
  process it starts: the suite's time is mostly compiling programs that run once or a few times (the
  U-Net tests compile a Jacobian, a second-order train step and two score nets on 4x4 to 8x8 images), and
  level 0 compiles them faster. The tests therefore check level-0 compiled programs; the programs traced,
  and every assertion and tolerance, are unchanged. XLA_FLAGS that already name a level are kept.
- Two cores: the tests marked `background` (long, self-contained, mostly XLA compilation, which uses one
  core) run in one child pytest process started at collection, in parallel with the others; each reports
  the child's outcome for it at its turn (they are ordered last). Run alone, a background test runs in
  this process as usual.
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # read when jax starts its backend
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import pytest  # noqa: E402

_IN_CHILD = "QCSGM_TEST_BACKGROUND_CHILD"
_background = {}  # proc, log, ids, out: the child pytest process of the background tests


def pytest_configure(config):
    config.addinivalue_line("markers", "background: run in a child pytest process, in parallel with the other tests")


def pytest_collection_modifyitems(config, items):
    bg = [it for it in items if it.get_closest_marker("background")]
    if os.environ.get(_IN_CHILD) or config.option.collectonly or not bg or len(bg) == len(items):
        return
    log = tempfile.TemporaryFile("w+")
    cmd = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *[it.nodeid for it in bg]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, **{_IN_CHILD: "1"}), stdout=log,
                            stderr=subprocess.STDOUT)
    _background.update(proc=proc, log=log, ids={it.nodeid for it in bg})
    items.sort(key=lambda it: it.nodeid in _background["ids"])  # stable: the others first, in their order


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A background test: its outcome in the child process (pass, or fail with the child's output)."""
    if pyfuncitem.nodeid not in _background.get("ids", ()):
        return None
    if "out" not in _background:
        _background["proc"].wait(timeout=1800)
        _background["log"].seek(0)
        _background["out"] = _background["log"].read()
    if f"PASSED {pyfuncitem.nodeid}" not in _background["out"].splitlines():
        pytest.fail(f"{pyfuncitem.nodeid} did not pass in the background process:\n{_background['out']}", pytrace=False)
    return True


def pytest_sessionfinish(session, exitstatus):
    proc = _background.get("proc")
    if proc is not None and proc.poll() is None:  # the session ended before the tests waiting on it
        proc.kill()
        proc.wait()
