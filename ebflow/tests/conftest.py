"""Tests run in float64 so invariants (inverse, log-det, score identities) can be checked tightly.
The float32 path that training uses is exercised end to end in test_train.py.

Test-time speed (the suite is mostly XLA compilation of many small programs, each run once or a few times):
- XLA's CPU backend compiles at optimisation level 0 here (LLVM passes off). That roughly halves compile time and
  changes no assertion; training and benchmarks outside the tests keep XLA's default level.
- Compiled programs go to a JAX persistent compilation cache in a fresh temporary folder, one per test session and
  removed at its end, so train.main calls on the same configuration (resume, time budget) reuse the train step an
  earlier call compiled. Nothing is kept between sessions: every session compiles everything once."""
import atexit
import math
import os
import shutil
import sys
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
_CACHE = tempfile.mkdtemp(prefix="ebflow-test-jax-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # train.py


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
