"""Tests run in float64 so invariants (inverse, log-det, score identities) can be checked tightly.
The float32 path that training uses is exercised end to end in test_train.py.

Test-time speed (the suite is mostly XLA compilation of many small programs, each run once or a few times):
- XLA's CPU backend compiles at optimisation level 0 here (LLVM passes off). That roughly halves compile time and
  changes no assertion; training and benchmarks outside the tests keep XLA's default level.
- Compiled programs go to a JAX persistent compilation cache in a fresh temporary folder, one per test session and
  removed at its end, so train.main calls on the same configuration (resume, time budget) reuse the train step an
  earlier call compiled. Nothing is kept between sessions: every session compiles everything once.
- Two cores: the tests marked `background` (long, self-contained, mostly XLA compilation, which uses one core) run in
  one child pytest process started at collection, in parallel with the others; each reports the child's outcome at
  its turn (they are ordered last). The child has its own compilation cache; a background test's fixtures still run
  here, so only tests whose heavy work is in their own body are marked. Run alone, a background test runs as usual."""
import atexit
import math
import os
import shutil
import subprocess
import sys
import tempfile

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # the child inherits it already set
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
_CACHE = tempfile.mkdtemp(prefix="ebflow-test-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # train.py

_IN_CHILD = "EBFLOW_TEST_BACKGROUND_CHILD"
_background = {}  # proc, log, ids, out: the child pytest process of the background tests


def pytest_configure(config):
    config.addinivalue_line("markers", "background: run in a child pytest process, in parallel with the other tests")


def pytest_collection_modifyitems(config, items):
    bg = [it for it in items if it.get_closest_marker("background")]
    if os.environ.get(_IN_CHILD) or config.option.collectonly or not bg or len(bg) == len(items):
        return
    log = tempfile.TemporaryFile("w+")
    cmd = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *[it.nodeid for it in bg]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, **{_IN_CHILD: "1"}), stdout=log, stderr=subprocess.STDOUT)
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


@pytest.fixture
def model_and_brute():
    """Factory for the brute-force log-density check shared by test_flow.py and test_glow.py.

    model_and_brute(flow, model) is one jit-compiled (p, x_i) -> (model(p, x_i[None])[0], ref) at a single input,
    ref = log N(z; 0, I_D) + log|det dz/dx| with dz/dx the full D x D Jacobian of flow.forward, D = z.size.
    One compiled program because op-by-op dispatch of the brute Jacobian costs far more than compiling it."""
    def make(flow, model):
        @jax.jit
        def both(p, xi):
            f = lambda v: flow.forward(p, v.reshape((1,) + flow.input_shape))[0].reshape(-1)
            zi = f(xi.reshape(-1))
            ref = -0.5 * zi @ zi - 0.5 * zi.size * math.log(2 * math.pi) + jnp.linalg.slogdet(jax.jacfwd(f)(xi.reshape(-1)))[1]
            return model(p, xi[None])[0], ref
        return both
    return make
