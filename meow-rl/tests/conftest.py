import atexit
import os
import shutil
import sys
import tempfile
import types
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Test session only: LLVM's backend optimisation level 0 for XLA:CPU (set before jax starts its backend). The suite
# compiles many small programs (jit'd, and eager op by op); this makes each compile cheaper (docs/results.md).
# The HLO optimisation passes are unchanged; floats may differ in the last bits from the optimised build, and every
# assertion either has its own tolerance or compares two runs of this same build (determinism, resume).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

# identical programs compiled by several tests (and by repeated main() calls) compile once. The cache
# lives for one test session only (a fresh temporary dir), so a local `make test` costs what a clean
# CI machine pays instead of reusing programs compiled by an earlier session.
_CACHE = tempfile.mkdtemp(prefix="meow-rl-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


# A stand-in `brax.envs` module with Brax's interface (used by test_brax_adapter.py and test_loop.py)
class _State(NamedTuple):
    pos: jax.Array
    obs: jax.Array
    reward: jax.Array
    done: jax.Array


class _PointEnv:
    """Brax-like point mass: obs = position (3), action (2) moves x/y, done (float) when |x| > 1."""

    observation_size, action_size = 3, 2

    def __init__(self, backend):
        self.backend = backend

    def reset(self, key):
        pos = 0.1 * jax.random.normal(key, (3,))
        return _State(pos, pos, jnp.zeros(()), jnp.zeros(()))

    def step(self, state, action):
        pos = state.pos + 0.1 * jnp.concatenate([action, jnp.zeros(1)])
        return _State(pos, pos, -jnp.sum(pos**2), (jnp.abs(pos[0]) > 1.0).astype(jnp.float32))


@pytest.fixture
def fake_brax(monkeypatch):
    made = []
    envs = types.ModuleType("brax.envs")
    envs.get_environment = lambda name, backend: made.append((name, backend)) or _PointEnv(backend)
    pkg = types.ModuleType("brax")
    pkg.envs = envs
    monkeypatch.setitem(sys.modules, "brax", pkg)
    monkeypatch.setitem(sys.modules, "brax.envs", envs)
    return made
