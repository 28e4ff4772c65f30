"""Shared test setup.

- A JAX persistent compilation cache in a fresh temporary folder for this session (removed at the
  end), also inherited by the subprocesses the tests start. Identical programs (the same train.py
  run in a second process, a resumed run, the evaluation classifiers of every method) compile once.
  It changes no number: a cache hit runs the executable compiled from the same HLO.
- `tiny_toy_run`: one tiny train.py run on the moons, shared by the end-to-end, resume and
  determinism tests instead of each training its own. When it is done it starts the determinism
  test's second train.py process (`tiny_toy_rerun`), which runs while the other tests do.
- Two cores: the tests marked `background` (long, self-contained, mostly XLA compilation, which
  uses one core) run in one child pytest process started at collection, in parallel with the
  others; each reports the child's outcome for it at its turn (they are ordered last). Run alone,
  a background test runs in this process as usual.
- XLA:CPU at backend optimisation level 0 (LLVM's optimisation passes off), for this process and
  every process it starts: the suite's time is mostly compiling small programs that run a few steps
  (a 2-D run of 30 steps, image nets on 4x4 to 8x8 inputs), and level 0 compiles them about 2.4x
  faster (test_dlsm_reduce_mean_is_sum_over_dims 16.85 -> 6.98 s, one process, 2 cores, load 1.35 ->
  1.59, 2026-11-28); the few long-running programs run slower (the 64-D sampler test 2.79 -> 12.54 s,
  same command). The suite: 38 passed in 228 s (before: 336 s in CI). The programs traced, and
  every assertion and tolerance, are unchanged. XLA_FLAGS that already name a level are kept.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

_CACHE = tempfile.mkdtemp(prefix="dlsm-jax-cache-")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)  # read when jax is imported (after this file)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # read when jax starts its backend
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import pytest  # noqa: E402

# train.py options of the tiny moons run (every phase, two classifiers, every guidance row)
TINY = ["--score-steps", "30", "--clf-steps", "10", "--losses", "ce", "total", "--samples-per-class", "64",
        "--sample-steps", "10", "--eval-sigmas", "2", "--eval-points", "64", "--cas-steps", "20",
        "--log-every", "10", "--ckpt-every", "10"]

# train.py's own entry point, after printing this process's hash of a probe string (test_determinism.py)
RERUN = "import sys, train; print('HASH', hash('dlsm-probe')); train.main(train.parse(sys.argv[1:]))"

_IN_CHILD = "DLSM_TEST_BACKGROUND_CHILD"
_background = {}  # proc, log, ids: the child pytest process of the background tests
_rerun = {}  # proc, log, out_dir: tiny_toy_run's second process


def pytest_configure(config):
    config.addinivalue_line("markers", "background: run in a child pytest process, in parallel with the other tests")


def pytest_collection_modifyitems(config, items):
    # the tests of tiny_toy_run first, so that its second process starts early; the test waiting on that process
    # after the others (it runs meanwhile); background tests last
    names = lambda it: getattr(it, "fixturenames", ())
    items.sort(key=lambda it: ("tiny_toy_rerun" in names(it), "tiny_toy_run" not in names(it)))
    bg = [it for it in items if it.get_closest_marker("background")]
    if os.environ.get(_IN_CHILD) or config.option.collectonly or not bg or len(bg) == len(items):
        return
    log = tempfile.TemporaryFile("w+")
    env = dict(os.environ, **{_IN_CHILD: "1", "JAX_COMPILATION_CACHE_DIR": tempfile.mkdtemp(dir=_CACHE)})
    cmd = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *[it.nodeid for it in bg]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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


@pytest.fixture(scope="session")
def tiny_toy_run(tmp_path_factory, request):
    """(results, run_dir, printed output) of one in-process `train.py TINY` run."""
    import io
    from contextlib import redirect_stdout

    import train

    out = io.StringIO()
    with redirect_stdout(out):
        results, run_dir = train.main(train.parse(TINY + ["--out-dir", str(tmp_path_factory.mktemp("tiny"))]))
    if any("tiny_toy_rerun" in getattr(it, "fixturenames", ()) for it in request.session.items):
        _start_rerun(str(tmp_path_factory.mktemp("tiny_rerun")))
    return results, run_dir, out.getvalue()


def _start_rerun(out_dir):
    """`train.py TINY` in a second process, with a Python hash seed other than this process's (0: no
    salt, where this process is salted); it finds this run's executables in the compilation cache."""
    parent_seed = os.environ.get("PYTHONHASHSEED", "random")
    env = dict(os.environ, PYTHONHASHSEED="0" if not parent_seed.isdigit() else str(int(parent_seed) + 1))
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, "-c", RERUN, *TINY, "--out-dir", out_dir], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    _rerun.update(proc=proc, log=log, out_dir=out_dir)


@pytest.fixture(scope="session")
def tiny_toy_rerun(tiny_toy_run):
    """(printed output, run_dir) of the second process, once it has finished (it must succeed)."""
    _rerun["proc"].wait(timeout=600)
    _rerun["log"].seek(0)
    out = _rerun["log"].read()
    assert _rerun["proc"].returncode == 0, out
    (run_dir,) = [os.path.join(_rerun["out_dir"], d) for d in os.listdir(_rerun["out_dir"])]
    return out, run_dir


def pytest_sessionfinish(session, exitstatus):
    for proc in (_background.get("proc"), _rerun.get("proc")):
        if proc is not None and proc.poll() is None:  # the session ended before the test waiting on it
            proc.kill()
            proc.wait()
    shutil.rmtree(_CACHE, ignore_errors=True)
